package wait

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// WaitArgs are the arguments of wait.
//
// How long to keep polling is `max_wait`, not `timeout`: `timeout` is the
// step-level argument every step type shares. Both apply; max_wait gives a
// clear "gave up" error with the last probe output, a step timeout only
// cancels.
type WaitArgs struct {
	Probe    WaitProbe `hcl:"probe,block" doc:"The step type to run on every attempt: uses = \"sql\", \"http\", \"exec\"... and that type's arguments."`
	Until    string    `hcl:"until" doc:"An expr-lang condition on output (the probe's output); waiting ends when it is true, such as \"output.rows[0].lag == 0\"."`
	FailFast string    `hcl:"fail_fast,optional" doc:"An expr-lang condition on output; when true the step fails at once instead of waiting on, such as \"output.json.state == 'broken'\"."`
	Interval string    `hcl:"interval,optional" doc:"How long to pause between the end of one probe and the start of the next (default \"5s\")."`
	MaxWait  string    `hcl:"max_wait,optional" doc:"How long to keep polling before failing (default \"10m\"); a probe still running then is cancelled."`
}

// WaitProbe is a nested step invocation: the plan loader checks Rest
// against the arguments of the type named by Uses.
type WaitProbe struct {
	Uses string   `hcl:"uses" doc:"The probe's step type."`
	Rest hcl.Body `hcl:",remain"`
}

// WaitOutput is the output of wait.
type WaitOutput struct {
	Attempts  int     `json:"attempts" doc:"How many times the probe ran."`
	Seconds   float64 `json:"seconds" doc:"How long the wait took."`
	Last      any     `json:"last" doc:"The output of the last probe that succeeded (null if none did)."`
	LastError string  `json:"last_error" doc:"Why the last attempt was not a yes: the probe's error, or until's when it could not be evaluated; empty otherwise."`
}

const (
	defaultWaitInterval = 5 * time.Second
	defaultMaxWait      = 10 * time.Minute
)

// Type is read-only in itself: in a check, the loader requires its
// probe's type to be read-only too.
var Type = steptype.Def[WaitArgs, WaitOutput]{
	Summary:    "Runs a probe (sql, http, exec...) again and again until a condition on its output holds, or gives up.",
	IsReadOnly: true,
	Fn:         runWait,
	ArgChecks: map[string]func(string) error{
		"interval":  steptype.CheckDuration,
		"max_wait":  steptype.CheckDuration,
		"until":     func(s string) error { _, err := compileCondition(s); return err },
		"fail_fast": checkWaitCondition,
	},
}

func runWait(ctx context.Context, env *steptype.Env, a *WaitArgs) (*WaitOutput, error) {
	interval, err := waitDuration("interval", a.Interval, defaultWaitInterval)
	if err != nil {
		return nil, err
	}
	maxWait, err := waitDuration("max_wait", a.MaxWait, defaultMaxWait)
	if err != nil {
		return nil, err
	}
	until, err := compileWaitCondition("until", a.Until)
	if err != nil {
		return nil, err
	}
	var failFast *vm.Program
	if a.FailFast != "" {
		if failFast, err = compileWaitCondition("fail_fast", a.FailFast); err != nil {
			return nil, err
		}
	}
	if env == nil || env.RunNested == nil {
		return nil, errors.New("wait: this run cannot run probes (no RunNested)")
	}

	start := time.Now()
	deadline := start.Add(maxWait)
	out := &WaitOutput{}
	// A probe must not outlive max_wait: a hung query would otherwise hold
	// the step long after the user said to give up.
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var lastErr error // the last attempt's probe (or until) error: a cause when giving up
	for {
		out.Attempts++
		last, err := env.RunNested(pctx, a.Probe.Uses, a.Probe.Rest)
		out.Seconds = time.Since(start).Seconds()
		if ctx.Err() != nil {
			return out, out.fail(env, lastErr, ctx.Err(), "stopped after %s", plural.Of(out.Attempts, "attempt"))
		}
		var done, stop bool
		if err == nil {
			out.Last = last
			done, stop, err = judgeProbe(env, failFast, until, last)
		}
		// A probe cut off by max_wait only says it ran out of time; the
		// attempt before it says why the wait did not end. A dial cut off
		// by the deadline can return before pctx's own timer marks it done,
		// so the clock decides too.
		cutOff := err != nil && (pctx.Err() != nil || !time.Now().Before(deadline))
		if !cutOff || lastErr == nil {
			lastErr, out.LastError = err, ""
			if err != nil {
				out.LastError = err.Error()
			}
		}
		switch {
		case stop:
			return out, out.fail(env, nil, nil, "fail_fast (%s) is true after %s", a.FailFast, plural.Of(out.Attempts, "attempt"))
		case done:
			return out, nil
		case err != nil:
			// A failing probe is "not yet": the database may still be starting.
			env.Logf("attempt %d: not yet: %v", out.Attempts, err)
		default:
			env.Logf("attempt %d: not yet", out.Attempts)
		}
		// No time left for another probe after the pause: give up now
		// rather than sleep only to fail.
		if !time.Now().Add(interval).Before(deadline) {
			return out, out.fail(env, lastErr, nil, "gave up after %s (max_wait %s): until (%s) did not hold in %s",
				time.Since(start).Round(time.Millisecond), maxWait, a.Until, plural.Of(out.Attempts, "attempt"))
		}
		if err := steptype.Pause(ctx, interval); err != nil {
			return out, out.fail(env, lastErr, err, "stopped after %s", plural.Of(out.Attempts, "attempt"))
		}
	}
}

// judgeProbe evaluates the conditions on a probe's output. An until that cannot
// be evaluated (a probe with no rows yet) is "not yet", returned as err; a
// fail_fast that cannot be evaluated has not fired.
func judgeProbe(env *steptype.Env, failFast, until *vm.Program, output any) (done, stop bool, err error) {
	if failFast != nil {
		stop, err := evalWaitCondition(failFast, output)
		if err != nil {
			env.Logf("fail_fast could not be evaluated: %v", err)
		}
		if stop {
			return false, true, nil
		}
	}
	done, err = evalWaitCondition(until, output)
	if err != nil {
		return false, false, fmt.Errorf("until: %w", err)
	}
	return done, false, nil
}

// fail builds wait's error: what happened, the last output and the last
// attempt's error, keeping the causes (the context's error, the probe's) for
// errors.Is and errors.As.
func (o *WaitOutput) fail(env *steptype.Env, lastErr, ctxErr error, format string, args ...any) error {
	e := &waitError{msg: "wait: " + fmt.Sprintf(format, args...)}
	if ctxErr != nil {
		e.msg += ": " + ctxErr.Error()
		e.causes = append(e.causes, ctxErr)
	}
	if o.Last != nil {
		e.msg += "; last output: " + compactJSON(env, o.Last, 300)
	}
	if lastErr != nil {
		e.msg += "; last error: " + lastErr.Error()
		e.causes = append(e.causes, lastErr)
	}
	return e
}

type waitError struct {
	msg    string
	causes []error
}

func (e *waitError) Error() string   { return e.msg }
func (e *waitError) Unwrap() []error { return e.causes }

func waitDuration(name, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := steptype.ParseDuration(s, false)
	if err != nil {
		return 0, fmt.Errorf("wait: %s: %w", name, err)
	}
	return d, nil
}

// compileWaitCondition compiles an expr-lang condition on output before the
// first probe, so that a typo fails at once rather than after max_wait.
func compileWaitCondition(name, src string) (*vm.Program, error) {
	prog, err := compileCondition(src)
	if err != nil {
		return nil, fmt.Errorf("wait: %s: %w", name, err)
	}
	return prog, nil
}

func compileCondition(src string) (*vm.Program, error) {
	prog, err := expr.Compile(src, expr.Env(map[string]any{"output": map[string]any{}}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("%q is not an expr-lang condition on output: %w", src, err)
	}
	return prog, nil
}

// checkWaitCondition accepts a condition on output, or "" (fail_fast's default).
func checkWaitCondition(src string) error {
	if src == "" {
		return nil
	}
	_, err := compileCondition(src)
	return err
}

func evalWaitCondition(prog *vm.Program, output any) (bool, error) {
	v, err := expr.Run(prog, map[string]any{"output": output})
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("the condition gave %T, not true or false", v)
	}
	return b, nil
}

// compactJSON renders a value compactly as JSON for messages, cut at limit bytes.
func compactJSON(env *steptype.Env, v any, limit int) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(v)
	}
	return env.Cut(s, limit)
}
