package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/planrun/planrun/examples"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/steps/steptype"
)

// demoExamples are the runbooks demo can run, by name.
var demoExamples = map[string]struct {
	plan   []byte
	note   string
	writer bool // an app writes to the source throughout, then to the target (demo_writer.go)
}{
	"heroku-to-rds": {examples.HerokuToRDS, "no Heroku app given: the platform calls are skipped", false},
	"zero-downtime": {examples.ZeroDowntime, "no app API given: the maintenance and switch calls are skipped", false},
	"heroku-zero-downtime": {examples.HerokuZeroDowntime,
		"trigger-based capture, as a source without logical replication needs; no app API given: the switch is skipped", true},
}

// runDemo runs the main job end to end on this machine: two throwaway
// PostgreSQL servers, the source seeded with a sample shop, a runbook
// (the Heroku → RDS one unless told) applied between them, then both
// servers stopped and removed.
func runDemo(c *CLI, args []string) int {
	fs := c.newFlags("demo", "[--example heroku-to-rds|zero-downtime|heroku-zero-downtime] [--size small|default] [--jobs N] [--keep]")
	example := fs.String("example", "heroku-to-rds", "the runbook to run: heroku-to-rds (dump, restore, verify), zero-downtime (logical replication, cut-over, verify) or heroku-zero-downtime (trigger-based capture, cut-over, verify)")
	size := fs.String("size", "default", "sample data size: small (a few thousand rows) or default (about 307,000 rows)")
	jobs := fs.Int("jobs", 4, "parallel dump, restore and count jobs")
	keep := fs.Bool("keep", false, "keep the servers running after the run, until Ctrl-C, and print their URLs")
	if _, code, ok := c.parseFlags(fs, args, 0); !ok {
		return code
	}
	ex, ok := demoExamples[*example]
	if !ok {
		fmt.Fprintf(c.stderr, "planrun demo: --example is heroku-to-rds, zero-downtime or heroku-zero-downtime, not %q\n", *example)
		return ExitUsage
	}
	data := sampleapp.Default
	switch *size {
	case "default":
	case "small":
		data = sampleapp.Small
	default:
		fmt.Fprintf(c.stderr, "planrun demo: --size is small or default, not %q\n", *size)
		return ExitUsage
	}
	ctx := c.ctx
	start := time.Now()
	fmt.Fprintln(c.stdout, "Starting two throwaway PostgreSQL servers (source and target)...")
	source, target, err := pgtest.StartPair(ctx, pgtest.Options{})
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	defer func() {
		for _, s := range []*pgtest.Server{source, target} {
			if err := s.Stop(); err != nil {
				fmt.Fprintf(c.stderr, "planrun demo: stopping a server: %v\n", err)
			}
		}
	}()
	srcURL, err := source.CreateDatabase(ctx, "shop")
	if err == nil {
		_, err = target.CreateDatabase(ctx, "shop")
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	dstURL := target.URL("shop")
	fmt.Fprintf(c.stdout, "Seeding the source with the sample shop (%d customers, %d orders)...\n", data.Customers, data.Orders)
	seedStart := time.Now()
	if err := sampleapp.Seed(ctx, srcURL, data); err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(c.stdout, "Seeded in %s.\n\n", report.FormatDuration(time.Since(seedStart)))

	dir, err := os.MkdirTemp("", "planrun-demo-")
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	defer os.RemoveAll(dir)
	planPath := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planPath, ex.plan, 0o644); err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(c.stdout, "Applying examples/%s/plan.hcl (%s).\n", *example, ex.note)
	run := c
	var w *demoWriter
	var stopWriter context.CancelFunc
	if ex.writer {
		fmt.Fprintln(c.stdout, "A writer inserts orders and renames customers on the source throughout, as the app would, and moves to the target once the switch is done.")
		w = newDemoWriter(srcURL, dstURL, data.Customers)
		var wctx context.Context
		wctx, stopWriter = context.WithCancel(ctx)
		defer stopWriter()
		go w.run(wctx)
		sub := *c
		sub.registry = c.registry.With(map[string]steptype.Type{"capture": w.captureType()})
		run = &sub
	}
	code := run.Main([]string{"apply", "--auto-approve",
		"-var", "source_url=" + srcURL, "-var", "target_url=" + dstURL, "-var", fmt.Sprintf("jobs=%d", *jobs), planPath})
	if w != nil {
		w.stop(ctx, stopWriter, code == ExitOK)
		if wcode := reportWriter(c, w, code); code == ExitOK {
			code = wcode
		}
	}
	fmt.Fprintf(c.stdout, "\nDemo finished in %s (exit code %d).\n", report.FormatDuration(time.Since(start)), code)
	if *keep {
		fmt.Fprintf(c.stdout, "Source: %s\nTarget: %s\nThe plan and its record: %s (planrun report %s)\nPress Ctrl-C to stop both servers and remove them.\n",
			srcURL, dstURL, dir, planPath)
		<-ctx.Done()
	} else {
		// The record named above goes with the temporary directory.
		fmt.Fprintln(c.stdout, "The demo's plan and run record are removed with its servers; --keep keeps them until Ctrl-C.")
	}
	return code
}

// reportWriter prints what the demo's writer saw and checks, after a
// successful run, that the target has every acknowledged write.
func reportWriter(c *CLI, w *demoWriter, code int) int {
	refused := fmt.Sprintf("%s refused while fenced", groupDigits(w.refused))
	if w.err != nil {
		fmt.Fprintf(c.stdout, "\nWriter: %s writes acknowledged, %s, then stopped by an error.\n", groupDigits(w.acked), refused)
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", w.err)
		return ExitFailed
	}
	if code != ExitOK {
		fmt.Fprintf(c.stdout, "\nWriter: %s writes acknowledged, %s; the run failed, so the app stays on the source: not checked against the target.\n", groupDigits(w.acked), refused)
		return code
	}
	lost, err := w.lost(c.ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	window := "no write was refused"
	if d, ok := w.blocked(); ok {
		window = fmt.Sprintf("writes were blocked for %.2f s", d.Seconds())
	} else if w.refused > 0 {
		window = "the writer never reached the target"
	}
	if lost > 0 {
		fmt.Fprintf(c.stdout, "\nWriter: %s writes acknowledged (%s of them NOT on the target), %s; %s.\n", groupDigits(w.acked), groupDigits(lost), refused, window)
		fmt.Fprintf(c.stderr, "planrun demo: %s acknowledged writes are missing from the target\n", groupDigits(lost))
		return ExitFailed
	}
	fmt.Fprintf(c.stdout, "\nWriter: %s writes acknowledged (all %s on the target), %s; %s.\n", groupDigits(w.acked), groupDigits(w.acked), refused, window)
	return ExitOK
}
