package capture

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// BenchmarkCaptureCost measures what capture costs the source and how fast
// the replay goes, on pgbench's tables at scale 10 (pgbench_history given
// a key, in both runs, so that it can be captured):
//
//	go test ./steps/capture -run '^$' -bench BenchmarkCaptureCost -benchtime 1x
//
// tps_off and tps_on are pgbench's TPC-B-like TPS (4 clients, 10 s)
// without and with the capture's triggers; x_tps is on / off.
// drain_rows_s is catch_up's rate on the log the second run left.
// lag_max_s is the largest lag catch_up (follow = 10s) showed while
// pgbench wrote at a steady 300 transactions/s (1,500 captured row
// changes/s), after a verify (verify_s), so that the rows it touches are
// kept for the cut-over's check. fence_s is the cutover's window: the
// drain, the sequences and the check of the rows changed since the
// verify. Both servers are local and share the machine's cores.
func BenchmarkCaptureCost(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(b)}
	steptest.PgbenchKeyed(ctx, b, src, 10)
	pgbench := func(args ...string) float64 { return steptest.MustPgbenchRun(ctx, b, src, args...) }
	for b.Loop() {
		dst := &pgkit.Database{Name: "target", URL: Target.FreshDB(b)}
		env := &steptype.Env{Secrets: func(...string) {}}
		capture := func(action string, more func(*CaptureArgs)) *CaptureOutput {
			a := &CaptureArgs{Source: src, Target: dst, Action: action}
			if more != nil {
				more(a)
			}
			out, err := runCapture(ctx, env, a)
			if err != nil {
				b.Fatalf("%s: %v", action, err)
			}
			return out
		}
		steptest.MustExec(b, src.URL, "CHECKPOINT")
		off := pgbench("-c", "4", "-j", "2", "-T", "10")
		capture("start", nil)
		steptest.MustExec(b, src.URL, "CHECKPOINT")
		on := pgbench("-c", "4", "-j", "2", "-T", "10")
		logged := steptest.Query(b, src.URL, "SELECT count(*) FROM planrun_capture.log")[0]
		start := time.Now()
		up := capture("catch_up", nil)
		drain := float64(up.Applied) / time.Since(start).Seconds()
		verify := capture("verify", nil)

		var wg sync.WaitGroup
		var steadyErr error
		wg.Go(func() { _, steadyErr = steptest.PgbenchRun(ctx, src, "-c", "2", "-j", "2", "-R", "300", "-T", "10") })
		follow := capture("catch_up", func(a *CaptureArgs) { a.Follow = "10s" })
		wg.Wait()
		if steadyErr != nil {
			b.Fatal(steadyErr)
		}
		final := capture("catch_up", nil)
		cut := capture("cutover", nil)
		capture("stop", nil)
		b.ReportMetric(off, "tps_off")
		b.ReportMetric(on, "tps_on")
		b.ReportMetric(on/off, "x_tps")
		b.ReportMetric(drain, "drain_rows_s")
		b.ReportMetric(follow.LagMax, "lag_max_s")
		b.ReportMetric(verify.Seconds, "verify_s")
		b.ReportMetric(cut.FenceSeconds, "fence_s")
		b.Logf("pgbench TPS %.0f without capture, %.0f with (%.2fx); %s changes logged, replayed at %.0f rows/s; verify of %d rows %.2fs; "+
			"at 300 tps: %d changes replayed while following, largest lag %.2fs, %d after; cutover: fenced %.2fs, %d rows changed since the verify checked",
			off, on, on/off, logged, drain, verify.VerifiedRows, verify.Seconds, follow.Applied, follow.LagMax, final.Applied, cut.FenceSeconds, cut.VerifiedRows)
	}
}
