package cli

import (
	"time"

	"github.com/planrun/planrun/internal/event"
)

// progressEvery is how often a step's progress is recorded: enough for the
// report's throughput and lag charts, too seldom to swamp the journal (a
// copy reports several times a second).
const progressEvery = 5 * time.Second

// progressSampler decides which progress events the run record keeps: the
// first of each step, then at most one per progressEvery, and the step's
// (or its rollback's) last before it finishes. Events come one at a time
// (the engine serialises them), so it needs no lock.
type progressSampler struct {
	every   time.Duration
	last    map[string]time.Time    // step → when its last sample was kept
	pending map[string]*event.Event // step → its newest sample not kept yet
}

func newProgressSampler(every time.Duration) *progressSampler {
	return &progressSampler{every: every, last: map[string]time.Time{}, pending: map[string]*event.Event{}}
}

// keep returns the events to record for ev, in order: none, ev itself, or
// (when ev ends a step) the step's pending sample before ev.
func (s *progressSampler) keep(ev event.Event) []event.Event {
	switch ev.Type {
	case event.StepProgress:
		if at, ok := s.last[ev.Step]; ok && ev.Time.Sub(at) < s.every {
			s.pending[ev.Step] = &ev
			return nil
		}
		s.last[ev.Step] = ev.Time
		delete(s.pending, ev.Step)
		return []event.Event{ev}
	case event.StepRetrying, event.StepFinished, event.RollbackFinished:
		p := s.pending[ev.Step]
		delete(s.pending, ev.Step)
		delete(s.last, ev.Step)
		if p != nil {
			return []event.Event{*p, ev}
		}
	}
	return []event.Event{ev}
}
