package report

import (
	"fmt"
	"math"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// This file reads a run's record into what the HTML report's timeline
// draws: a row per step, check and rollback, each with a bar per attempt,
// on one time axis that starts when the run did.

// timeline is one run's spans, in seconds from the run's start.
type timeline struct {
	Start    time.Time
	Seconds  float64 // the axis: the run's start to its last event
	Rows     []tlRow
	Segments []tlMark            // where a resume or a rollback process started
	Window   *tlWindow           // the downtime window as it happened; nil: no window, or not opened
	Samples  map[string][]sample // step → its recorded progress samples
}

type tlRow struct {
	Addr  string
	Kind  string // step, check or rollback
	Label string
	Bars  []tlBar
}

type tlBar struct {
	Label    string // "attempt 2", "rollback"
	Status   string // what the bar's colour and pattern say
	From, To float64
	Open     bool // it never finished in the record
	Message  string
}

type tlMark struct {
	At   float64
	Kind string // resume or rollback
}

type tlWindow struct {
	From, To float64
	// Closed: the window's last step succeeded, or the first one's
	// rollback (maintenance off again) closed it; By says which.
	Closed bool
	By     string
}

// sample is one recorded progress event of a step.
type sample struct {
	At    float64 // seconds from the run's start
	Unit  string
	Done  int64
	Total int64
	Rate  float64
	Phase string
}

// buildTimeline reads the spans from the events; rows follow the report's
// order of steps, then the rollbacks in the order they ran.
func buildTimeline(d *Doc, events []event.Event) *timeline {
	tl := &timeline{Start: d.Run.Started, Samples: map[string][]sample{}}
	at := func(t time.Time) float64 { return math.Max(0, t.Sub(tl.Start).Seconds()) }
	rowOf := map[string]int{}
	for _, s := range d.Steps {
		rowOf[s.Addr] = len(tl.Rows)
		tl.Rows = append(tl.Rows, tlRow{Addr: s.Addr, Kind: s.Kind, Label: s.Addr})
	}
	type ref struct{ row, bar int }
	open := map[string]ref{} // step or "rollback "+step → its running bar
	bar := func(r ref) *tlBar { return &tl.Rows[r.row].Bars[r.bar] }
	attempt := map[string]int{}
	var last time.Time
	firstRun := true
	closeBar := func(key string, t time.Time, status, msg string) {
		if r, ok := open[key]; ok {
			b := bar(r)
			b.To, b.Status, b.Open, b.Message = at(t), status, false, msg
			delete(open, key)
		}
	}
	startBar := func(row int, key, label string, t time.Time) {
		r := &tl.Rows[row]
		r.Bars = append(r.Bars, tlBar{Label: label, Status: string(event.StatusRunning), From: at(t), To: at(t), Open: true})
		open[key] = ref{row, len(r.Bars) - 1}
	}
	var win *tlWindow
	for _, ev := range events {
		before := last
		if ev.Time.After(last) {
			last = ev.Time
		}
		switch ev.Type {
		case event.RunStarted:
			if !firstRun {
				kind := "resume"
				if ev.Message == "rollback" {
					kind = "rollback"
				}
				tl.Segments = append(tl.Segments, tlMark{At: at(ev.Time), Kind: kind})
			}
			firstRun = false
			// A bar still open belonged to a process that died.
			for key, r := range open {
				b := bar(r)
				b.To, b.Status, b.Open = at(before), string(event.StatusUnfinished), false
				delete(open, key)
			}
		case event.StepStarted:
			row, ok := rowOf[ev.Step]
			if !ok {
				continue
			}
			attempt[ev.Step] = 1
			startBar(row, ev.Step, "attempt 1", ev.Time)
			if d.Downtime != nil && ev.Step == d.Downtime.From && win == nil {
				win = &tlWindow{From: at(ev.Time)}
			}
		case event.StepRetrying:
			row, ok := rowOf[ev.Step]
			if !ok {
				continue
			}
			closeBar(ev.Step, ev.Time, "retried", ev.Error)
			attempt[ev.Step] = ev.Attempt + 1
			// The next attempt starts after the retry's wait: its bar
			// includes the wait (the record has no event for its start).
			startBar(row, ev.Step, fmt.Sprintf("attempt %d", ev.Attempt+1), ev.Time)
		case event.StepFinished:
			if ev.Status == event.StatusReused {
				continue
			}
			msg := ev.Error
			if msg == "" {
				msg = ev.Message
			}
			closeBar(ev.Step, ev.Time, string(ev.Status), msg)
			if d.Downtime != nil && ev.Step == d.Downtime.From && ev.Status == event.StatusSkipped {
				win = nil // the window never opened
			}
			if d.Downtime != nil && ev.Step == d.Downtime.To && ev.Status == event.StatusSucceeded && win != nil && !win.Closed {
				win.To, win.Closed, win.By = at(ev.Time), true, "the end of "+ev.Step
			}
		case event.RollbackStarted:
			row, ok := rowOf["rollback "+ev.Step]
			if !ok {
				row = len(tl.Rows)
				rowOf["rollback "+ev.Step] = row
				tl.Rows = append(tl.Rows, tlRow{Addr: ev.Step, Kind: "rollback", Label: "rollback of " + ev.Step})
			}
			startBar(row, "rollback "+ev.Step, "rollback", ev.Time)
		case event.RollbackFinished:
			msg := ev.Error
			if msg == "" {
				msg = ev.Message
			}
			closeBar("rollback "+ev.Step, ev.Time, string(ev.Status), msg)
			if d.Downtime != nil && ev.Step == d.Downtime.From && ev.Status == event.StatusRolledBack && win != nil && !win.Closed {
				win.To, win.Closed, win.By = at(ev.Time), true, "the end of the rollback of "+ev.Step
			}
		case event.StepProgress:
			if p := ev.Progress; p != nil {
				tl.Samples[ev.Step] = append(tl.Samples[ev.Step], sample{At: at(ev.Time), Unit: p.Unit, Done: p.Done, Total: p.Total, Rate: p.Rate, Phase: p.Message})
			}
		}
	}
	end := at(last)
	if d.Run.Finished != nil {
		end = math.Max(end, at(*d.Run.Finished))
	}
	tl.Seconds = end
	for _, r := range open {
		b := bar(r)
		b.To = end
		if d.Run.Result != string(event.StatusRunning) {
			b.Status = string(event.StatusUnfinished)
		}
	}
	if win != nil && !win.Closed {
		win.To = end
	}
	tl.Window = win
	return tl
}
