package compare

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// cmpPool runs queries on one side, on connections that each hold a
// read-only transaction in the side's snapshot. The first failure cancels
// the whole comparison: its transaction is unusable, and so is the result.
type cmpPool struct {
	side  *cmpSide
	tasks chan cmpTask
	ctx   context.Context // the comparison's: done when a worker failed
	wg    sync.WaitGroup
}

type cmpTask struct {
	fn   func(ctx context.Context, tx pgx.Tx) error
	done chan error // buffered: a worker never waits for the caller
}

// cmpStartPool connects workers to a side; a worker that fails cancels
// ctx with its error. Close the pool to wait for them.
func cmpStartPool(ctx context.Context, cancel context.CancelCauseFunc, env *steptype.Env, side *cmpSide, workers int) *cmpPool {
	p := &cmpPool{side: side, tasks: make(chan cmpTask), ctx: ctx}
	for range workers {
		p.wg.Go(func() {
			if err := p.work(ctx, env); err != nil {
				cancel(err)
			}
		})
	}
	return p
}

func (p *cmpPool) work(ctx context.Context, env *steptype.Env) error {
	db := p.side.db
	conn, err := pgkit.Connect(ctx, env, db, true)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	tx, err := cmpBegin(ctx, conn, p.side.snapshot)
	if err == nil {
		_, err = tx.Exec(ctx, cmpChecksumSettings)
	}
	if err != nil {
		return fmt.Errorf("database %s: begin a read-only transaction in the shared snapshot: %w", db.Name, err)
	}
	for {
		select {
		case t, ok := <-p.tasks:
			if !ok {
				return nil
			}
			err := t.fn(ctx, tx)
			t.done <- err
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// do runs fn on one of the pool's connections and waits for it. An error
// fn returns cancels the whole comparison, so it should say what failed.
func (p *cmpPool) do(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	t := cmpTask{fn: fn, done: make(chan error, 1)}
	select {
	case p.tasks <- t:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	select {
	case err := <-t.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

// close stops the workers once their tasks are done; nil does nothing.
func (p *cmpPool) close() {
	if p != nil {
		close(p.tasks)
		p.wg.Wait()
	}
}

// aggregate checksums the rows of a table on this side that satisfy cond
// ("" for all), grouped by bucket (an SQL integer; "" for one group, 0).
func (p *cmpPool) aggregate(ctx context.Context, s *cmpTableSide, bucket, cond string) (map[int64]cmpAgg, error) {
	if bucket == "" {
		bucket = "0"
	}
	sql := fmt.Sprintf("SELECT %s, count(*), coalesce(sum(%s), 0)::text FROM ONLY %s", bucket, s.hash, pgkit.Qualified(s.rel.schema, s.rel.name))
	if cond != "" {
		sql += " WHERE " + cond
	}
	if bucket != "0" {
		sql += " GROUP BY 1"
	}
	out := map[int64]cmpAgg{}
	err := p.do(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// The simple protocol: every query differs, so preparing each would
		// only add a round trip and churn the statement cache.
		rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			var b, n int64
			var sum string
			_, err = pgx.ForEachRow(rows, []any{&b, &n, &sum}, func() error {
				a, err := cmpParseAgg(n, sum)
				out[b] = a
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("checksum %s in database %s: %w", s.rel.key(), p.side.db.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bucket == "0" && len(out) == 0 {
		out[0] = cmpAgg{} // no GROUP BY: always one row, but be safe
	}
	return out, nil
}

// cmpOnBoth runs fn for the source (0) and the target (1) at once.
func cmpOnBoth(fn func(side int) error) error {
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

// cmpParallel calls fn for 0..n-1, at most workers at a time, and stops at
// the first error.
func cmpParallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
