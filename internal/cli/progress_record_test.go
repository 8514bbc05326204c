package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// TestProgressSampler: a step's progress is recorded at most once per
// interval, and its newest sample is recorded before it finishes.
func TestProgressSampler(t *testing.T) {
	s := newProgressSampler(5 * time.Second)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	progress := func(step string, at time.Duration, done int64) event.Event {
		return event.Event{Type: event.StepProgress, Time: t0.Add(at), Step: step, Progress: &event.Progress{Unit: "bytes", Done: done}}
	}
	var kept []string
	feed := func(ev event.Event) {
		for _, k := range s.keep(ev) {
			if k.Progress != nil {
				kept = append(kept, k.Step+":"+time.Duration(k.Progress.Done).String())
			} else {
				kept = append(kept, k.Step+":"+k.Type)
			}
		}
	}
	feed(event.Event{Type: event.StepStarted, Time: t0, Step: "a"})
	for i := range 25 { // every 500ms for 12s
		feed(progress("a", time.Duration(i)*500*time.Millisecond, int64(i)))
	}
	feed(progress("b", time.Second, 100)) // another step has its own clock
	feed(event.Event{Type: event.StepFinished, Time: t0.Add(13 * time.Second), Step: "a"})
	feed(event.Event{Type: event.StepFinished, Time: t0.Add(14 * time.Second), Step: "b"})
	feed(progress("a", 20*time.Second, 7)) // a's rollback
	feed(progress("a", 21*time.Second, 8))
	feed(event.Event{Type: event.RollbackFinished, Time: t0.Add(22 * time.Second), Step: "a"})
	want := "a:step_started a:0s a:10ns a:20ns b:100ns a:24ns a:step_finished b:step_finished a:7ns a:8ns a:rollback_finished"
	if got := strings.Join(kept, " "); got != want {
		t.Errorf("kept\n %s\nwant\n %s", got, want)
	}
}
