// Command bench measures planrun copy against the usual ways of moving a
// PostgreSQL database, on one dataset, in one run:
//
//	go run ./bench [-scale N] [-sample F] [-jobs J] [-keep]
//
// It starts two throwaway PostgreSQL servers tuned alike, fills the source
// with pgbench's tables at scale N and the sample shop at F times its
// default size, then times, each into an empty target database:
//
//  1. pg_dump -Fd --jobs J, then pg_restore --jobs J
//  2. pg_dump -Fc | pg_restore
//  3. pgcopydb clone --table-jobs J --index-jobs J (if installed)
//  4. planrun copy, through the planrun binary and a plan, as users run it
//  5. the raw floor: COPY TO | COPY FROM of every table (J at a time) into
//     tables without indexes, then pg_restore --jobs J of the post-data
//
// and checks planrun's copy two ways: planrun compare with data checksums,
// and count(*) of every table on both sides. It prints each figure, its
// ratio to planrun copy's time, the CPU each side spent, and the peak
// memory of the planrun process. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/planrun/planrun/internal/pgtest"
)

func main() {
	scale := flag.Int("scale", 50, "pgbench scale: 100,000 pgbench_accounts rows (about 15 MB) each; 0 for none")
	sample := flag.Float64("sample", 1, "sample shop size, times its default (about 307,000 rows); 0 for none")
	jobs := flag.Int("jobs", runtime.NumCPU(), "parallel jobs for every contender")
	keep := flag.Bool("keep", false, "keep the servers when done, print how to reach them, and wait for Ctrl-C")
	only := flag.String("only", "", "run only these, comma-separated: dump-dir, dump-pipe, pgcopydb, planrun, planrun-best, floor, compare, count")
	repeat := flag.Int("repeat", 1, "run each contender this many times, in rounds, and report the median")
	copyArgs := flag.String("copy-args", "", "more arguments for planrun's copy step, as HCL (e.g. 'split_bytes = \"1GB\"')")
	planrun := flag.String("planrun", "", "the planrun binary (default: build ./cmd/planrun)")
	linkRate := flag.String("link-rate", "", "reach the source through a proxy that caps each connection at this rate (e.g. 4MB: bytes a second, each direction)")
	linkDelay := flag.Duration("link-delay", 0, "with -link-rate: the proxy's added latency, each direction (e.g. 3ms)")
	bestArgs := flag.String("best-args", `split_bytes = "8MB"`, "the copy step's arguments for the planrun-best contender (run by default with -link-rate)")
	flag.Parse()
	rate, err := parseRate(*linkRate)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: -link-rate: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, options{scale: *scale, sample: *sample, jobs: *jobs, repeat: *repeat, keep: *keep, only: *only, planrun: *planrun, copyArgs: *copyArgs,
		linkRate: rate, linkDelay: *linkDelay, bestArgs: *bestArgs}); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	scale         int
	sample        float64
	jobs, repeat  int
	keep          bool
	only, planrun string
	copyArgs      string
	linkRate      float64 // bytes a second per connection through the proxy; 0: no proxy
	linkDelay     time.Duration
	bestArgs      string
}

func run(ctx context.Context, o options) error {
	scale, sample, jobs, keep, only, planrun := o.scale, o.sample, o.jobs, o.keep, o.only, o.planrun
	if jobs < 1 || o.repeat < 1 {
		return fmt.Errorf("-jobs and -repeat must be at least 1")
	}
	selected := func(name string) bool {
		if only == "" {
			// The tuned copy is the comparison a capped link asks for.
			return name != "planrun-best" || o.linkRate > 0
		}
		for _, s := range strings.Split(only, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	binDir, err := pgtest.FindBinDir()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "planrun-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if planrun == "" {
		planrun = filepath.Join(work, "planrun")
		logf("building planrun")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", planrun, "github.com/planrun/planrun/cmd/planrun").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/planrun: %w\n%s", err, out)
		}
	}

	logf("starting two PostgreSQL servers")
	src, dst, err := startServers(ctx)
	if err != nil {
		return err
	}
	if !keep {
		defer src.Stop()
		defer dst.Stop()
	}
	b := &bench{src: src, dst: dst, binDir: binDir, planrun: planrun, work: work, jobs: jobs, db: "bench", log: logf, copyArgs: o.copyArgs}
	logf("generating the dataset")
	if err := generate(ctx, src, b.db, binDir, scale, sample, logf); err != nil {
		return err
	}
	size, rows, tables, err := datasetSize(ctx, src, b.db) // also reads every table once: the cache is warm for all
	if err != nil {
		return err
	}
	logf("dataset: %s, %d rows in %d tables", human(size), rows, tables)

	// A fresh server creates its WAL files as it first writes, which
	// would slow whoever runs first: one untimed copy makes them (later
	// runs recycle them).
	logf("warming up: one untimed copy creates the target's WAL files")
	if w := b.measure(ctx, "warm-up", "t_warmup", b.rawFloor); w.status != "" {
		return fmt.Errorf("warm-up: %s", w.status)
	}
	if err := dst.DropDatabase(ctx, "t_warmup"); err != nil {
		return err
	}

	link := ""
	if o.linkRate > 0 {
		// From here on every contender reaches the source through the
		// capped link; the dataset was made and read directly.
		p, err := startLinkProxy(ctx, fmt.Sprintf("%s:%d", src.Host, src.Port), o.linkRate, o.linkDelay)
		if err != nil {
			return err
		}
		defer p.close()
		b.src = &server{Server: src.Server, name: "source", via: p.port()}
		link = fmt.Sprintf("; the source behind a proxy capping each connection at %s/s, %s of delay each way", human(int64(o.linkRate)), o.linkDelay)
		logf("source link: %s/s per connection, %s delay (proxy on port %d)", human(int64(o.linkRate)), o.linkDelay, p.port())
	}

	var copied string // the database planrun copied into, for the checks
	contenders := []struct {
		key, name, db string
		fn            func(context.Context, string, *result) error
	}{
		{"dump-dir", fmt.Sprintf("pg_dump -Fd --jobs %d + pg_restore --jobs %d", jobs, jobs), "t_dump_dir", b.dumpDirectory},
		{"dump-pipe", "pg_dump -Fc | pg_restore", "t_dump_pipe", b.dumpPipe},
		{"pgcopydb", fmt.Sprintf("pgcopydb clone --table-jobs %d --index-jobs %d", jobs, jobs), "t_pgcopydb", b.pgcopydb},
		{"planrun", fmt.Sprintf("planrun copy (jobs = %d)", jobs), "t_planrun", b.planrunCopy},
		{"planrun-best", fmt.Sprintf("tuned: planrun copy (jobs = %d, %s)", jobs, o.bestArgs), "t_planrun_best", b.planrunCopyWith(o.bestArgs)},
		{"floor", fmt.Sprintf("raw floor: COPY | COPY, %d at a time, + post-data", jobs), "t_floor", b.rawFloor},
	}
	// Rounds: every contender once per round, so that whatever drifts
	// over the session (caches, the disk) touches them all alike.
	runs := make([][]result, len(contenders))
	for round := 1; round <= o.repeat; round++ {
		for i, c := range contenders {
			if !selected(c.key) {
				continue
			}
			name := c.name
			if o.repeat > 1 {
				logf("round %d of %d", round, o.repeat)
			}
			r := b.measure(ctx, name, c.db, c.fn)
			runs[i] = append(runs[i], r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case c.key == "planrun" && r.status == "":
				copied = c.db
			case !keep:
				_ = dst.DropDatabase(ctx, c.db) // room on disk for the next
			}
		}
	}
	var results []result
	for _, rs := range runs {
		if len(rs) > 0 {
			results = append(results, median(rs))
		}
	}
	if copied != "" {
		// In rounds too, alternating, so that both see the same caches.
		var compares, counts []result
		for range o.repeat {
			if selected("compare") {
				compares = append(compares, b.compareChecksums(ctx, copied))
			}
			if selected("count") {
				counts = append(counts, b.countBoth(ctx, copied))
			}
		}
		for _, rs := range [][]result{compares, counts} {
			if len(rs) > 0 {
				results = append(results, median(rs))
			}
		}
	}
	report(os.Stdout, results, machine(ctx, binDir), fmt.Sprintf("scale %d + sample %g: %s on disk, %d rows in %d tables%s", scale, sample, human(size), rows, tables, link), rows)

	if keep {
		fmt.Printf("\nThe servers are still running (Ctrl-C stops them):\n  source: %s\n  target: %s\n", src.URL(b.db), dst.URL("postgres"))
		<-ctx.Done()
		src.Stop()
		dst.Stop()
	}
	return nil
}

// machine describes where the benchmark ran.
func machine(ctx context.Context, binDir string) string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		if k, v, ok := strings.Cut(strings.Split(string(raw), "\n")[0], ":"); ok && k == "MemTotal" {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			mem = fmt.Sprintf(", %s RAM", human(kb<<10))
		}
	}
	version, _ := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	return fmt.Sprintf("%d CPUs (%s)%s, %s, %s, %s/%s", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(version)), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
