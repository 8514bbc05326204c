package copy

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/plural"
)

// Adaptive splitting. A table copied whole is loaded frozen, which saves
// its index builds a pass over every page: the right choice when the
// machine is CPU-bound, since a second stream into the same table gains
// nothing there. Over a slow or capped link (a managed database across a
// network caps each connection) one stream is the link's rate while
// the target idles, and every more stream adds as much again. A big table
// copied whole therefore first copies its first pages (the probe) and
// measures that stream: if it was link-bound, it commits them and splits
// the rest of its pages into ranges that idle workers take, up to jobs at
// once; otherwise it goes on with the rest in the same transaction, still
// frozen.
//
// Resuming stays exact: a table is recorded as copied only when all its
// chunks are committed, and a resumed run empties every table it did not
// record (in its frozen chunk's transaction, or with TRUNCATE before a
// split table's chunks), whether or not the run before had split it.

// adaptiveTuning are adaptive splitting's thresholds.
type adaptiveTuning struct {
	minBytes     int64   // tables smaller than this are copied whole, unprobed; 0: never probe
	probePages   int64   // pages the probe copies
	linkRate     float64 // a stream slower than this (bytes a second) may be link-bound
	chunksPerJob int     // the rest is split into jobs × this many chunks, for the workers to finish together
	minChunk     int64   // pages: no split chunk smaller than this
}

// defaultAdaptive: a table of 32 MB or more is probed on its first 2 MB
// (about 10 ms locally, half a second at 4 MB/s). A local stream runs at
// 100-250 MB/s; below 48 MiB/s, and with the source rarely waiting for
// the target, the link is the bottleneck.
var defaultAdaptive = adaptiveTuning{minBytes: 32 << 20, probePages: 256, linkRate: 48 << 20, chunksPerJob: 4, minChunk: 128}

// probeResult is what one stream measured.
type probeResult struct {
	bytes   int64
	seconds float64
	waited  float64 // seconds the source side spent waiting for the target to take its data
	split   int     // chunks the rest was split into; 0: kept whole
}

func (p probeResult) rate() float64 {
	if p.seconds <= 0 {
		return 0
	}
	return float64(p.bytes) / p.seconds
}

// linkBound says whether a stream was held back by the source's side:
// slow, and the target rarely had to be waited for.
func (tune adaptiveTuning) linkBound(p probeResult) bool {
	return p.seconds > 0 && p.rate() < tune.linkRate && p.waited < 0.5*p.seconds
}

// verdict is the decision, for the output's probe field: "" when the
// table was not probed.
func (p probeResult) verdict() string {
	switch {
	case p.seconds <= 0:
		return ""
	case p.split == 0:
		return "whole"
	}
	return "split"
}

// describe says what the probe found and what was decided, for the
// output, the log and the progress line.
func (p probeResult) describe(jobs int) string {
	if p.seconds <= 0 {
		return ""
	}
	waited := 100 * p.waited / p.seconds
	if p.split == 0 {
		return fmt.Sprintf("kept whole and frozen: one stream reached %s/s (the source waited on the target %.0f%% of the time)",
			bytesize.Format(int64(p.rate())), waited)
	}
	return fmt.Sprintf("link-bound: one stream reached %s/s (the source waited on the target %.0f%% of the time); the rest was split into %s, up to %s",
		bytesize.Format(int64(p.rate())), waited, plural.Of(p.split, "chunk"), plural.Of(jobs, "stream"))
}

// splitRest cuts the pages of ch's table from page from on into chunks,
// each a new part of the table.
func splitRest(ch *copyChunk, from, pages int64, jobs int, tune adaptiveTuning, blockSize int64) []*copyChunk {
	rest := pages - from
	n := int64(jobs * tune.chunksPerJob)
	if tune.minChunk > 0 {
		n = min(n, rest/tune.minChunk)
	}
	n = max(n, 1)
	per := rest / n
	first := ch.table.chunkCount() // indexes after those planned
	out := make([]*copyChunk, n)
	for i := range n {
		c := &copyChunk{table: ch.table, index: first + int(i), from: from + i*per, to: from + (i+1)*per, estimate: per * blockSize, binary: ch.binary}
		if i == n-1 {
			c.to = -1 // whatever lies past the size measured
			c.estimate = ch.estimate - (from+i*per)*blockSize
		}
		out[i] = c
	}
	return out
}

// chunkQueue hands chunks to the workers, biggest first as planned; a
// split puts its chunks in front. A worker asking while the queue is
// empty waits as long as some chunk is in flight (its split may bring
// more), and is told to stop once none is.
type chunkQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*copyChunk
	busy   int
	closed bool
}

func newChunkQueue(ctx context.Context, chunks []*copyChunk) (*chunkQueue, func() bool) {
	q := &chunkQueue{items: chunks}
	q.cond = sync.NewCond(&q.mu)
	stop := context.AfterFunc(ctx, q.close)
	return q, stop
}

// next returns a chunk to copy, or nil when there is none left (or the
// copy was cancelled). Every chunk returned must be given back to done.
func (q *chunkQueue) next() *copyChunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && q.busy > 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 || q.closed {
		return nil
	}
	ch := q.items[0]
	q.items = q.items[1:]
	q.busy++
	return ch
}

func (q *chunkQueue) done() {
	q.mu.Lock()
	q.busy--
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *chunkQueue) pushFront(chunks []*copyChunk) {
	q.mu.Lock()
	q.items = append(append([]*copyChunk(nil), chunks...), q.items...)
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *chunkQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// waitWriter is the pipe's writing end, timing how long each write waits
// for the target side to take the data. It sits under the pipe's buffer:
// one call per buffer, not per row.
type waitWriter struct {
	w      io.Writer
	waited time.Duration
}

func (ww *waitWriter) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := ww.w.Write(p)
	ww.waited += time.Since(start)
	return n, err
}
