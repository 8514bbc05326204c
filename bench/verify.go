package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// comparePlan checks the copy with planrun's compare: checksums of every
// row, computed in both databases.
const comparePlan = `plan "verify" {}
` + benchDatabases + `
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
	pgkit.RunWorkers(ctx, cancel, jobs, items, func(work <-chan T) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		for it := range work {
			if err := fn(ctx, conn, it); err != nil {
				return err
			}
		}
		return nil
	})
	return context.Cause(ctx)
}
