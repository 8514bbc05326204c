package replicate

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// BenchmarkReplicateCost measures what logical replication costs the
// source and how far behind the target stays, on pgbench's tables at
// scale 10 (pgbench_history given a key, as in BenchmarkCaptureCost, so
// that both run the same workload):
//
//	go test ./steps/replicate -run '^$' -bench BenchmarkReplicateCost -benchtime 1x
//
// tps_off and tps_on are pgbench's TPC-B-like TPS (4 clients, 10 s)
// without replication and with replicate started (publication, slot and
// subscription into a fresh target database, whose schema is restored
// first and whose rows the subscription copies) and streaming; x_tps is
// on / off. lag_max_s is the largest lag while pgbench wrote at a steady
// 300 transactions/s (2 clients, 10 s), after catch_up had brought the
// target level again. replicate has no follow option and reports lag in
// bytes only, so the benchmark samples the source itself every 200 ms:
// the source's insert position and the slot's confirmed_flush_lsn (what
// catch_up waits on); a sample's lag is its time minus when the source's
// position passed the confirmed one, interpolated between the samples'
// timestamps (clock_timestamp() on the source). pg_stat_replication's
// replay_lag, also sampled, is only logged: it follows the apply position,
// ahead of the flushed one. catch_s is how long catch_up then took to
// report caught up. With -benchtime Nx, the TPS and catch_s are means
// over the iterations and lag_max_s their largest; each iteration logs
// its own line. Both servers are local and share the machine's cores.
func BenchmarkReplicateCost(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	replPrepare(b)
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(b)}
	steptest.PgbenchKeyed(ctx, b, src, 10)
	pgbench := func(args ...string) float64 { return steptest.MustPgbenchRun(ctx, b, src, args...) }
	env := &steptype.Env{Secrets: func(...string) {}}

	var sumOff, sumOn, sumCatch, lagMax float64
	for b.Loop() {
		dst := &pgkit.Database{Name: "target", URL: Target.FreshDB(b)}
		slot := defaultSlotName("bench", "cost", fmt.Sprint(time.Now().UnixNano()))
		replicate := func(action string) *ReplicateOutput {
			out, err := runReplicate(ctx, env, &ReplicateArgs{Source: src, Target: dst, Slot: slot, Action: action, MaxWait: "10m"})
			if err != nil {
				b.Fatalf("%s: %v", action, err)
			}
			return out
		}
		stopped := false
		b.Cleanup(func() { // a failed iteration leaves no subscription, slot or publication
			if !stopped {
				cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
				defer ccancel()
				if _, err := runReplicate(cctx, env, &ReplicateArgs{Source: src, Target: dst, Slot: slot, Action: "stop"}); err != nil {
					b.Errorf("cleanup: stop: %v", err)
				}
			}
		})
		checkpoint := func() {
			for _, url := range []string{src.URL, dst.URL} {
				steptest.MustExec(b, url, "CHECKPOINT")
			}
		}

		checkpoint()
		off := pgbench("-c", "4", "-j", "2", "-T", "10")
		replSchemaClone(ctx, b, src, dst)
		started := replicate("start")
		checkpoint()
		on := pgbench("-c", "4", "-j", "2", "-T", "10")
		start := time.Now()
		drained := replicate("catch_up")
		drain := time.Since(start).Seconds()

		checkpoint()
		lag, err := sampleLag(ctx, src.URL, slot, func(ctx context.Context) (float64, error) {
			return steptest.PgbenchRun(ctx, src, "-c", "2", "-j", "2", "-R", "300", "-T", "10")
		})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		final := replicate("catch_up")
		catch := time.Since(start).Seconds()
		replicate("stop")
		stopped = true

		sumOff += off
		sumOn += on
		sumCatch += catch
		lagMax = max(lagMax, lag.max)
		b.Logf("pgbench TPS %.0f without replication, %.0f with (%.2fx); start took %.1fs (%d tables); caught up after the full-speed run in %.2fs (%d bytes behind at the end); at 300 tps (%.0f achieved, %d samples): largest lag %.2fs (replay_lag %.2fs), then caught up in %.2fs (%d bytes behind at the end)",
			off, on, on/off, started.Seconds, started.Tables, drain, drained.LagBytes, lag.tps, lag.samples, lag.max, lag.replayMax, catch, final.LagBytes)
	}
	n := float64(b.N)
	b.ReportMetric(sumOff/n, "tps_off")
	b.ReportMetric(sumOn/n, "tps_on")
	b.ReportMetric(sumOn/sumOff, "x_tps")
	b.ReportMetric(lagMax, "lag_max_s")
	b.ReportMetric(sumCatch/n, "catch_s")
}

// lagSamples is what sampleLag saw.
type lagSamples struct {
	max       float64 // the largest lag, in seconds
	replayMax float64 // the largest replay_lag pg_stat_replication showed, in seconds
	samples   int
	tps       float64 // what the workload reported
}

// sampleLag runs the workload and, until it ends, samples the slot's lag
// every 200 ms (see BenchmarkReplicateCost). It waits for the workload
// whatever happens.
func sampleLag(ctx context.Context, srcURL, slot string, workload func(context.Context) (float64, error)) (*lagSamples, error) {
	conn, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	type walAt struct {
		at  float64 // seconds since the epoch, on the source
		lsn int64
	}
	var history []walAt
	out := &lagSamples{}
	sample := func() error {
		var now walAt
		var confirmed int64
		var replay *float64
		err := conn.QueryRow(ctx, `SELECT extract(epoch FROM clock_timestamp())::float8,
			pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint,
			pg_wal_lsn_diff(s.confirmed_flush_lsn, '0/0')::bigint,
			extract(epoch FROM r.replay_lag)::float8
			FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
			WHERE s.slot_name = $1`, slot).Scan(&now.at, &now.lsn, &confirmed, &replay)
		if err != nil {
			return fmt.Errorf("sample slot %s: %w", slot, err)
		}
		history = append(history, now)
		out.samples++
		if replay != nil {
			out.replayMax = max(out.replayMax, *replay)
		}
		if confirmed >= now.lsn {
			return nil
		}
		// When the source's position first passed the confirmed one; before
		// the first sample, that sample's time (so the lag is a lower bound).
		j := sort.Search(len(history), func(i int) bool { return history[i].lsn > confirmed })
		passed := history[0].at
		if j > 0 {
			p, q := history[j-1], history[j]
			passed = p.at + (q.at-p.at)*float64(confirmed-p.lsn)/float64(q.lsn-p.lsn)
		}
		out.max = max(out.max, now.at-passed)
		return nil
	}
	if err := sample(); err != nil {
		return nil, err
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var werr error
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		out.tps, werr = workload(wctx)
	})
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			if err = sample(); err != nil {
				cancel()
				running = false
			}
		}
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	return out, nil
}
