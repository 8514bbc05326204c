package copy

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
)

// listLargeObjects lists the large objects in the snapshot.
func listLargeObjects(ctx context.Context, tx pgx.Tx) ([]uint32, error) {
	rows, err := tx.Query(ctx, "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid")
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	return oids, nil
}

// phaseLargeObjects copies every large object's data, in the snapshot,
// jobs at a time. The objects themselves, with their OIDs (which the
// rows that point at them hold), were created empty by the pre-data
// section; writing them again after an interruption starts each from
// empty, so the phase can simply run again.
func (c *copyRun) phaseLargeObjects(ctx context.Context) error {
	return c.timed(c.state.LargeObjectsDone, &c.out.Phases.LargeObjects, func() error {
		if !c.o.largeObjects {
			return c.state.update(func(s *copyState) { s.LargeObjectsDone = true })
		}
		oids := c.los
		if len(oids) > 0 {
			c.env.Logf("large objects: copying %d", len(oids))
			if err := c.copyLargeObjects(ctx, oids); err != nil {
				return fmt.Errorf("large objects: %w", err)
			}
		}
		return c.state.update(func(s *copyState) {
			s.LargeObjectsDone = true
			s.LargeObjects = int64(len(oids))
		})
	})
}

func (c *copyRun) copyLargeObjects(ctx context.Context, oids []uint32) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var copied atomic.Int64
	pgkit.RunWorkers(ctx, cancel, c.o.jobs, oids, func(work <-chan uint32) error {
		return c.largeObjectWorker(ctx, work, &copied)
	})
	return context.Cause(ctx)
}

// Commit the target's transaction after this many objects or bytes: one
// transaction per object would wait on the disk for each, one for all of
// them would hold a lock per object until the end.
const (
	loBatchObjects = 500
	loBatchBytes   = 64 << 20
)

func (c *copyRun) largeObjectWorker(ctx context.Context, work <-chan uint32, copied *atomic.Int64) error {
	_, srcTx, done, err := c.sourceInSnapshot(ctx)
	if err != nil {
		return err
	}
	defer done()
	dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, dst)

	buf := make([]byte, pipeBuffer)
	var dstTx pgx.Tx
	objects, bytes := 0, int64(0)
	commit := func() error {
		if dstTx == nil {
			return nil
		}
		err := dstTx.Commit(ctx)
		dstTx, objects, bytes = nil, 0, 0
		return err
	}
	defer func() {
		if dstTx != nil {
			pgkit.Rollback(ctx, dstTx)
		}
	}()
	for oid := range work {
		if dstTx == nil {
			if dstTx, err = dst.Begin(ctx); err != nil {
				return fmt.Errorf("target: begin: %w", err)
			}
		}
		n, err := copyLargeObject(ctx, srcTx, dstTx, oid, buf)
		if err != nil {
			return fmt.Errorf("large object %d: %w", oid, err)
		}
		copied.Add(1)
		objects++
		bytes += n
		if objects >= loBatchObjects || bytes >= loBatchBytes {
			if err := commit(); err != nil {
				return fmt.Errorf("target: commit: %w", err)
			}
		}
	}
	if err := commit(); err != nil {
		return fmt.Errorf("target: commit: %w", err)
	}
	return nil
}

// copyLargeObject streams one large object's data into the object of the
// same OID on the target, emptied first.
func copyLargeObject(ctx context.Context, srcTx, dstTx pgx.Tx, oid uint32, buf []byte) (int64, error) {
	// Opened for reading, an object is read as of the transaction's
	// snapshot: the shared one.
	srcLOs, dstLOs := srcTx.LargeObjects(), dstTx.LargeObjects()
	in, err := srcLOs.Open(ctx, oid, pgx.LargeObjectModeRead)
	if err != nil {
		return 0, fmt.Errorf("source: open: %w", err)
	}
	defer in.Close()
	out, err := dstLOs.Open(ctx, oid, pgx.LargeObjectModeWrite)
	if err != nil {
		return 0, fmt.Errorf("target: open (the schema restore creates every large object; is it missing?): %w", err)
	}
	defer out.Close()
	if err := out.Truncate(0); err != nil {
		return 0, fmt.Errorf("target: empty: %w", err)
	}
	n, err := io.CopyBuffer(out, in, buf)
	if err != nil {
		return n, fmt.Errorf("copy: %w", err)
	}
	return n, nil
}

// phaseSequences sets every target sequence that the source has to the
// source's state. Sequences are outside transactions: the value read now
// is at least the one at the snapshot, so the target never hands out a
// value the source already did.
func (c *copyRun) phaseSequences(ctx context.Context) error {
	return c.timed(c.state.SequencesDone, &c.out.Phases.Sequences, func() error {
		if !c.o.sequences {
			return c.state.update(func(s *copyState) { s.SequencesDone = true })
		}
		srcSeqs, err := pgkit.ReadSequences(ctx, c.snap.conn, nil)
		if err != nil {
			return fmt.Errorf("sequences: source %s: %w", c.o.src.Name, err)
		}
		dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
		if err != nil {
			return err
		}
		defer pgkit.Close(ctx, dst)
		dstSeqs, err := pgkit.ReadSequences(ctx, dst, nil)
		if err != nil {
			return fmt.Errorf("sequences: target %s: %w", c.o.dst.Name, err)
		}
		onTarget := map[string]bool{}
		for _, s := range dstSeqs {
			onTarget[s.Key()] = true
		}
		batch := &pgx.Batch{}
		for _, s := range srcSeqs {
			if onTarget[s.Key()] { // a sequence of a table left out is not there
				batch.Queue("SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)", s.Key(), s.Value, s.Called)
			}
		}
		if batch.Len() > 0 {
			if err := dst.SendBatch(ctx, batch).Close(); err != nil {
				return fmt.Errorf("sequences: target %s: setval: %w", c.o.dst.Name, err)
			}
		}
		c.env.Logf("sequences: set %d", batch.Len())
		n := batch.Len()
		return c.state.update(func(s *copyState) {
			s.SequencesDone = true
			s.Sequences = n
		})
	})
}

// phaseAnalyze gathers planner statistics on the target, jobs tables at a
// time, so that the first queries after a cut-over are planned well.
func (c *copyRun) phaseAnalyze(ctx context.Context) error {
	return c.timed(c.state.AnalyzeDone, &c.out.Phases.Analyze, func() error {
		if !c.o.analyze {
			return c.state.update(func(s *copyState) { s.AnalyzeDone = true })
		}
		selected := map[string]bool{}
		for _, t := range c.all {
			selected[t.schema+"."+t.name] = true
		}
		_, analyzed := c.fin.results()
		var names []string
		for _, t := range c.all {
			// A partitioned table's ANALYZE covers its partitions; the
			// finisher analyzed tables as their indexes were built.
			if (t.rootName == "" || !selected[t.rootSchema+"."+t.rootName]) && !analyzed[t.key()] {
				names = append(names, t.qualified())
			}
		}
		if len(names) == 0 {
			return c.state.update(func(s *copyState) { s.AnalyzeDone = true })
		}
		c.env.Logf("analyze: %s, %d at a time", plural.Of(len(names), "table"), min(c.o.jobs, len(names)))
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		pgkit.RunWorkers(ctx, cancel, c.o.jobs, names, func(work <-chan string) error {
			conn, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
			if err != nil {
				return err
			}
			defer pgkit.Close(ctx, conn)
			for name := range work {
				if _, err := conn.Exec(ctx, "ANALYZE "+name); err != nil {
					return fmt.Errorf("analyze %s: %w", name, err)
				}
			}
			return nil
		})
		if err := context.Cause(ctx); err != nil {
			return err
		}
		return c.state.update(func(s *copyState) { s.AnalyzeDone = true })
	})
}
