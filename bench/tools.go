package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// result is one contender's run.
type result struct {
	name      string
	seconds   float64
	clientCPU float64 // user+sys of the client processes
	srcCPU    float64 // of the source's backends
	dstCPU    float64 // of the target's backends
	peakRSS   int64   // bytes; planrun: its own VmHWM; others: the largest client process
	rows      int64   // rows on the target afterwards (or compared)
	detail    string
	status    string // "" when it ran; else why there is no figure
}

// bench is one benchmark session: the servers, the tools, the settings.
type bench struct {
	src, dst *server
	binDir   string // PostgreSQL client tools
	planrun  string // the planrun binary
	work     string // scratch directory
	jobs     int
	db       string // the source database
	log      func(string, ...any)
	copyArgs string // more HCL arguments for the copy step
}

// commandRun is what running a command cost.
type commandRun struct {
	seconds   float64
	cpu       float64
	maxRSS    int64 // ru_maxrss of the process (and its reaped children), bytes
	vmHWM     int64 // the process's own peak RSS, polled from /proc; 0 unless asked
	output    string
	exitError error
}

// runCommand runs a command and measures it. With watchHWM, the peak
// resident set size of the process itself (not its children) is read
// from /proc/PID/status as it runs: VmHWM only grows, so the last value
// read is the peak.
func runCommand(ctx context.Context, cmd *exec.Cmd, watchHWM bool) commandRun {
	var out strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if out.Len() < 1<<20 {
			out.Write(p)
		}
		return len(p), nil
	})
	if cmd.Stdout == nil {
		cmd.Stdout = w
	}
	if cmd.Stderr == nil {
		cmd.Stderr = w
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return commandRun{exitError: err}
	}
	var r commandRun
	var watch sync.WaitGroup
	stop := make(chan struct{})
	if watchHWM {
		watch.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				if n := vmHWM(cmd.Process.Pid); n > r.vmHWM {
					r.vmHWM = n
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	err := cmd.Wait()
	close(stop)
	watch.Wait()
	r.seconds = time.Since(start).Seconds()
	r.exitError = err
	if st := cmd.ProcessState; st != nil {
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			r.cpu = tv(ru.Utime) + tv(ru.Stime)
			r.maxRSS = ru.Maxrss << 10
		}
	}
	mu.Lock()
	r.output = out.String()
	mu.Unlock()
	return r
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// vmHWM reads a process's peak resident set size.
func vmHWM(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// measure runs fn against an empty target database and adds the servers'
// CPU time and the rows the target then holds.
func (b *bench) measure(ctx context.Context, name, target string, fn func(ctx context.Context, target string, r *result) error) result {
	r := result{name: name}
	if target != "" {
		if err := b.dst.recreate(ctx, target); err != nil {
			r.status = "failed: " + err.Error()
			return r
		}
	}
	if err := b.settle(ctx); err != nil {
		r.status = "failed: " + err.Error()
		return r
	}
	srcCPU, dstCPU := b.src.cpuSeconds(), b.dst.cpuSeconds()
	b.log("%s ...", name)
	err := fn(ctx, target, &r)
	// Backends end a moment after their clients: let them be reaped.
	time.Sleep(300 * time.Millisecond)
	r.srcCPU, r.dstCPU = b.src.cpuSeconds()-srcCPU, b.dst.cpuSeconds()-dstCPU
	if err != nil {
		if r.status == "" {
			r.status = "failed: " + err.Error()
		}
		b.log("%s: %s", name, r.status)
		return r
	}
	if target != "" {
		conn, err := pgx.Connect(ctx, b.dst.URL(target))
		if err == nil {
			var counts map[string]int64
			counts, err = countRows(ctx, conn)
			conn.Close(ctx)
			for _, n := range counts {
				r.rows += n
			}
		}
		if err != nil {
			r.status = "failed: count the target's rows: " + err.Error()
		}
	}
	b.log("%s: %.1fs", name, r.seconds)
	return r
}

// settle starts every run from the same state: what the last one left
// dirty is checkpointed and on disk, so that no run pays for another's
// writes.
func (b *bench) settle(ctx context.Context) error {
	if err := errors.Join(b.src.checkpoint(ctx), b.dst.checkpoint(ctx)); err != nil {
		return err
	}
	syscall.Sync()
	time.Sleep(500 * time.Millisecond)
	return nil
}

func (b *bench) tool(name string) string { return filepath.Join(b.binDir, name) }

func (b *bench) libpq(s *server, db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", s.Host, s.clientPort(), s.User, db)
}

// failed turns a command's failure into an error with its output's tail.
func failed(what string, c commandRun) error {
	if c.exitError == nil {
		return nil
	}
	out := strings.TrimSpace(c.output)
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	return fmt.Errorf("%s: %w\n%s", what, c.exitError, out)
}

// dumpDirectory: pg_dump -Fd --jobs, then pg_restore --jobs.
func (b *bench) dumpDirectory(ctx context.Context, target string, r *result) error {
	dir := filepath.Join(b.work, "dump")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dump := exec.CommandContext(ctx, b.tool("pg_dump"), "-Fd", "--jobs="+strconv.Itoa(b.jobs), "--file="+dir, "--dbname="+b.libpq(b.src, b.db))
	dump.Env = b.src.clientEnv(b.binDir)
	d := runCommand(ctx, dump, false)
	if err := failed("pg_dump", d); err != nil {
		return err
	}
	size := dirSize(dir)
	restore := exec.CommandContext(ctx, b.tool("pg_restore"), "--jobs="+strconv.Itoa(b.jobs), "--no-owner", "--no-acl", "--dbname="+b.libpq(b.dst, target), dir)
	restore.Env = b.dst.clientEnv(b.binDir)
	rs := runCommand(ctx, restore, false)
	if err := failed("pg_restore", rs); err != nil {
		return err
	}
	r.seconds = d.seconds + rs.seconds
	r.clientCPU = d.cpu + rs.cpu
	r.peakRSS = max(d.maxRSS, rs.maxRSS)
	r.detail = fmt.Sprintf("dump %.1fs (%s on disk, gzip), restore %.1fs", d.seconds, human(size), rs.seconds)
	return nil
}

// dumpPipe: pg_dump -Fc | pg_restore, no file, one process each.
func (b *bench) dumpPipe(ctx context.Context, target string, r *result) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	dump := exec.CommandContext(ctx, b.tool("pg_dump"), "-Fc", "--dbname="+b.libpq(b.src, b.db))
	dump.Env = b.src.clientEnv(b.binDir)
	dump.Stdout = pw
	restore := exec.CommandContext(ctx, b.tool("pg_restore"), "--no-owner", "--no-acl", "--dbname="+b.libpq(b.dst, target))
	restore.Env = b.dst.clientEnv(b.binDir)
	restore.Stdin = pr
	var d commandRun
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		d = runCommand(ctx, dump, false)
		pw.Close() // pg_restore then sees the end of the archive
	})
	rs := runCommand(ctx, restore, false)
	pr.Close()
	wg.Wait()
	if err := errors.Join(failed("pg_dump", d), failed("pg_restore", rs)); err != nil {
		return err
	}
	r.seconds = time.Since(start).Seconds()
	r.clientCPU = d.cpu + rs.cpu
	r.peakRSS = max(d.maxRSS, rs.maxRSS)
	r.detail = "pg_dump -Fc | pg_restore (gzip)"
	return nil
}

// pgcopydb runs pgcopydb clone, when it is installed.
func (b *bench) pgcopydb(ctx context.Context, target string, r *result) error {
	bin, err := exec.LookPath("pgcopydb")
	if err != nil {
		r.status = "not installed (apt-get install -y pgcopydb, or https://github.com/dimitri/pgcopydb)"
		return errors.New(r.status)
	}
	dir := filepath.Join(b.work, "pgcopydb")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, bin, "clone",
		"--source", b.src.URL(b.db), "--target", b.dst.URL(target),
		"--table-jobs", strconv.Itoa(b.jobs), "--index-jobs", strconv.Itoa(b.jobs),
		"--no-owner", "--no-acl", "--dir", dir)
	cmd.Env = b.src.clientEnv(b.binDir)
	c := runCommand(ctx, cmd, false)
	if err := failed("pgcopydb clone", c); err != nil {
		return err
	}
	r.seconds, r.clientCPU, r.peakRSS = c.seconds, c.cpu, c.maxRSS
	version, _ := exec.CommandContext(ctx, bin, "--version").Output()
	r.detail = strings.TrimSpace(firstLine(lastLine(string(version)))) + "; it also runs VACUUM ANALYZE on every table"
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "pgcopydb version") {
			return l
		}
	}
	return lines[len(lines)-1]
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d kB", n>>10)
	}
}
