// Package engine runs a loaded plan: it schedules the DAG with bounded
// parallelism, runs each step with its timeout and retries, checks its
// assertions, and rolls back on failure. It prints nothing: everything it
// does is reported as events.
package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// Options control a run.
type Options struct {
	Registry    *steps.Registry
	RunID       string
	Parallelism int // at most this many steps at once; 0 means min(NumCPU, 8)
	// Select, when set, says which steps this run covers (--target, checks
	// only). Dependencies outside the selection are not waited for.
	Select      func(st *plan.Step) bool
	AutoApprove bool
	Prompt      func(ctx context.Context, question string) (string, error)
	Events      func(event.Event) // called one event at a time
	Redactor    *redact.Redactor
	NoRollback  bool
	// Reused are outputs of steps that completed in an earlier run of the
	// same plan: they are not run again (resume). Their work is this run's
	// too, so a failed run rolls them back after its own steps.
	Reused map[string]any
	// Earlier lists the steps of the earlier run whose work still stands,
	// newest first (journal.Run.RollbackOrder): the order in which a failed
	// resume rolls back the Reused steps; the ones it leaves out (skipped
	// by when) have nothing to undo. Nil: every Reused step, in the reverse
	// of the plan's dependency order.
	Earlier []string
	// RollbackContext is used for rollbacks once ctx is cancelled, so that a
	// first Ctrl-C still rolls back and a second one stops that too.
	// Nil means rollbacks are never cancelled.
	RollbackContext context.Context
	// StateDir returns a directory where a step may keep resumable state.
	StateDir func(addr string) string
	Now      func() time.Time
	// KeepGoing lets independent steps go on after a failure (planrun
	// check reports every check); what depends on the failed step still
	// does not run.
	KeepGoing bool
	// Fingerprints and Resumed go into the run_started event (see journal).
	Fingerprints map[string]string
	// By and Vars are recorded in run_started: who runs it, with which
	// variables (sensitive ones already replaced, every value redacted).
	By      *event.Runner
	Vars    map[string]any
	Resumed bool
}

// StepResult is what happened to one step.
type StepResult struct {
	Addr       string
	Uses       string
	Status     event.Status
	Attempts   int
	Started    time.Time
	Finished   time.Time
	Output     any // normalized, not redacted
	Err        error
	Assertions []event.AssertResult
	Rollback   *RollbackResult

	ran bool // Run was called at least once: there may be something to undo
	// unchanged: every attempt was refused before it changed anything
	// (steptype.Refusal), so there is nothing to undo.
	unchanged bool
	cty       cty.Value
}

// Duration is how long the step took.
func (r *StepResult) Duration() time.Duration {
	if r.Started.IsZero() || r.Finished.IsZero() {
		return 0
	}
	return r.Finished.Sub(r.Started)
}

// RollbackResult is what happened to a step's rollback hook.
type RollbackResult struct {
	Status   event.Status
	Err      error
	Duration time.Duration
	Finished time.Time
}

// Result is what happened in a run.
type Result struct {
	Status   event.Status // succeeded, failed or interrupted
	Err      error        // the first error; rollback errors never replace it
	Steps    map[string]*StepResult
	Order    []string // steps in the order they finished
	Downtime *time.Duration
	// DowntimeEnd says what closed the downtime window: the plan's "to"
	// step, or "the rollback of FROM" when the run failed before "to" and
	// that rollback (maintenance off) closed it; "" when not measured.
	DowntimeEnd string
	// DowntimeOpen: the window's "from" step did its work and neither
	// "to" nor its rollback closed the window (maintenance may be on).
	DowntimeOpen bool
	Started      time.Time
	Finished     time.Time
	// RollbackFailed is set when a rollback hook failed.
	RollbackFailed bool
	// RollbackInterrupted is set when rollbacks were stopped (second Ctrl-C).
	RollbackInterrupted bool
}

type run struct {
	plan    *plan.Plan
	opts    Options
	emitMu  sync.Mutex
	mu      sync.Mutex // guards results
	results map[string]*StepResult
	vars    map[*plan.Scope]map[string]any
}

// Run runs the plan and returns what happened. It returns when every step
// it started has finished and every rollback has run.
func Run(ctx context.Context, p *plan.Plan, opts Options) *Result {
	if opts.Parallelism <= 0 {
		opts.Parallelism = min(runtime.NumCPU(), 8)
	}
	r, res := newRun(p, &opts)

	var selected []*plan.Step
	isSelected := map[string]bool{}
	for _, st := range p.Steps {
		if opts.Select == nil || opts.Select(st) {
			selected = append(selected, st)
			isSelected[st.Addr] = true
		}
		r.results[st.Addr] = &StepResult{Addr: st.Addr, Uses: st.Uses, Status: event.StatusNotRun}
	}
	var addrs []string
	for _, st := range selected {
		addrs = append(addrs, st.Addr)
	}
	r.emit(event.Event{Type: event.RunStarted, Plan: p.Name, Hash: p.Hash, Steps: addrs, Fingerprints: opts.Fingerprints, Resumed: opts.Resumed, By: opts.By, Vars: opts.Vars})

	order := map[string]int{}
	for i, st := range p.Steps {
		order[st.Addr] = i
	}
	waiting := map[string]int{}
	ready := &stepHeap{order: order}
	for _, st := range selected {
		for _, d := range st.Deps {
			if isSelected[d] {
				waiting[st.Addr]++
			}
		}
		if waiting[st.Addr] == 0 {
			heap.Push(ready, st)
		}
	}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	done := make(chan *plan.Step)
	running := 0
	stopped := false
	for {
		for !stopped && running < opts.Parallelism && ready.Len() > 0 {
			if ctx.Err() != nil {
				break
			}
			st := heap.Pop(ready).(*plan.Step)
			running++
			go func() {
				r.runStep(runCtx, st)
				done <- st
			}()
		}
		if running == 0 {
			break
		}
		ctxDone := ctx.Done()
		if stopped {
			ctxDone = nil // already cancelling: just wait for the running steps
		}
		var st *plan.Step
		select {
		case st = <-done:
		case <-ctxDone:
			stopped = true
			cancelRun()
			continue
		}
		running--
		sr := r.result(st.Addr)
		res.Order = append(res.Order, st.Addr)
		switch sr.Status {
		case event.StatusSucceeded, event.StatusSkipped, event.StatusReused:
			for _, u := range p.Graph.Users(st.Addr) {
				if !isSelected[u] {
					continue
				}
				waiting[u]--
				if waiting[u] == 0 {
					heap.Push(ready, p.Step(u))
				}
			}
		default:
			if res.Err == nil {
				res.Err = sr.Err
			}
			if opts.KeepGoing {
				continue
			}
			if !stopped {
				// No new steps start; the running ones are cancelled and
				// their rollbacks run too (they partly ran).
				stopped = true
				cancelRun()
			}
		}
	}

	switch {
	case ctx.Err() != nil:
		res.Status = event.StatusInterrupted
		if res.Err == nil {
			res.Err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
	case res.Err != nil:
		res.Status = event.StatusFailed
	default:
		res.Status = event.StatusSucceeded
	}
	if res.Status != event.StatusSucceeded && p.OnFailure == plan.OnFailureRollback && !opts.NoRollback {
		r.rollback(ctx, res)
	}
	res.Finished = opts.Now()
	res.Downtime, res.DowntimeEnd, res.DowntimeOpen = r.downtime()
	ev := event.Event{Type: event.RunFinished, Status: res.Status, Seconds: res.Finished.Sub(res.Started).Seconds()}
	if res.Err != nil {
		ev.Error = r.opts.Redactor.String(res.Err.Error())
	}
	if res.Downtime != nil {
		s := res.Downtime.Seconds()
		ev.Downtime = &s
	}
	if res.RollbackInterrupted {
		ev.Message = "rollbacks were interrupted: some hooks did not run"
	}
	r.emit(ev)
	return res
}

func (r *run) result(addr string) *StepResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results[addr]
}

// emit sends an event to the callback, one at a time, stamped.
func (r *run) emit(ev event.Event) {
	if r.opts.Events == nil {
		return
	}
	ev.Time = r.opts.Now()
	ev.Run = r.opts.RunID
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.opts.Events(ev)
}

// output returns a finished step's output for HCL references.
func (r *run) output(addr string) (cty.Value, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sr := r.results[addr]
	if sr == nil {
		return cty.NilVal, false
	}
	switch sr.Status {
	case event.StatusSucceeded, event.StatusReused, event.StatusFailed, event.StatusCancelled:
	case event.StatusSkipped:
		return cty.NullVal(cty.DynamicPseudoType), true
	default:
		if out, ok := r.opts.Reused[addr]; ok {
			return ToCty(out), true
		}
		return cty.NilVal, false
	}
	if sr.cty == cty.NilVal {
		sr.cty = ToCty(sr.Output)
	}
	return sr.cty, true
}

// rawOutput returns a finished step's output for assertions.
func (r *run) rawOutput(addr string) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sr := r.results[addr]
	if sr != nil && (sr.Status == event.StatusSucceeded || sr.Status == event.StatusReused) {
		return sr.Output, true
	}
	if out, ok := r.opts.Reused[addr]; ok {
		return out, true
	}
	return nil, false
}

// downtime measures the declared window: from the start of one step to the
// end of the other, or, when the run failed before the other succeeded, to
// the end of the first one's rollback, which closed the window (the
// maintenance mode it turned on is off again). It also says which end it
// was, or that the window was opened and is not closed.
func (r *run) downtime() (span *time.Duration, end string, open bool) {
	d := r.plan.Downtime
	if d == nil {
		return nil, "", false
	}
	from, to := r.result(d.From), r.result(d.To)
	if from == nil || from.Started.IsZero() {
		return nil, "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	switch {
	case to != nil && (to.Status == event.StatusSucceeded || to.Status == event.StatusSkipped) && !to.Finished.IsZero():
		at, end = to.Finished, d.To
	case from.Rollback != nil && from.Rollback.Status == event.StatusRolledBack:
		at, end = from.Rollback.Finished, "the rollback of "+d.From
	default:
		return nil, "", from.ran && !from.unchanged && from.Status != event.StatusSkipped
	}
	w := at.Sub(from.Started)
	return &w, end, false
}

// rollback runs the rollback hooks of every step whose work stands, newest
// first: the steps this run ran, then the ones it reused from the earlier
// run (resume), which completed before them.
func (r *run) rollback(ctx context.Context, res *Result) {
	rctx := r.opts.RollbackContext
	if rctx == nil {
		rctx = context.WithoutCancel(ctx)
	}
	for i := len(res.Order) - 1; i >= 0; i-- {
		st := r.plan.Step(res.Order[i])
		if sr := r.result(st.Addr); st.Rollback != nil && sr.ran && sr.unchanged && !slices.Contains(r.opts.Earlier, st.Addr) {
			r.emit(event.Event{Type: event.RollbackFinished, Step: st.Addr, Uses: st.Rollback.Uses, Status: event.StatusSkipped,
				Message: "not run: the step failed before it changed anything"})
		}
	}
	for _, addr := range r.undoOrder(res) {
		st := r.plan.Step(addr)
		sr := r.result(st.Addr)
		if st.Rollback == nil {
			continue
		}
		var note string // says which rollbacks undo the earlier run's work
		if !sr.ran {
			note = "completed in an earlier run"
		}
		if rctx.Err() != nil {
			res.RollbackInterrupted = true
			r.mu.Lock()
			sr.Rollback = &RollbackResult{Status: event.StatusCancelled, Err: errors.New("rollback stopped before it started")}
			r.mu.Unlock()
			r.emit(event.Event{Type: event.RollbackFinished, Step: st.Addr, Uses: st.Rollback.Uses, Status: event.StatusCancelled, Message: "not started: rollbacks were interrupted"})
			continue
		}
		r.emit(event.Event{Type: event.RollbackStarted, Step: st.Addr, Uses: st.Rollback.Uses, Message: note})
		start := r.opts.Now()
		_, asserts, err := r.runAction(rctx, st, st.Rollback)
		end := r.opts.Now()
		rb := &RollbackResult{Status: event.StatusRolledBack, Duration: end.Sub(start), Finished: end}
		if err != nil {
			rb.Status, rb.Err = event.StatusFailed, err
			res.RollbackFailed = true
			if rctx.Err() != nil {
				rb.Status = event.StatusCancelled
				res.RollbackInterrupted = true
			}
		}
		r.mu.Lock()
		sr.Rollback = rb
		r.mu.Unlock()
		ev := event.Event{Type: event.RollbackFinished, Step: st.Addr, Uses: st.Rollback.Uses, Status: rb.Status, Seconds: rb.Duration.Seconds(), Assertions: asserts, Message: note}
		if err != nil {
			r.setError(&ev, err)
		}
		r.emit(ev)
	}
}

// undoOrder lists the steps to roll back, newest first: those this run
// ran (Run was called, so there may be something to undo), then the reused
// ones in the reverse of the order the earlier run completed them. A step
// the earlier run left half done and this run ran again is undone once.
func (r *run) undoOrder(res *Result) []string {
	var out []string
	listed := map[string]bool{}
	add := func(addr string) {
		if !listed[addr] {
			listed[addr] = true
			out = append(out, addr)
		}
	}
	earlier := map[string]bool{}
	for _, addr := range r.opts.Earlier {
		earlier[addr] = true
	}
	for i := len(res.Order) - 1; i >= 0; i-- {
		// A refused step has nothing to undo, unless an earlier run's
		// attempt at it may have left work behind.
		if sr := r.result(res.Order[i]); sr.ran && (!sr.unchanged || earlier[res.Order[i]]) {
			add(res.Order[i])
		}
	}
	reused := func(addr string) bool {
		_, ok := r.opts.Reused[addr]
		return ok && r.plan.Step(addr) != nil && !r.result(addr).ran
	}
	if r.opts.Earlier != nil {
		// Only these: a reused step the earlier run skipped has nothing to undo.
		for _, addr := range r.opts.Earlier {
			if reused(addr) {
				add(addr)
			}
		}
		return out
	}
	// No earlier order: dependents before what they depend on.
	waves, _ := r.plan.Graph.Waves()
	for i := len(waves) - 1; i >= 0; i-- {
		for j := len(waves[i]) - 1; j >= 0; j-- {
			if reused(waves[i][j]) {
				add(waves[i][j])
			}
		}
	}
	return out
}

// stepHeap orders ready steps by declaration, so that runs are repeatable.
type stepHeap struct {
	steps []*plan.Step
	order map[string]int
}

func (h *stepHeap) Len() int           { return len(h.steps) }
func (h *stepHeap) Less(i, j int) bool { return h.order[h.steps[i].Addr] < h.order[h.steps[j].Addr] }
func (h *stepHeap) Swap(i, j int)      { h.steps[i], h.steps[j] = h.steps[j], h.steps[i] }
func (h *stepHeap) Push(x any)         { h.steps = append(h.steps, x.(*plan.Step)) }
func (h *stepHeap) Pop() any {
	last := h.steps[len(h.steps)-1]
	h.steps = h.steps[:len(h.steps)-1]
	return last
}

// newRun fills in the options' defaults (clock, redactor), in place for
// the caller too, and starts the run's state and result.
func newRun(p *plan.Plan, opts *Options) (*run, *Result) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Redactor == nil {
		opts.Redactor = redact.New(p.Secrets()...)
	}
	r := &run{plan: p, opts: *opts, results: map[string]*StepResult{}, vars: map[*plan.Scope]map[string]any{}}
	return r, &Result{Steps: r.results, Started: opts.Now()}
}

// Rollback runs the rollback hooks of steps that ran in an earlier run
// (planrun rollback): order lists them newest first, outputs holds what
// they recorded. Steps without a hook are passed over.
func Rollback(ctx context.Context, p *plan.Plan, order []string, outputs map[string]any, opts Options) *Result {
	r, res := newRun(p, &opts)
	for _, st := range p.Steps {
		r.results[st.Addr] = &StepResult{Addr: st.Addr, Uses: st.Uses, Status: event.StatusNotRun}
	}
	var addrs []string
	for i := len(order) - 1; i >= 0; i-- {
		addr := order[i]
		sr, ok := r.results[addr]
		if !ok {
			continue // no longer in the plan: nothing to run
		}
		sr.Status, sr.Output, sr.ran = event.StatusSucceeded, outputs[addr], true
		res.Order = append(res.Order, addr)
		addrs = append(addrs, addr)
	}
	r.emit(event.Event{Type: event.RunStarted, Plan: p.Name, Hash: p.Hash, Steps: addrs, Fingerprints: opts.Fingerprints, Resumed: true, Message: "rollback", By: opts.By, Vars: opts.Vars})
	rctx := opts.RollbackContext
	if rctx == nil {
		rctx = ctx
	}
	r.opts.RollbackContext = rctx
	r.rollback(ctx, res)
	res.Finished = opts.Now()
	res.Status = event.StatusRolledBack
	ev := event.Event{Type: event.RunFinished, Status: res.Status, Seconds: res.Finished.Sub(res.Started).Seconds()}
	switch {
	case res.RollbackInterrupted:
		res.Status, ev.Status = event.StatusInterrupted, event.StatusInterrupted
		ev.Message = "rollbacks were interrupted"
	case res.RollbackFailed:
		res.Status, ev.Status = event.StatusFailed, event.StatusFailed
		ev.Message = "a rollback failed"
	}
	r.emit(ev)
	return res
}
