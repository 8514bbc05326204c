package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/hashicorp/hcl/v2"
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
	LastError string  `json:"last_error" doc:"The error of the last probe if it failed, else empty."`
}

const (
	defaultWaitInterval = 5 * time.Second
	defaultMaxWait      = 10 * time.Minute
)

var waitType = Def[WaitArgs, WaitOutput]{
	Summary: "Runs a probe (sql, http, exec...) again and again until a condition on its output holds, or gives up.",
	Fn:      runWait,
}

func runWait(ctx context.Context, env *Env, a *WaitArgs) (*WaitOutput, error) {
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
	var lastErr error // the last attempt's probe error (or until error): the cause when giving up
	for {
		out.Attempts++
		last, probeErr := env.RunNested(pctx, a.Probe.Uses, a.Probe.Rest)
		out.Seconds = time.Since(start).Seconds()
		if ctx.Err() != nil {
			return out, out.fail(lastErr, ctx.Err(), "stopped after %d attempts", out.Attempts)
		}
		lastErr = probeErr
		if probeErr != nil {
			env.Logf("attempt %d: probe %s failed (not yet): %v", out.Attempts, a.Probe.Uses, probeErr)
		} else {
			out.Last = last
			if failFast != nil {
				// A fail_fast that cannot be evaluated (no rows yet) has not fired.
				stop, err := evalWaitCondition(failFast, last)
				if err != nil {
					env.Logf("attempt %d: fail_fast could not be evaluated: %v", out.Attempts, err)
				}
				if stop {
					out.LastError = ""
					return out, out.fail(nil, nil, "fail_fast (%s) is true after %d attempts", a.FailFast, out.Attempts)
				}
			}
			done, err := evalWaitCondition(until, last)
			switch {
			case err != nil:
				// Often a probe that has nothing to show yet (no rows): not yet.
				lastErr = fmt.Errorf("until: %w", err)
				env.Logf("attempt %d: until could not be evaluated (not yet): %v", out.Attempts, err)
			case done:
				out.LastError = ""
				return out, nil
			default:
				env.Logf("attempt %d: not yet", out.Attempts)
			}
		}
		out.LastError = ""
		if lastErr != nil {
			out.LastError = lastErr.Error()
		}
		// No time left for another probe after the pause: give up now
		// rather than sleep only to fail.
		if !time.Now().Add(interval).Before(deadline) {
			return out, out.fail(lastErr, nil, "gave up after %s (max_wait %s): until (%s) did not hold in %d attempts",
				time.Since(start).Round(time.Millisecond), maxWait, a.Until, out.Attempts)
		}
		if err := pauseCtx(ctx, interval); err != nil {
			return out, out.fail(lastErr, err, "stopped after %d attempts", out.Attempts)
		}
	}
}

// fail builds wait's error: what happened, the last output and the last
// probe error, keeping the causes (the context's error, the probe's) for
// errors.Is and errors.As.
func (o *WaitOutput) fail(lastErr, ctxErr error, format string, args ...any) error {
	e := &waitError{msg: "wait: " + fmt.Sprintf(format, args...)}
	if ctxErr != nil {
		e.msg += ": " + ctxErr.Error()
		e.causes = append(e.causes, ctxErr)
	}
	if o.Last != nil {
		e.msg += "; last output: " + compactJSON(o.Last, 300)
	}
	if lastErr != nil {
		e.msg += "; last probe error: " + lastErr.Error()
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
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("wait: %s is a duration such as \"5s\", not %q", name, s)
	}
	return d, nil
}

// compileWaitCondition compiles an expr-lang condition on output before the
// first probe, so that a typo fails at once rather than after max_wait.
func compileWaitCondition(name, src string) (*vm.Program, error) {
	prog, err := expr.Compile(src, expr.Env(map[string]any{"output": map[string]any{}}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("wait: %s is not a valid condition: %w", name, err)
	}
	return prog, nil
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

// pauseCtx pauses for d or until ctx is done.
func pauseCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// compactJSON renders a value compactly as JSON for messages, cut at limit bytes.
func compactJSON(v any, limit int) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(v)
	}
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
