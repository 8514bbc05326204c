package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/planrun/planrun/examples"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/sampleapp"
)

// runDemo runs the main job end to end on this machine: two throwaway
// PostgreSQL servers, the source seeded with a sample shop, the Heroku → RDS
// runbook applied between them, then both servers stopped and removed.
func runDemo(c *CLI, args []string) int {
	fs := c.newFlags("demo", "[--size small|default] [--jobs N] [--keep]")
	size := fs.String("size", "default", "sample data size: small (a few thousand rows) or default (about 307,000 rows)")
	jobs := fs.Int("jobs", 4, "parallel dump, restore and count jobs")
	keep := fs.Bool("keep", false, "keep the servers running after the run, until Ctrl-C, and print their URLs")
	if _, code, ok := c.parseFlags(fs, args, 0); !ok {
		return code
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
	fmt.Fprintf(c.stdout, "Seeded in %s.\n\n", fmtDuration(time.Since(seedStart)))

	dir, err := os.MkdirTemp("", "planrun-demo-")
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	defer os.RemoveAll(dir)
	planPath := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planPath, examples.HerokuToRDS, 0o644); err != nil {
		fmt.Fprintf(c.stderr, "planrun demo: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintln(c.stdout, "Applying examples/heroku-to-rds/plan.hcl (no Heroku app given: the platform calls are skipped).")
	code := c.Main([]string{"apply", "--auto-approve",
		"-var", "source_url=" + srcURL, "-var", "target_url=" + dstURL, "-var", fmt.Sprintf("jobs=%d", *jobs), planPath})
	fmt.Fprintf(c.stdout, "\nDemo finished in %s (exit code %d).\n", fmtDuration(time.Since(start)), code)
	if *keep {
		fmt.Fprintf(c.stdout, "Source: %s\nTarget: %s\nPress Ctrl-C to stop both servers.\n", srcURL, dstURL)
		<-ctx.Done()
	}
	return code
}
