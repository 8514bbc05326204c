package compare

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// BenchmarkCompareChecksum measures compare with data = "checksum" against
// count(*) of every table on both sides, counted the way compare counts
// (jobs connections per side, both sides at once), on the sample app at
// its default size (about 307,000 wide, varied rows) plus pgbench's
// tables at scale 10 (1,000,000 narrow rows, 130 MB), identical on both
// servers. It reports seconds per op of each and their ratio:
//
//	go test ./steps -run '^$' -bench BenchmarkCompareChecksum -benchtime 5x
//
// x_count is checksum / count(*), x_compare is checksum / compare with
// data = "counts" (which reads the catalogs too). Both servers run on the
// same machine as the benchmark: with 2 cores, each side has one core's
// worth, so parallelism beyond that only hides latency.
func BenchmarkCompareChecksum(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(b)}
	tgt := &pgkit.Database{Name: "target", URL: Target.FreshDB(b)}
	if err := sampleapp.Seed(ctx, src.URL, sampleapp.Default); err != nil {
		b.Fatal(err)
	}
	cmpClone(b, src, tgt) // large objects keep their OIDs
	var wg sync.WaitGroup
	for _, db := range []*pgkit.Database{src, tgt} {
		wg.Go(func() { steptest.Pgbench(ctx, b, db, 10) })
	}
	wg.Wait()
	for _, db := range []*pgkit.Database{src, tgt} {
		steptest.MustExec(b, db.URL, "VACUUM ANALYZE")
	}

	env := &steptype.Env{Secrets: func(...string) {}, ReadOnly: true}
	jobs, data := 4, "checksum"
	o, _ := newCompareOptions(&CompareArgs{Source: src, Target: tgt})
	var tables [2][]cmpRelation
	for i, db := range []*pgkit.Database{src, tgt} {
		s, err := cmpInspect(ctx, env, db, &compareOptions{schemas: []string{}, excludeSchemas: []string{}}, "")
		if err != nil {
			b.Fatal(err)
		}
		tables[i] = s.cat.countable()
		s.close(ctx)
	}

	var count, counts, checksum time.Duration
	for b.Loop() {
		start := time.Now()
		err := cmpOnBoth(func(i int) error {
			_, err := cmpCount(ctx, env, []*pgkit.Database{src, tgt}[i], "", tables[i], o.jobs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		count += time.Since(start)

		start = time.Now()
		if _, err := Run(ctx, env, &CompareArgs{Source: src, Target: tgt, Jobs: &jobs}); err != nil {
			b.Fatal(err)
		}
		counts += time.Since(start)

		start = time.Now()
		out, err := Run(ctx, env, &CompareArgs{Source: src, Target: tgt, Jobs: &jobs, Data: &data})
		if err != nil {
			b.Fatal(err)
		}
		checksum += time.Since(start)
		if len(out.Mismatched) != 0 {
			b.Fatalf("mismatched %v", out.Mismatched)
		}
	}
	n := float64(b.N)
	b.ReportMetric(count.Seconds()/n, "count_s/op")
	b.ReportMetric(counts.Seconds()/n, "compare_s/op")
	b.ReportMetric(checksum.Seconds()/n, "checksum_s/op")
	b.ReportMetric(checksum.Seconds()/count.Seconds(), "x_count")
	b.ReportMetric(checksum.Seconds()/counts.Seconds(), "x_compare")
}
