package journal

import (
	"github.com/planrun/planrun/internal/event"
	"sort"
	"time"
)

// Run is a run rebuilt from its events.
type Run struct {
	ID           string
	Plan         string
	Hash         string
	Fingerprints map[string]string
	Status       event.Status // succeeded, failed, interrupted, rolled_back; unfinished if it never finished
	Started      time.Time
	Finished     time.Time
	Steps        map[string]*StepState
	Order        []string      // steps in the order they finished (for rollbacks)
	Segments     int           // how many times the run was started or resumed
	By           *event.Runner // who started it; nil in a record of an older planrun
	Torn         *TornError    // set by the reader when the record ends in a torn line
}

// StepState is what a run's events say about one step.
type StepState struct {
	Addr       string
	Uses       string
	Status     event.Status
	Attempts   int
	Seconds    float64
	Output     any
	Error      string
	RolledBack bool
	Rollback   event.Status         // the rollback's status, "" when none ran
	Started    time.Time            // when it last started; zero if it never did
	Assertions []event.AssertResult // the verdicts of its assertions when it last finished
	Unchanged  bool                 // it failed before it changed anything: nothing to roll back
}

// Replay rebuilds a run from its events.
func Replay(id string, events []event.Event) *Run {
	r := &Run{ID: id, Status: event.StatusUnfinished, Steps: map[string]*StepState{}, Fingerprints: map[string]string{}}
	step := func(addr, uses string) *StepState {
		s := r.Steps[addr]
		if s == nil {
			s = &StepState{Addr: addr, Status: event.StatusNotRun}
			r.Steps[addr] = s
		}
		if uses != "" && s.Uses == "" {
			s.Uses = uses
		}
		return s
	}
	for _, ev := range events {
		switch ev.Type {
		case event.RunStarted:
			r.Segments++
			if r.Started.IsZero() {
				r.Started, r.By = ev.Time, ev.By
			}
			r.Plan, r.Hash = ev.Plan, ev.Hash
			if len(ev.Fingerprints) > 0 {
				r.Fingerprints = ev.Fingerprints
			}
			r.Status = event.StatusUnfinished
		case event.StepStarted:
			s := step(ev.Step, ev.Uses)
			s.Status, s.Started = event.StatusRunning, ev.Time
		case event.StepRetrying:
			s := step(ev.Step, ev.Uses)
			s.Attempts = max(s.Attempts, ev.Attempt)
		case event.StepFinished:
			s := step(ev.Step, ev.Uses)
			if ev.Status == event.StatusReused {
				continue // the earlier segment's record stands
			}
			s.Status, s.Seconds, s.Error = ev.Status, ev.Seconds, ev.Error
			s.Attempts = max(s.Attempts, ev.Attempt)
			s.Output, s.Assertions = ev.Output, ev.Assertions
			s.Unchanged = ev.Unchanged
			s.RolledBack, s.Rollback = false, ""
			r.Order = append(r.Order, ev.Step)
		case event.RollbackFinished:
			s := step(ev.Step, "")
			s.Rollback = ev.Status
			if ev.Status == event.StatusRolledBack {
				s.RolledBack = true
			}
		case event.RunFinished:
			r.Status = ev.Status
			r.Finished = ev.Time
		}
	}
	return r
}

// Reusable returns the outputs of steps whose work still stands: they
// succeeded and were not rolled back. A resumed run skips them.
func (r *Run) Reusable() map[string]any {
	out := map[string]any{}
	for addr, s := range r.Steps {
		if (s.Status == event.StatusSucceeded || s.Status == event.StatusSkipped) && !s.RolledBack {
			out[addr] = s.Output
		}
	}
	return out
}

// RollbackOrder lists the steps whose work stands (succeeded, failed or
// cancelled part-way, or still running when the process died, and not yet
// rolled back), newest first.
func (r *Run) RollbackOrder() []string {
	seen := map[string]bool{}
	var out []string
	// Steps that never finished were the newest: the process died in them.
	var running []string
	for addr, s := range r.Steps {
		if s.Status == event.StatusRunning && !s.RolledBack {
			running = append(running, addr)
		}
	}
	sort.Strings(running)
	out = append(out, running...)
	for i := len(r.Order) - 1; i >= 0; i-- {
		addr := r.Order[i]
		if seen[addr] {
			continue
		}
		seen[addr] = true
		s := r.Steps[addr]
		switch s.Status {
		case event.StatusSucceeded, event.StatusFailed, event.StatusCancelled:
			if !s.RolledBack && !s.Unchanged {
				out = append(out, addr)
			}
		}
	}
	return out
}

// Changes compares the fingerprints of a recorded run with the current
// plan's and names what differs: "step.x changed", "step.y added".
func Changes(recorded, current map[string]string) []string {
	var out []string
	for addr, fp := range current {
		old, ok := recorded[addr]
		switch {
		case !ok:
			out = append(out, addr+" added")
		case old != fp:
			out = append(out, addr+" changed")
		}
	}
	for addr := range recorded {
		if _, ok := current[addr]; !ok {
			out = append(out, addr+" removed")
		}
	}
	sort.Strings(out)
	return out
}
