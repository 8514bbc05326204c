package report

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
)

// Doc is the report, and its JSON form (--format json). The structure
// is versioned: fields are only ever added within a version. Times are
// RFC 3339 in UTC, durations in seconds; null means "not known".
type Doc struct {
	Version   int        `json:"version"` // 1
	Plan      PlanInfo   `json:"plan"`
	Run       RunInfo    `json:"run"`
	Downtime  *Downtime  `json:"downtime"` // null: the plan declares no window
	Variables Variables  `json:"variables"`
	Steps     []Step     `json:"steps"`     // steps and checks, in the order they ran; those that never started last
	Rollbacks []Rollback `json:"rollbacks"` // rollback hooks, in the order they ran
}

type PlanInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Path        string `json:"path"` // as given to planrun report
	Hash        string `json:"hash"` // of the plan's files now
}

type RunInfo struct {
	ID string `json:"id"`
	// Result: succeeded, failed, rolled_back, interrupted, unfinished (its
	// process died), or running (a live process holds the plan's lock).
	Result   string     `json:"result"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished"`
	Seconds  *float64   `json:"seconds"`
	// RanBy is who ran it (user, host, pid); null when the record does not say.
	RanBy *Runner `json:"ran_by"`
	// PlanHash is the hash of the plan's files when the run started;
	// PlanChanged names the steps that differ in the plan as it is now.
	PlanHash    string    `json:"plan_hash"`
	PlanChanged []string  `json:"plan_changed"`
	Error       string    `json:"error"`   // the run's first error, in full
	Message     string    `json:"message"` // such as "rollbacks were interrupted"
	Segments    []Segment `json:"segments"`
}

type Runner struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// Segment is one process's part of the run: the first apply, each
// apply that resumed it, each 'planrun rollback'.
type Segment struct {
	Kind     string     `json:"kind"` // apply, resume or rollback
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished"` // null: its process died
	Status   string     `json:"status"`
}

type Downtime struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Seconds *float64 `json:"seconds"` // null: not measured
	Note    string   `json:"note"`    // how it was measured, or why not
}

type Variables struct {
	// Source says where the values come from: "recorded" — by the run, as
	// it started; "given" — a run recorded by an older planrun keeps no
	// values, so these are the values given to planrun report (defaults,
	// PLANRUN_VAR_*, -var-file, -var).
	Source string `json:"source"`
	// MatchesRun: the steps' fingerprints recorded by the run equal the
	// plan's with these values (so the steps' arguments were the same);
	// null when the run recorded no fingerprints.
	MatchesRun *bool      `json:"matches_run"`
	Values     []Variable `json:"values"`
}

type Variable struct {
	Name      string          `json:"name"`
	Sensitive bool            `json:"sensitive"`
	Value     json.RawMessage `json:"value"` // "(sensitive)" for a sensitive one
}

type Step struct {
	Addr string `json:"addr"`
	Kind string `json:"kind"` // step or check
	Uses string `json:"uses"`
	// Status: succeeded, failed, skipped, cancelled, not_run, running (in a
	// run still going on) or unfinished (its process died in it).
	Status     string       `json:"status"`
	Attempts   int          `json:"attempts"`
	Started    *time.Time   `json:"started"`
	Seconds    float64      `json:"seconds"`
	Assertions AssertCounts `json:"assertions"`
	Failures   []Assertion  `json:"assertion_failures"` // failed and warned assertions
	Error      string       `json:"error"`              // in full
	Rollback   string       `json:"rollback"`           // the rollback's status, "" when none ran
	Summary    []Fact       `json:"summary"`            // notable outputs
	// History is every attempt that ended, across the run's segments: a
	// failure and its error, then the resumed success.
	History []Attempt `json:"history"`
}

// Attempt is one ended attempt of a step.
type Attempt struct {
	Segment int     `json:"segment"` // 1 for the first apply, 2 for the first resume...
	Attempt int     `json:"attempt"`
	Status  string  `json:"status"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error"`
}

type AssertCounts struct {
	Passed int `json:"passed"`
	Warned int `json:"warned"`
	Failed int `json:"failed"`
}

type Assertion struct {
	That     string            `json:"that"`
	Severity string            `json:"severity"`
	Message  string            `json:"message"`
	Error    string            `json:"error"` // the condition could not be evaluated
	Values   []event.ReadValue `json:"values"`
}

// Fact is one notable output: its name and value as recorded (JSON),
// and as the Markdown shows it. Outputs without a summary of their own are
// one fact, "output": the output as compact JSON text, cut after 300 bytes.
type Fact struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	text  string
}

type Rollback struct {
	Step    string     `json:"step"`
	Uses    string     `json:"uses"`
	Status  string     `json:"status"`
	Started *time.Time `json:"started"`
	Seconds float64    `json:"seconds"`
	Error   string     `json:"error"`
	Message string     `json:"message"`
}

// Now is what the plan is as the report is made, beside what the run
// recorded of it.
type Now struct {
	// Fingerprints are the steps' fingerprints, to tell which steps
	// changed since the run.
	Fingerprints map[string]string
	// Vars are the variables as given now (sensitive ones masked), shown
	// for a run recorded by an older planrun that kept none.
	Vars map[string]any
}

// Build puts a run's record and the plan as it is now together.
func Build(p *plan.Plan, now Now, run *journal.Run, result event.Status, events []event.Event) *Doc {
	doc := &Doc{
		Version: 1,
		Plan:    PlanInfo{Name: p.Name, Description: p.Description, Path: p.Path, Hash: p.Hash},
		Run: RunInfo{
			ID: run.ID, Result: string(result), Started: run.Started.UTC(),
			PlanHash: run.Hash, PlanChanged: []string{},
		},
		Steps: []Step{}, Rollbacks: []Rollback{},
	}
	if !run.Finished.IsZero() {
		f := run.Finished.UTC()
		s := run.Finished.Sub(run.Started).Seconds()
		doc.Run.Finished, doc.Run.Seconds = &f, &s
	}
	if changes := journal.Changes(run.Fingerprints, now.Fingerprints); len(run.Fingerprints) > 0 && len(changes) > 0 {
		doc.Run.PlanChanged = changes
	}
	var recorded map[string]any
	for _, ev := range events {
		if ev.Type == event.RunStarted {
			// The first process's: who started the run, with what.
			if ev.By != nil {
				doc.Run.RanBy = &Runner{User: ev.By.User, Host: ev.By.Host, PID: ev.By.PID}
			}
			recorded = ev.Vars
			break
		}
	}
	if recorded != nil {
		doc.Variables = runVars(p, recorded)
	} else {
		doc.Variables = givenVars(p, now.Vars, run, len(doc.Run.PlanChanged) == 0)
	}

	// The steps' states are the journal's replay of the record; the report
	// lists them in the order they first appear in it, then the plan's
	// steps that never did.
	var order []string
	seen := map[string]bool{}
	see := func(addr string) {
		if !seen[addr] {
			seen[addr] = true
			order = append(order, addr)
		}
	}
	rollbacks := map[string]int{} // step → index in doc.Rollbacks of its latest hook
	var seg *Segment
	for _, ev := range events {
		switch ev.Type {
		case event.RunStarted:
			kind := "apply"
			switch {
			case ev.Message == "rollback":
				kind = "rollback"
			case ev.Resumed:
				kind = "resume"
			}
			doc.Run.Segments = append(doc.Run.Segments, Segment{Kind: kind, Started: ev.Time.UTC(), Status: string(event.StatusUnfinished)})
			seg = &doc.Run.Segments[len(doc.Run.Segments)-1]
		case event.StepStarted, event.StepRetrying, event.StepFinished:
			see(ev.Step)
		case event.RollbackStarted:
			t := ev.Time.UTC()
			doc.Rollbacks = append(doc.Rollbacks, Rollback{Step: ev.Step, Uses: ev.Uses, Status: string(event.StatusRunning), Started: &t})
			rollbacks[ev.Step] = len(doc.Rollbacks) - 1
		case event.RollbackFinished:
			i, ok := rollbacks[ev.Step]
			if !ok {
				doc.Rollbacks = append(doc.Rollbacks, Rollback{Step: ev.Step, Uses: ev.Uses})
				i = len(doc.Rollbacks) - 1
			}
			rb := &doc.Rollbacks[i]
			rb.Status, rb.Seconds, rb.Error, rb.Message = string(ev.Status), ev.Seconds, ev.Error, ev.Message
			delete(rollbacks, ev.Step)
			see(ev.Step)
		case event.RunFinished:
			if seg != nil {
				t := ev.Time.UTC()
				seg.Finished, seg.Status = &t, string(ev.Status)
			}
			// The last segment's error and message describe the run; a
			// later rollback segment that succeeded has none.
			doc.Run.Error, doc.Run.Message = ev.Error, ev.Message
		}
	}
	// Steps of the plan that never started, in the plan's order.
	for _, st := range p.Steps {
		see(st.Addr)
	}
	started := func(addr string) time.Time {
		if st := run.Steps[addr]; st != nil {
			return st.Started
		}
		return time.Time{}
	}
	sort.SliceStable(order, func(i, j int) bool {
		ti, tj := started(order[i]), started(order[j])
		if ti.IsZero() || tj.IsZero() {
			return !ti.IsZero() && tj.IsZero()
		}
		return ti.Before(tj)
	})
	for _, addr := range order {
		s := stepOf(p, addr, run.Steps[addr])
		if result != event.StatusRunning && s.Status == string(event.StatusRunning) {
			s.Status = string(event.StatusUnfinished) // its process died in it
		}
		doc.Steps = append(doc.Steps, s)
	}
	for i := range doc.Rollbacks {
		if rb := &doc.Rollbacks[i]; result != event.StatusRunning && rb.Status == string(event.StatusRunning) {
			rb.Status = string(event.StatusUnfinished)
		}
	}
	history := attemptHistory(events)
	for i := range doc.Steps {
		doc.Steps[i].History = history[doc.Steps[i].Addr]
		if doc.Steps[i].History == nil {
			doc.Steps[i].History = []Attempt{}
		}
	}
	doc.Downtime = downtimeWindow(p, events)
	return doc
}

// attemptHistory lists each step's ended attempts in the order they ended.
func attemptHistory(events []event.Event) map[string][]Attempt {
	out := map[string][]Attempt{}
	segment := 0
	for _, ev := range events {
		switch ev.Type {
		case event.RunStarted:
			segment++
		case event.StepRetrying:
			out[ev.Step] = append(out[ev.Step], Attempt{Segment: segment, Attempt: ev.Attempt, Status: string(event.StatusFailed), Error: ev.Error})
		case event.StepFinished:
			if ev.Status == event.StatusReused {
				continue
			}
			out[ev.Step] = append(out[ev.Step], Attempt{Segment: segment, Attempt: ev.Attempt, Status: string(ev.Status), Seconds: ev.Seconds, Error: ev.Error})
		}
	}
	return out
}

// stepOf is a step as the report shows it: its kind and type from
// the plan, the rest from its replayed state (nil: it never ran).
func stepOf(p *plan.Plan, addr string, st *journal.StepState) Step {
	s := Step{Addr: addr, Kind: "step", Status: string(event.StatusNotRun), Failures: []Assertion{}, Summary: []Fact{}}
	if ps := p.Step(addr); ps != nil {
		s.Uses = ps.Uses
		if ps.Kind == plan.KindCheck {
			s.Kind = "check"
		}
	} else if !strings.HasPrefix(addr, "step.") {
		s.Kind = "check"
	}
	if st == nil {
		return s
	}
	if st.Uses != "" {
		s.Uses = st.Uses
	}
	s.Status, s.Attempts, s.Seconds, s.Error, s.Rollback = string(st.Status), st.Attempts, st.Seconds, st.Error, string(st.Rollback)
	if !st.Started.IsZero() {
		t := st.Started.UTC()
		s.Started = &t
	}
	s.Assertions, s.Failures = assertions(st.Assertions)
	s.Summary = summarizeOutput(s.Uses, st.Output)
	if s.Status != string(event.StatusSucceeded) {
		// A rate of a copy cut short is of the part it did, not the copy's.
		for i := range s.Summary {
			if f := &s.Summary[i]; f.Name == "bytes_per_second" {
				f.text += " (of the part done before it stopped)"
			}
		}
	}
	return s
}

func assertions(results []event.AssertResult) (AssertCounts, []Assertion) {
	var n AssertCounts
	failures := []Assertion{}
	for _, a := range results {
		switch {
		case a.Passed:
			n.Passed++
			continue
		case a.Severity == string(plan.SeverityWarn):
			n.Warned++
		default:
			n.Failed++
		}
		values := a.Values
		if values == nil {
			values = []event.ReadValue{}
		}
		failures = append(failures, Assertion{That: a.That, Severity: a.Severity, Message: a.Message, Error: a.Error, Values: values})
	}
	return n, failures
}

// runVars lists the variables the run recorded as it started,
// in the plan's order, then any the plan no longer declares.
func runVars(p *plan.Plan, vars map[string]any) Variables {
	rv := Variables{Source: "recorded", Values: []Variable{}}
	add := func(name string, declared *plan.Variable) {
		v, ok := vars[name]
		entry := Variable{Name: name, Value: json.RawMessage("null")}
		if declared != nil {
			entry.Sensitive = declared.Sensitive || p.IsSensitive(name)
		}
		if v == redact.Mask {
			entry.Sensitive = true
		}
		switch {
		case entry.Sensitive:
			entry.Value = json.RawMessage(`"` + redact.Mask + `"`)
		case ok:
			if raw, err := json.Marshal(v); err == nil {
				entry.Value = raw
			}
		}
		rv.Values = append(rv.Values, entry)
	}
	seen := map[string]bool{}
	for _, v := range p.Variables {
		seen[v.Name] = true
		add(v.Name, v)
	}
	var rest []string
	for name := range vars {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		add(name, nil)
	}
	return rv
}

// givenVars lists the plan's variables with the values given now, for a
// run recorded by an older planrun that kept none (only fingerprints of
// what the steps were given).
func givenVars(p *plan.Plan, vars map[string]any, run *journal.Run, same bool) Variables {
	// No redactor here: the whole report is redacted once it is rendered.
	rv := runVars(p, vars)
	rv.Source = "given"
	if len(run.Fingerprints) > 0 {
		rv.MatchesRun = &same
	}
	return rv
}

// downtimeWindow measures the plan's downtime window: the duration the run
// recorded, or else from the record's event times (across resumes). The
// window closes at the end of its "to" step or, when the run failed before
// that, at the end of the rollback of its "from" step (maintenance off).
func downtimeWindow(p *plan.Plan, events []event.Event) *Downtime {
	if p.Downtime == nil {
		return nil
	}
	w := &Downtime{From: p.Downtime.From, To: p.Downtime.To}
	var recorded *float64
	var from, to, undone time.Time
	opened := false // the from step did its work (not skipped, not refused)
	for _, ev := range events {
		switch {
		case ev.Type == event.RunFinished && ev.Downtime != nil:
			recorded = ev.Downtime
		case ev.Type == event.StepStarted && ev.Step == w.From:
			from = ev.Time
		case ev.Type == event.StepFinished && ev.Step == w.To && ev.Status == event.StatusSucceeded:
			to = ev.Time
		case ev.Type == event.StepFinished && ev.Step == w.From:
			opened = ev.Status != event.StatusSkipped && ev.Attempt > 0 && !ev.Unchanged
		case ev.Type == event.RollbackFinished && ev.Step == w.From && ev.Status == event.StatusRolledBack:
			undone = ev.Time
		}
	}
	end := "the end of " + w.To
	if to.IsZero() && !undone.IsZero() {
		end, to = "the end of the rollback of "+w.From+" ("+w.To+" did not complete)", undone
	}
	switch {
	case recorded != nil:
		w.Seconds = recorded
		w.Note = fmt.Sprintf("from the start of %s to %s, as the run measured it", w.From, end)
	case !from.IsZero() && !to.IsZero() && !to.Before(from):
		s := to.Sub(from).Seconds()
		w.Seconds = &s
		w.Note = fmt.Sprintf("from the start of %s to %s, from the record's event times", w.From, end)
	case opened:
		w.Note = fmt.Sprintf("not closed: %s started, but neither %s nor the rollback of %s completed; the window may still be open", w.From, w.To, w.From)
	default:
		w.Note = fmt.Sprintf("not measured: %s or %s did not complete in this run", w.From, w.To)
	}
	return w
}
