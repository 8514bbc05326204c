package replicate

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// BenchmarkReplicateInitialCopy times replicate's start, from nothing to
// "in sync" (caught up), with initial_copy = "subscription" and with
// initial_copy = "copy", on pgbench's tables at scale 10 (1,000,000
// accounts, about 130 MB) plus the sample app at its default size (about
// 307,000 varied rows), into a fresh target database each time:
//
//	go test ./steps/replicate -run '^$' -bench BenchmarkReplicateInitialCopy -benchtime 3x
//
// subscription_s is start alone; the schema it needs first (pg_dump
// --schema-only | pg_restore, indexes included) is schema_s. copy_s is
// start with initial_copy = "copy", jobs = 2, which creates the schema
// itself. x_copy is copy_s / (schema_s + subscription_s). Both servers
// are local and share the machine's cores with the benchmark.
func BenchmarkReplicateInitialCopy(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	replPrepare(b)
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(b)}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sampleapp.Seed(ctx, src.URL, sampleapp.Default); err != nil {
			b.Error(err)
		}
	})
	steptest.Pgbench(ctx, b, src, 10)
	wg.Wait()
	// pgbench_history has no key, and is empty: FULL lets it be published.
	steptest.MustExec(b, src.URL, "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
	steptest.MustExec(b, src.URL, "VACUUM ANALYZE")
	env := &steptype.Env{Secrets: func(...string) {}}
	jobs := 2

	var schema, subscription, copied time.Duration
	var rows int64
	run := func(mode string) {
		dst := &pgkit.Database{Name: "target", URL: Target.FreshDB(b)}
		for _, url := range []string{src.URL, dst.URL} {
			steptest.MustExec(b, url, "CHECKPOINT")
		}
		slot := defaultSlotName("bench", mode, fmt.Sprint(time.Now().UnixNano()))
		a := &ReplicateArgs{Source: src, Target: dst, Slot: slot, MaxWait: "10m", InitialCopy: mode}
		if mode == "subscription" {
			start := time.Now()
			replSchemaClone(ctx, b, src, dst)
			schema += time.Since(start)
		} else {
			a.Jobs = &jobs
		}
		start := time.Now()
		out, err := runReplicate(ctx, env, a)
		if err != nil {
			b.Fatalf("%s: %v", mode, err)
		}
		if mode == "subscription" {
			subscription += time.Since(start)
		} else {
			copied += time.Since(start)
			rows = out.Copy.Rows
		}
		if _, err := runReplicate(ctx, env, &ReplicateArgs{Source: src, Target: dst, Slot: slot, Action: "stop"}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		run("subscription")
		run("copy")
	}
	n := float64(b.N)
	b.ReportMetric(schema.Seconds()/n, "schema_s/op")
	b.ReportMetric(subscription.Seconds()/n, "subscription_s/op")
	b.ReportMetric(copied.Seconds()/n, "copy_s/op")
	b.ReportMetric(copied.Seconds()/(schema+subscription).Seconds(), "x_copy")
	b.ReportMetric(float64(rows), "rows")
}

// replSchemaClone restores the source's schema, indexes included, into the
// target, as a runbook does before a subscription copies the rows.
func replSchemaClone(ctx context.Context, b testing.TB, from, to *pgkit.Database) {
	dump, _, err := pgkit.Tool(ctx, "pg_dump", 15)
	if err != nil {
		b.Fatal(err)
	}
	restore, _, err := pgkit.Tool(ctx, "pg_restore", 15)
	if err != nil {
		b.Fatal(err)
	}
	srcConn, srcEnv, err := pgkit.LibPQ(nil, from)
	if err != nil {
		b.Fatal(err)
	}
	tgtConn, tgtEnv, err := pgkit.LibPQ(nil, to)
	if err != nil {
		b.Fatal(err)
	}
	d := exec.CommandContext(ctx, dump, "-Fc", "--schema-only", "--no-owner", "--no-publications", "--no-subscriptions", "-d", srcConn)
	d.Env = srcEnv
	r := exec.CommandContext(ctx, restore, "--no-owner", "--exit-on-error", "-d", tgtConn)
	r.Env = tgtEnv
	if r.Stdin, err = d.StdoutPipe(); err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	d.Stderr, r.Stderr = &stderr, &stderr
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	if err := r.Run(); err != nil {
		b.Fatalf("pg_restore: %v\n%s", err, stderr.String())
	}
	if err := d.Wait(); err != nil {
		b.Fatalf("pg_dump: %v\n%s", err, stderr.String())
	}
}
