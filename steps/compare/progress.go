package compare

import (
	"fmt"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// cmpProgress reports how many tables and bytes are done in the current
// phase and which tables are in flight, at most four times a second.
type cmpProgress struct {
	env                     *steptype.Env
	mu                      sync.Mutex // also keeps reports in order
	phase                   string
	tablesDone, tablesTotal int
	bytesDone, bytesTotal   int64
	inFlight                map[string]int
	last                    time.Time
}

// start begins a phase.
func (p *cmpProgress) start(phase string, tables int, bytes int64) {
	p.mu.Lock()
	p.phase, p.tablesDone, p.tablesTotal, p.bytesDone, p.bytesTotal = phase, 0, tables, 0, bytes
	p.inFlight = map[string]int{}
	p.mu.Unlock()
	p.report(true)
}

func (p *cmpProgress) begin(table string) {
	p.mu.Lock()
	p.inFlight[table]++
	p.mu.Unlock()
	p.report(false)
}

func (p *cmpProgress) end(table string, bytes int64) {
	p.mu.Lock()
	p.tablesDone++
	p.bytesDone += bytes
	if p.inFlight[table]--; p.inFlight[table] == 0 {
		delete(p.inFlight, table)
	}
	p.mu.Unlock()
	p.report(false)
}

func (p *cmpProgress) report(force bool) {
	if p.env == nil || p.env.Progress == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	ev := event.Progress{Unit: "bytes", Done: p.bytesDone, Total: p.bytesTotal,
		Message: fmt.Sprintf("%s, %d of %s", p.phase, p.tablesDone, plural.Of(p.tablesTotal, "table"))}
	if p.bytesTotal == 0 {
		ev.Unit, ev.Done, ev.Total = "tables", int64(p.tablesDone), int64(p.tablesTotal)
	}
	for _, name := range cmpKeys(p.inFlight) {
		ev.Items = append(ev.Items, event.ProgressItem{Name: name})
	}
	p.env.Progress(ev)
}
