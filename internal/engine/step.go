package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps/steptype"
)

// AssertionError is a step's failed error-severity assertion.
type AssertionError struct {
	Step   string
	Result event.AssertResult
}

func (e *AssertionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "assertion failed: %s", e.Result.That)
	if e.Result.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Result.Message)
	}
	if e.Result.Error != "" {
		fmt.Fprintf(&b, " (could not evaluate: %s)", e.Result.Error)
	}
	for _, v := range e.Result.Values {
		fmt.Fprintf(&b, "\n    %s = %s", v.Expr, v.Value)
	}
	return b.String()
}

func (r *run) runStep(ctx context.Context, st *plan.Step) {
	sr := r.result(st.Addr)
	if out, ok := r.opts.Reused[st.Addr]; ok {
		r.mu.Lock()
		sr.Status, sr.Output = event.StatusReused, out
		r.mu.Unlock()
		r.emit(event.Event{Type: event.StepFinished, Step: st.Addr, Uses: st.Uses, Status: event.StatusReused, Message: "completed in an earlier run"})
		return
	}
	r.mu.Lock()
	sr.Started = r.opts.Now()
	r.mu.Unlock()
	r.emit(event.Event{Type: event.StepStarted, Step: st.Addr, Uses: st.Uses})

	run, err := r.evalWhen(st)
	if err == nil && run {
		err = r.missingOutputs(st)
	}
	var out any
	var asserts []event.AssertResult
	status := event.StatusSucceeded
	switch {
	case err != nil:
		status = event.StatusFailed
	case !run:
		status = event.StatusSkipped
	default:
		out, asserts, err = r.runAction(ctx, st, &st.Action)
		if err != nil {
			status = event.StatusFailed
			if ctx.Err() != nil {
				status = event.StatusCancelled
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", st.Addr, err)
	}
	r.mu.Lock()
	sr.Finished = r.opts.Now()
	sr.Status, sr.Output, sr.Err, sr.Assertions = status, out, err, asserts
	attempts := sr.Attempts
	r.mu.Unlock()
	ev := event.Event{
		Type: event.StepFinished, Step: st.Addr, Uses: st.Uses, Status: status, Attempt: attempts,
		Seconds: sr.Finished.Sub(sr.Started).Seconds(), Output: r.opts.Redactor.Value(out), Assertions: asserts,
	}
	if status == event.StatusSkipped {
		ev.Message = "skipped: when is false"
	}
	if err != nil {
		r.setError(&ev, err)
		ev.Unchanged = sr.unchanged
	}
	r.emit(ev)
}

// missingOutputs names the outputs a step reads that nobody produced: a
// dependency outside this run's selection (planrun check, --target) that
// did not complete in an earlier run either.
func (r *run) missingOutputs(st *plan.Step) error {
	var missing []string
	for _, addr := range st.Reads() {
		if _, ok := r.output(addr); !ok {
			missing = append(missing, addr)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("needs the output of %s, which did not run (here or in an earlier run of this plan); apply the plan, or target a step that depends on it", strings.Join(missing, ", "))
}

func (r *run) evalWhen(st *plan.Step) (bool, error) {
	if st.When == nil {
		return true, nil
	}
	ectx, diags := r.plan.RunContext(st, &st.Action, r.output)
	if diags.HasErrors() {
		return false, fmt.Errorf("when: %w", diags)
	}
	v, diags := st.When.Value(ectx)
	if diags.HasErrors() {
		return false, fmt.Errorf("when: %w", diags)
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Bool {
		return false, errors.New("when: the condition is not true or false")
	}
	return v.True(), nil
}

// runAction runs a step's work (or its rollback) with retries and timeouts,
// then its assertions.
func (r *run) runAction(ctx context.Context, st *plan.Step, a *plan.Action) (any, []event.AssertResult, error) {
	t, ok := r.opts.Registry.Type(a.Uses)
	if !ok {
		return nil, nil, fmt.Errorf("unknown step type %q", a.Uses)
	}
	isStep := a == &st.Action
	attempts := max(1, a.Retry.Attempts)
	env := r.env(st, a)
	var lastErr error
	var lastOut any  // what a failed attempt produced (a 500's body): kept for the report
	changed := false // an attempt got past the point where the type refuses
	for attempt := 1; attempt <= attempts; attempt++ {
		args, err := r.decodeArgs(st, a, t, a.Body)
		if err != nil {
			return nil, nil, err // a configuration problem: retrying cannot help
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if a.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, a.Timeout)
		}
		if isStep {
			r.mu.Lock()
			sr := r.results[st.Addr]
			sr.ran, sr.Attempts = true, attempt
			r.mu.Unlock()
		}
		out, err := runType(actx, t, env, args)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		changed = changed || !steptype.IsRefusal(err)
		if isStep {
			r.mu.Lock()
			r.results[st.Addr].unchanged = !changed
			r.mu.Unlock()
		}
		if err == nil {
			norm, err := Normalize(out, plan.OutputShape(t.Output()))
			if err != nil {
				return nil, nil, err
			}
			asserts, err := r.checkAssertions(st, a, norm)
			return norm, asserts, err
		}
		if timedOut {
			err = fmt.Errorf("timed out after %s: %w", a.Timeout, err)
		}
		lastErr = err
		if out != nil {
			if norm, nerr := Normalize(out, plan.OutputShape(t.Output())); nerr == nil {
				lastOut = norm
			}
		}
		if _, panicked := errors.AsType[*PanicError](err); panicked || ctx.Err() != nil || attempt == attempts {
			break // a panic is a bug in the type: running it again may redo work
		}
		wait := backoff(a.Retry, attempt)
		r.emit(event.Event{
			Type: event.StepRetrying, Step: st.Addr, Uses: a.Uses, Attempt: attempt,
			Error:   r.opts.Redactor.String(err.Error()),
			Message: fmt.Sprintf("attempt %d of %d failed; retrying in %s", attempt, attempts, wait),
		})
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return lastOut, nil, fmt.Errorf("%w (cancelled while waiting to retry)", lastErr)
		}
	}
	return lastOut, nil, lastErr
}

// backoff doubles the wait after each failed attempt, up to MaxBackoff.
func backoff(rt plan.Retry, attempt int) time.Duration {
	d := rt.Backoff
	for i := 1; i < attempt; i++ {
		d *= 2
		if rt.MaxBackoff > 0 && d >= rt.MaxBackoff {
			return rt.MaxBackoff
		}
	}
	if rt.MaxBackoff > 0 && d > rt.MaxBackoff {
		return rt.MaxBackoff
	}
	return d
}

func (r *run) decodeArgs(st *plan.Step, a *plan.Action, t steptype.Type, body hcl.Body) (any, error) {
	ectx, diags := r.plan.RunContext(st, a, r.output)
	if diags.HasErrors() {
		return nil, fmt.Errorf("arguments: %w", diags)
	}
	args := t.NewArgs()
	if diags := gohcl.DecodeBody(body, ectx, args); diags.HasErrors() {
		return nil, fmt.Errorf("arguments: %w", diags)
	}
	return args, nil
}

func (r *run) env(st *plan.Step, a *plan.Action) *steptype.Env {
	env := &steptype.Env{
		Addr:        st.Addr,
		PlanDir:     r.plan.Dir,
		ReadOnly:    st.Kind == plan.KindCheck,
		AutoApprove: r.opts.AutoApprove,
		Prompt:      r.opts.Prompt,
		Secrets:     r.opts.Redactor.Add,
		Redact:      r.opts.Redactor.String,
		Log: func(format string, args ...any) {
			r.emit(event.Event{Type: event.StepLog, Step: st.Addr, Uses: a.Uses, Message: r.opts.Redactor.String(fmt.Sprintf(format, args...))})
		},
		Progress: func(p event.Progress) {
			p.Message = r.opts.Redactor.String(p.Message)
			r.emit(event.Event{Type: event.StepProgress, Step: st.Addr, Uses: a.Uses, Progress: &p})
		},
	}
	if r.opts.StateDir != nil {
		env.StateDir = r.opts.StateDir(st.Addr)
	}
	env.RunNested = func(ctx context.Context, uses string, body hcl.Body) (any, error) {
		t, ok := r.opts.Registry.Type(uses)
		if !ok {
			return nil, fmt.Errorf("unknown step type %q", uses)
		}
		if env.ReadOnly && !t.ReadOnly() {
			// The loader refuses this; a plan built some other way must not slip through.
			return nil, fmt.Errorf("a check is read-only, and %q can change data", uses)
		}
		args, err := r.decodeArgs(st, a, t, body)
		if err != nil {
			return nil, err
		}
		out, err := runType(ctx, t, env, args)
		if err != nil {
			return nil, err
		}
		return Normalize(out, plan.OutputShape(t.Output()))
	}
	return env
}

// assertEnv is what an assertion sees: this output, the outputs of the steps
// the step reads, and the variables.
func (r *run) assertEnv(st *plan.Step, out any) map[string]any {
	stepsOut, checksOut := map[string]any{}, map[string]any{}
	for _, addr := range st.Reads() {
		o, ok := r.rawOutput(addr)
		if !ok {
			continue
		}
		rel := strings.TrimPrefix(addr, st.Scope.Prefix)
		kind, name, _ := strings.Cut(rel, ".")
		if kind == "check" {
			checksOut[name] = o
		} else {
			stepsOut[name] = o
		}
	}
	return map[string]any{"output": out, "steps": stepsOut, "checks": checksOut, "var": r.varsOf(st.Scope)}
}

func (r *run) varsOf(s *plan.Scope) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.vars[s]; ok {
		return v
	}
	vars := map[string]any{}
	for k, v := range s.Vars() {
		vars[k] = FromCty(v)
	}
	r.vars[s] = vars
	return vars
}

// checkAssertions evaluates every assertion. The first failed error-severity
// assertion is the step's error; warnings are only reported.
func (r *run) checkAssertions(st *plan.Step, a *plan.Action, out any) ([]event.AssertResult, error) {
	if len(a.Asserts) == 0 {
		return nil, nil
	}
	env := r.assertEnv(st, out)
	results := make([]event.AssertResult, 0, len(a.Asserts))
	var firstErr error
	for _, as := range a.Asserts {
		res := event.AssertResult{That: as.That, Severity: string(as.Severity), Passed: true}
		v, err := expr.Run(as.Program, env)
		if err != nil {
			res.Passed, res.Error = false, r.opts.Redactor.String(err.Error())
		} else if b, ok := v.(bool); !ok || !b {
			res.Passed = false
		}
		if !res.Passed {
			for _, read := range as.Reads {
				val, err := expr.Run(read.Program, env)
				shown := Show(val, 0)
				if err != nil {
					shown = "(" + err.Error() + ")"
				}
				res.Values = append(res.Values, event.ReadValue{Expr: read.Expr, Value: r.opts.Redactor.Cut(shown, 300)})
			}
			res.Message = r.opts.Redactor.Cut(renderMessage(as.Msg, env), 64<<10) // every finding a message lists, in full
			if as.Severity == plan.SeverityError && firstErr == nil {
				firstErr = &AssertionError{Step: st.Addr, Result: res}
			}
		}
		results = append(results, res)
	}
	return results, firstErr
}

func renderMessage(parts []plan.MsgPart, env map[string]any) string {
	var b strings.Builder
	for _, p := range parts {
		if p.Program == nil {
			b.WriteString(p.Text)
			continue
		}
		v, err := expr.Run(p.Program, env)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "(%s: %v)", p.Text, err)
		default:
			if s, ok := v.(string); ok {
				b.WriteString(s)
			} else {
				b.WriteString(Show(v, 0)) // the whole message is redacted, then cut
			}
		}
	}
	return b.String()
}
