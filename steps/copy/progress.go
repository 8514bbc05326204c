package copy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// copyProgressEvery is how often progress is reported.
const copyProgressEvery = 500 * time.Millisecond

// every calls fn every interval until the returned stop is called; stop
// waits for the goroutine, so that nothing reports after it returns.
func every(ctx context.Context, interval time.Duration, fn func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fn()
			case <-ctx.Done():
				return
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// copyProgress reports the data phase: bytes through the pipes against an
// estimate of the total, the rate, the time left, and the tables in flight.
type copyProgress struct {
	env    *steptype.Env
	mu     sync.Mutex
	chunks []*copyChunk // grows when a table is split (under mu)
	disk   int64        // the chunks' size on disk
	tables int

	// Read and written by the reporting goroutine only.
	lastDone int64
	lastAt   time.Time
	rate     float64
}

func newCopyProgress(env *steptype.Env, chunks []*copyChunk, disk int64) *copyProgress {
	seen := map[*copyTable]bool{}
	for _, ch := range chunks {
		seen[ch.table] = true
	}
	return &copyProgress{env: env, chunks: chunks, disk: disk, tables: len(seen), lastAt: time.Now()}
}

// add counts the chunks a split made (their pages were the split
// chunk's: the size on disk does not change).
func (p *copyProgress) add(chunks []*copyChunk) {
	p.mu.Lock()
	p.chunks = append(p.chunks, chunks...)
	p.mu.Unlock()
}

func (p *copyProgress) start(ctx context.Context) (stop func()) {
	if p.env.Progress == nil {
		return func() {}
	}
	return every(ctx, copyProgressEvery, p.report)
}

// report sends one progress event. COPY data is not the size on disk
// (no page or tuple headers; text may be longer): once chunks have
// finished, their ratio of bytes streamed to bytes on disk scales the
// estimate of the rest.
func (p *copyProgress) report() {
	var done, finishedDisk, finishedStream int64
	type flight struct {
		t          *copyTable
		done, rows int64
	}
	var inFlight []*flight
	byTable := map[*copyTable]*flight{}
	tablesDone := 0
	p.mu.Lock()
	chunks := p.chunks
	p.mu.Unlock()
	streams := map[*copyTable]int{}
	for _, ch := range chunks {
		n := ch.streamed.Load()
		done += n
		if ch.finished.Load() {
			disk := ch.estimate
			if d := ch.probeDisk.Load(); d > 0 {
				disk = d // split: the rest is in the new chunks
			}
			finishedDisk += disk
			finishedStream += n
		}
		if ch.inProgress.Load() {
			streams[ch.table]++
			f := byTable[ch.table]
			if f == nil {
				f = &flight{t: ch.table}
				byTable[ch.table] = f
				inFlight = append(inFlight, f)
			}
		}
	}
	var decided []string
	for _, ch := range chunks {
		if f := byTable[ch.table]; f != nil {
			f.done += ch.streamed.Load()
			f.rows += ch.rows.Load()
		}
		if ch.adaptive && byTable[ch.table] != nil {
			// What the probe decided, while the table is in flight.
			ch.table.mu.Lock()
			probe := ch.table.probe
			ch.table.mu.Unlock()
			switch {
			case probe.split > 0:
				decided = append(decided, fmt.Sprintf("%s split: one stream at %s/s, now %d streams", ch.table.key(), bytesize.Format(int64(probe.rate())), streams[ch.table]))
			case probe.seconds > 0:
				decided = append(decided, fmt.Sprintf("%s whole: one stream at %s/s", ch.table.key(), bytesize.Format(int64(probe.rate()))))
			}
		}
		if ch.index == 0 && ch.table.remaining.Load() == 0 {
			tablesDone++
		}
	}
	ratio := streamRatio(p.disk, finishedDisk, finishedStream)
	total := estimateTotal(chunks, finishedStream, ratio)

	now := time.Now()
	if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
		inst := float64(done-p.lastDone) / dt
		if p.rate == 0 {
			p.rate = inst
		} else {
			p.rate = 0.7*p.rate + 0.3*inst // smooth out the hiccups of commits and chunk starts
		}
	}
	p.lastDone, p.lastAt = done, now

	ev := event.Progress{Unit: "bytes", Done: done, Total: total, Rate: p.rate,
		Message: fmt.Sprintf("data: %d of %s", tablesDone, plural.Of(p.tables, "table"))}
	if len(decided) > 0 {
		ev.Message += "; " + strings.Join(decided, "; ")
	}
	if p.rate > 0 {
		ev.ETA = float64(total-done) / p.rate
	}
	for _, f := range inFlight {
		ev.Items = append(ev.Items, event.ProgressItem{
			Name: f.t.key(), Done: f.done, Total: max(int64(float64(f.t.bytes)*ratio), f.done), Rows: f.rows,
		})
	}
	p.env.Progress(ev)
}

// streamRatio is COPY data per byte on disk, as measured by the chunks
// finished, once they are enough to tell: the first tables done are often
// tiny, whose pages are mostly empty, and their ratio would shrink the
// estimate of the rest to what is already done (a display stuck at 100 %
// with no time left for most of a copy). Until then, one to one: the
// size on disk, from the catalog, is the estimate.
func streamRatio(disk, finishedDisk, finishedStream int64) float64 {
	if finishedDisk < max(disk/20, 8<<20) {
		return 1
	}
	return float64(finishedStream) / float64(finishedDisk)
}

// estimateTotal is what the data phase will stream: what the finished
// chunks streamed, and for every other chunk its size on disk scaled by
// the ratio, never less than it has streamed so far.
func estimateTotal(chunks []*copyChunk, finishedStream int64, ratio float64) int64 {
	total := finishedStream
	for _, ch := range chunks {
		if ch.finished.Load() {
			continue
		}
		disk := ch.estimate
		if d := ch.probeDisk.Load(); d > 0 {
			disk = d // split: the rest is counted in the new chunks
		}
		total += max(int64(float64(disk)*ratio), ch.streamed.Load())
	}
	return total
}
