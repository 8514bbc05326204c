package copy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
)

// phaseData streams every table not copied yet, jobs chunks at a time.
func (c *copyRun) phaseData(ctx context.Context) error {
	return c.timed(c.state.DataDone, &c.out.Phases.Data, func() error {
		var todo []*copyTable
		for _, t := range c.tables {
			if _, done := c.state.Tables[t.key()]; !done {
				todo = append(todo, t)
			}
		}
		canSplit := c.srcMajor >= 14
		chunks := planChunks(todo, c.o.splitBytes, c.o.jobs, canSplit, c.binary, c.blockSize, c.adaptive())
		if len(chunks) == 0 {
			c.env.Logf("data: nothing left to copy")
			return c.state.update(func(s *copyState) { s.DataDone = true })
		}
		var total int64
		for _, ch := range chunks {
			total += ch.estimate
		}
		c.env.Logf("data: copying %s (%s on disk) in %s, %d at a time, %s COPY",
			plural.Of(len(todo), "table"), bytesize.Format(total), plural.Of(len(chunks), "chunk"), min(c.o.jobs, len(chunks)), c.formats(todo))
		if c.state.resumed {
			// A table cut off by the crash may hold some of its rows:
			// empty it. (Tables copied whole are emptied in the same
			// transaction as their COPY anyway.)
			if err := c.truncateSplit(ctx, todo); err != nil {
				return err
			}
		}
		c.progress = newCopyProgress(c.env, chunks, total)
		stopProgress := c.progress.start(ctx)
		err := c.copyChunks(ctx, chunks)
		stopProgress()
		if err != nil {
			return err
		}
		return c.state.update(func(s *copyState) { s.DataDone = true })
	})
}

// formats says which COPY formats the tables travel in.
func (c *copyRun) formats(tables []*copyTable) string {
	if !c.binary {
		return "text"
	}
	text := 0
	for _, t := range tables {
		if !t.binarySafe {
			text++
		}
	}
	if text == 0 {
		return "binary"
	}
	return fmt.Sprintf("binary (text for %s whose column types binary cannot carry between databases)", plural.Of(text, "table"))
}

// truncateSplit empties the tables that will be copied in several chunks.
func (c *copyRun) truncateSplit(ctx context.Context, tables []*copyTable) error {
	var names []string
	for _, t := range tables {
		if t.chunks > 1 { // planned so in this run; a table split by the last run is in one chunk now, emptied in its transaction
			names = append(names, "ONLY "+t.qualified())
		}
	}
	if len(names) == 0 {
		return nil
	}
	conn, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "TRUNCATE "+n); err != nil {
			return fmt.Errorf("target %s: empty %s, which an interrupted run may have half copied: %w", c.o.dst.Name, n, err)
		}
	}
	return nil
}

// copyChunks runs the workers. The first error cancels the rest.
func (c *copyRun) copyChunks(ctx context.Context, chunks []*copyChunk) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The state is saved in the background: a table finished is
	// recorded within a second, never in a worker's way.
	persistDone := make(chan struct{})
	var persister sync.WaitGroup
	persister.Go(func() { c.persistLoop(ctx, persistDone) })

	// Workers connect when they get their first chunk: with an adaptive
	// chunk, jobs of them wait for what a split may bring.
	workers := len(chunks)
	for _, ch := range chunks {
		if ch.adaptive {
			workers = c.o.jobs
		}
	}
	q, stopQueue := newChunkQueue(ctx, chunks)
	var wg sync.WaitGroup
	for range min(c.o.jobs, workers) {
		wg.Go(func() {
			if err := c.dataWorker(ctx, q); err != nil {
				cancel(err)
				q.close()
			}
		})
	}
	wg.Wait()
	stopQueue()
	close(persistDone)
	persister.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return c.state.flushErr()
}

// persistLoop saves the state once a second while tables finish, and
// once more at the end, cancelled or not; then hands the tables saved to
// the finisher. A table gets its indexes and foreign keys only once a
// resumed run can no longer empty it (TRUNCATE fails on a table that a
// foreign key references).
func (c *copyRun) persistLoop(ctx context.Context, done <-chan struct{}) {
	if c.env.StateDir == "" {
		return
	}
	byKey := map[string]*copyTable{}
	for _, t := range c.tables {
		byKey[t.key()] = t
	}
	handOver := func(keys []string) {
		for _, k := range keys {
			if t := byKey[k]; t != nil {
				c.fin.tableDone(t)
			}
		}
	}
	// A table is recorded as copied only once its rows are durable on the
	// target: the workers commit with synchronous_commit off, and one
	// synchronous commit here flushes the WAL up to it, theirs included.
	var conn *pgx.Conn
	barrier := func(ctx context.Context) error {
		if conn == nil {
			var err error
			if conn, err = copyConnect(ctx, c.env, c.o.dst, false, nil); err != nil {
				return err
			}
		}
		_, err := conn.Exec(ctx, "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_catalog.txid_current(); COMMIT")
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			handOver(c.state.flush(ctx, barrier))
		case <-done:
			// The copy may have been cancelled: record what it finished.
			fctx, cancel := pgkit.CleanupContext(ctx)
			handOver(c.state.flush(fctx, barrier))
			if conn != nil {
				pgkit.Close(fctx, conn)
			}
			cancel()
			return
		}
	}
}

// dataWorker copies the chunks it takes from the queue, on one
// connection to each side: the source's in the shared snapshot.
func (c *copyRun) dataWorker(ctx context.Context, q *chunkQueue) error {
	ch := q.next()
	if ch == nil {
		return nil
	}
	defer func() {
		if ch != nil {
			q.done()
		}
	}()
	src, _, done, err := c.sourceInSnapshot(ctx)
	if err != nil {
		return err
	}
	defer done()
	// Commits need not wait for the disk: persistLoop makes them durable
	// before it records them.
	params := map[string]string{"synchronous_commit": "off"}
	if c.dstMajor >= 14 {
		// Should planrun die, the server stops loading at once instead of
		// working through the rows it has: a resumed run does not wait on
		// a lock held by a ghost.
		params["client_connection_check_interval"] = "1s"
	}
	dst, err := copyConnect(ctx, c.env, c.o.dst, false, params)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, dst)

	for ; ch != nil; ch = q.next() {
		err := c.copyChunk(ctx, src, dst, ch, q)
		q.done()
		if err != nil {
			ch = nil
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
	}
	return nil
}

// errTargetStopped ends the source's COPY when the target's failed.
var errTargetStopped = errors.New("the target stopped reading")

// pipeBuffer is how much the source side gathers before it hands data to
// the target side: COPY sends one message per row, and one hand-over per
// row would cost more than the copying.
const pipeBuffer = 256 << 10

// copyChunk copies one chunk in one transaction on the target. An
// adaptive chunk streams its table's first pages, and then either the
// rest in the same transaction or, link-bound, commits and puts the rest
// in q as new chunks.
func (c *copyRun) copyChunk(ctx context.Context, src, dst *pgx.Conn, ch *copyChunk, q *chunkQueue) error {
	t := ch.table
	t.mu.Lock()
	if t.started.IsZero() {
		t.started = time.Now()
	}
	t.mu.Unlock()
	ch.inProgress.Store(true)
	defer ch.inProgress.Store(false)

	tx, err := dst.Begin(ctx)
	if err != nil {
		return fmt.Errorf("table %s: target: begin: %w", ch, err)
	}
	defer pgkit.Rollback(ctx, tx)
	if ch.freeze {
		// Emptied in this transaction, the table takes its rows frozen:
		// no later pass has to set hint bits or freeze them page by page
		// (the index builds would otherwise rewrite the whole table). It
		// also clears whatever an interrupted run left.
		if _, err := tx.Exec(ctx, "TRUNCATE ONLY "+t.qualified()); err != nil {
			return fmt.Errorf("table %s: target: %w", ch, err)
		}
	}

	var rows int64
	var split []*copyChunk
	if !ch.adaptive {
		p, err := c.stream(ctx, src, dst, ch, ch.sourceSQL())
		if err != nil {
			return fmt.Errorf("table %s: %w", ch, err)
		}
		rows = p.rows
	} else {
		tune := c.adaptive()
		probe, err := c.stream(ctx, src, dst, ch, ch.rangeSQL(-1, tune.probePages))
		if err != nil {
			return fmt.Errorf("table %s, its first %d pages: %w", ch, tune.probePages, err)
		}
		rows = probe.rows
		bound := tune.linkBound(probe.probeResult)
		if h := c.hooks(); h != nil && h.linkBound != nil {
			bound = h.linkBound(probe.probeResult)
		}
		if bound {
			split = splitRest(ch, tune.probePages, t.bytes/c.blockSize, c.o.jobs, tune, c.blockSize)
			probe.split = len(split)
			// Counted before this chunk is: the table is not done until
			// they are.
			t.split.Add(int32(len(split)))
			t.remaining.Add(int32(len(split)))
			ch.probeDisk.Store(tune.probePages * c.blockSize)
		} else {
			rest, err := c.stream(ctx, src, dst, ch, ch.rangeSQL(tune.probePages, -1))
			if err != nil {
				return fmt.Errorf("table %s, past its first %d pages: %w", ch, tune.probePages, err)
			}
			rows += rest.rows
		}
		t.mu.Lock()
		t.probe = probe.probeResult
		t.mu.Unlock()
		c.env.Logf("data: %s: %s", t.key(), probe.describe(c.o.jobs))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("table %s: target: commit: %w", ch, err)
	}
	if len(split) > 0 {
		// After the commit: the TRUNCATE's lock is gone, the new chunks
		// do not wait on it.
		c.progress.add(split)
		q.pushFront(split)
	}
	ch.rows.Store(rows)
	ch.finished.Store(true)
	t.rows.Add(rows)
	done := t.remaining.Add(-1) == 0
	if done {
		c.tableDone(t)
	}
	if h := c.hooks(); h != nil && h.afterChunk != nil {
		h.afterChunk(t.key(), done)
	}
	return nil
}

// streamed is what one COPY pair moved.
type streamed struct {
	probeResult
	rows int64
}

// stream pipes one COPY TO STDOUT on the source into COPY FROM STDIN on
// the target, in the target's open transaction. Memory stays flat: the
// pipe holds one buffer at a time, whatever the size.
func (c *copyRun) stream(ctx context.Context, src, dst *pgx.Conn, ch *copyChunk, sql string) (streamed, error) {
	start := time.Now()
	before := ch.streamed.Load()
	pr, pw := io.Pipe()
	ww := &waitWriter{w: pw}
	var reader sync.WaitGroup
	var srcRows int64
	var srcErr error
	reader.Go(func() {
		bw := bufio.NewWriterSize(ww, pipeBuffer)
		tag, err := src.PgConn().CopyTo(ctx, &countingWriter{w: bw, ch: ch}, sql)
		if err == nil {
			err = bw.Flush()
		}
		srcRows, srcErr = tag.RowsAffected(), err
		// nil makes the target's reader see the end of the data.
		pw.CloseWithError(err)
	})
	tag, dstErr := dst.PgConn().CopyFrom(ctx, pr, ch.targetSQL())
	// If the target stopped early, the source must not wait to write.
	pr.CloseWithError(errTargetStopped)
	reader.Wait()

	switch {
	case srcErr != nil && !errors.Is(srcErr, errTargetStopped):
		return streamed{}, fmt.Errorf("source: %w", srcErr)
	case dstErr != nil:
		return streamed{}, fmt.Errorf("target: %w", dstErr)
	case srcErr != nil:
		return streamed{}, fmt.Errorf("source: %w", srcErr)
	case tag.RowsAffected() != srcRows:
		return streamed{}, fmt.Errorf("the source sent %d rows, the target took %d", srcRows, tag.RowsAffected())
	}
	return streamed{rows: srcRows, probeResult: probeResult{
		bytes: ch.streamed.Load() - before, seconds: time.Since(start).Seconds(), waited: ww.waited.Seconds(),
	}}, nil
}

// tableDone records a table whose chunks are all committed.
func (c *copyRun) tableDone(t *copyTable) {
	t.mu.Lock()
	seconds := time.Since(t.started).Seconds()
	t.mu.Unlock()
	format := "text"
	if c.binary && t.binarySafe {
		format = "binary"
	}
	t.mu.Lock()
	probe := t.probe
	t.mu.Unlock()
	c.state.tableDone(CopyTable{
		Schema: t.schema, Name: t.name, Rows: t.rows.Load(), Bytes: t.streamed.Load(),
		Seconds: seconds, Chunks: t.chunkCount(), Format: format,
		Split: probe.describe(c.o.jobs), Probe: probe.verdict(), StreamBytesPerSecond: probe.rate(),
	})
	if c.env.StateDir == "" {
		c.fin.tableDone(t) // no resume to fear: at once (else persistLoop does, once saved)
	}
}

// countingWriter counts what goes through the pipe, for the progress
// display: bytes, and rows (the source sends each row as one message,
// and CopyTo writes each message in one call).
type countingWriter struct {
	w  io.Writer
	ch *copyChunk
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.ch.streamed.Add(int64(n))
	cw.ch.table.streamed.Add(int64(n))
	cw.ch.rows.Add(1)
	return n, err
}
