package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// planrunPlan is the plan the benchmark applies: the copy step as a user
// writes it, with the jobs of the run.
const planrunPlan = `plan "bench" {}

variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}

database "source" { url = var.src }
database "target" { url = var.dst }

step "copy" {
  uses   = "copy"
  source = database.source
  target = database.target
  jobs   = %d
  %s
}
`

// planrunCopy applies a plan with a copy step through the planrun binary.
func (b *bench) planrunCopy(ctx context.Context, target string, r *result) error {
	return b.planrunCopyWith(b.copyArgs)(ctx, target, r)
}

// planrunCopyWith is planrunCopy with other arguments for the step.
func (b *bench) planrunCopyWith(args string) func(context.Context, string, *result) error {
	return func(ctx context.Context, target string, r *result) error {
		return b.planrunCopyArgs(ctx, target, r, args)
	}
}

func (b *bench) planrunCopyArgs(ctx context.Context, target string, r *result, args string) error {
	out, c, err := b.applyPlan(ctx, "copy", fmt.Sprintf(planrunPlan, b.jobs, args), target, true)
	if err != nil {
		return err
	}
	r.seconds, r.clientCPU, r.peakRSS = c.seconds, c.cpu, c.vmHWM
	var o struct {
		Bytes  int64 `json:"bytes"`
		Phases struct {
			Schema       float64 `json:"schema"`
			Data         float64 `json:"data"`
			LargeObjects float64 `json:"large_objects"`
			Sequences    float64 `json:"sequences"`
			PostData     float64 `json:"post_data"`
			Analyze      float64 `json:"analyze"`
		} `json:"phases"`
		Tables []struct {
			Name   string  `json:"name"`
			Chunks int     `json:"chunks"`
			Split  string  `json:"split"`
			Rate   float64 `json:"stream_bytes_per_second"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return fmt.Errorf("the copy step's output: %w", err)
	}
	p := o.Phases
	r.detail = fmt.Sprintf("schema %.1fs, data %.1fs (%s streamed), large objects %.1fs, sequences %.1fs, post-data %.1fs, analyze %.1fs",
		p.Schema, p.Data, human(o.Bytes), p.LargeObjects, p.Sequences, p.PostData, p.Analyze)
	for _, t := range o.Tables {
		if t.Split != "" {
			verdict := "kept whole"
			if strings.HasPrefix(t.Split, "link-bound") {
				verdict = "link-bound, split"
			}
			r.detail += fmt.Sprintf("; %s: first stream %s/s, %s, %d chunks", t.Name, human(int64(t.Rate)), verdict, t.Chunks)
		}
	}
	return nil
}

// applyPlan runs planrun apply on a plan in a fresh directory and returns
// the output of its only step or check, from the run's record.
func (b *bench) applyPlan(ctx context.Context, name, plan, target string, watch bool) ([]byte, commandRun, error) {
	dir := filepath.Join(b.work, "plan-"+name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, commandRun{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, commandRun{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(plan), 0o644); err != nil {
		return nil, commandRun{}, err
	}
	cmd := exec.CommandContext(ctx, b.planrun, "apply", "--auto-approve", "plan.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLANRUN_VAR_src="+b.src.URL(b.db), "PLANRUN_VAR_dst="+b.dst.URL(target), "PLANRUN_PG_BINDIR="+b.binDir)
	c := runCommand(ctx, cmd, watch)
	if err := failed("planrun apply", c); err != nil {
		return nil, c, err
	}
	out, err := stepOutput(dir)
	return out, c, err
}

// stepOutput reads the output of the step that finished from the record
// of the plan's run.
func stepOutput(dir string) ([]byte, error) {
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "*", "runs", "*.jsonl"))
	if len(files) != 1 {
		return nil, fmt.Errorf("%d run records in %s", len(files), dir)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Output json.RawMessage `json:"output"`
		}
		if err := dec.Decode(&ev); err == io.EOF {
			return nil, errors.New("no step_finished event in the run record")
		} else if err != nil {
			return nil, err
		}
		if ev.Type == "step_finished" && len(ev.Output) > 0 {
			return ev.Output, nil
		}
	}
}

// comparePlan checks the copy with planrun's compare: checksums of every
// row, computed in both databases.
const comparePlan = `plan "verify" {}

variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}

database "source" { url = var.src }
database "target" { url = var.dst }

check "same" {
  uses   = "compare"
  source = database.source
  target = database.target
  jobs   = %d
  data   = "checksum"
  assert { that = "output.equal" }
}
`

// compareChecksums validates the copy in target with planrun compare.
func (b *bench) compareChecksums(ctx context.Context, target string) result {
	r := result{name: "planrun compare, data = \"checksum\""}
	srcCPU, dstCPU := b.src.cpuSeconds(), b.dst.cpuSeconds()
	b.log("%s ...", r.name)
	out, c, err := b.applyPlan(ctx, "compare", fmt.Sprintf(comparePlan, b.jobs), target, false)
	if err != nil {
		if strings.Contains(err.Error(), `"data"`) && strings.Contains(err.Error(), "Unsupported argument") {
			r.status = "pending: this planrun's compare has no data = \"checksum\" yet"
		} else {
			r.status = "failed: " + err.Error()
		}
		return r
	}
	time.Sleep(300 * time.Millisecond)
	r.srcCPU, r.dstCPU = b.src.cpuSeconds()-srcCPU, b.dst.cpuSeconds()-dstCPU
	r.seconds, r.clientCPU, r.peakRSS = c.seconds, c.cpu, c.maxRSS
	var o struct {
		Tables []struct {
			SourceRows *int64 `json:"source_rows"`
		} `json:"tables"`
		Equal   bool    `json:"equal"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		r.status = "failed: " + err.Error()
		return r
	}
	// The step's own time, connections included, as count(*)'s is: the
	// planrun process's start and its run record are not the comparison.
	r.seconds = o.Seconds
	// Its tables include partitioned ones, which count their partitions'
	// rows again: the rows column stays empty.
	r.detail = fmt.Sprintf("equal = %v, %d tables and partitioned tables checksummed; the step's own time (planrun apply took %.2f s)", o.Equal, len(o.Tables), c.seconds)
	return r
}

// countBoth counts every table's rows on both sides, jobs tables at a
// time on each, both sides at once.
func (b *bench) countBoth(ctx context.Context, target string) result {
	r := result{name: "count(*) of every table, both sides"}
	srcCPU, dstCPU := b.src.cpuSeconds(), b.dst.cpuSeconds()
	start := time.Now()
	var src, dst map[string]int64
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { src, srcErr = parallelCounts(ctx, b.src.URL(b.db), b.jobs) })
	wg.Go(func() { dst, dstErr = parallelCounts(ctx, b.dst.URL(target), b.jobs) })
	wg.Wait()
	r.seconds = time.Since(start).Seconds()
	time.Sleep(300 * time.Millisecond)
	r.srcCPU, r.dstCPU = b.src.cpuSeconds()-srcCPU, b.dst.cpuSeconds()-dstCPU
	if err := errors.Join(srcErr, dstErr); err != nil {
		r.status = "failed: " + err.Error()
		return r
	}
	differ := 0
	for name, n := range src {
		r.rows += n
		if dst[name] != n {
			differ++
		}
	}
	r.detail = fmt.Sprintf("%d tables, %d differ", len(src), differ)
	return r
}

func parallelCounts(ctx context.Context, url string, jobs int) (map[string]int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	names, err := tableNames(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var mu sync.Mutex
	err = parallel(ctx, names, jobs, url, func(ctx context.Context, conn *pgx.Conn, name string) error {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+name).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		mu.Lock()
		out[name] = n
		mu.Unlock()
		return nil
	})
	return out, err
}

// parallel runs fn for every item, jobs at a time, each worker on its own
// connection to url. The first error stops the rest.
func parallel[T any](ctx context.Context, items []T, jobs int, url string, fn func(context.Context, *pgx.Conn, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(jobs, len(items)) {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				cancel(err)
				return
			}
			defer conn.Close(context.WithoutCancel(ctx))
			for it := range work {
				if err := fn(ctx, conn, it); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
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
