package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/steptype"
)

// resumePlan has two steps that completed in the earlier run (a, then b)
// and one that fails now.
const resumePlan = `
step "a" {
  uses = "record"
  name = "a"
  rollback {
    uses = "record"
    name = "undo a"
  }
}
step "b" {
  uses       = "record"
  name       = "b"
  depends_on = [step.a]
  rollback {
    uses = "record"
    name = "undo b"
  }
}
step "c" {
  uses       = "fail"
  name       = "c"
  depends_on = [step.b]
  rollback {
    uses = "record"
    name = "undo c"
  }
}
`

func TestFailedResumeRollsBackReusedSteps(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, resumePlan)
	reused := map[string]any{"step.a": map[string]any{"value": ""}, "step.b": map[string]any{"value": ""}}
	res, events := run(t, context.Background(), p, reg, engine.Options{Reused: reused, Resumed: true})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	want := "run c,run undo c,run undo b,run undo a"
	if got := strings.Join(rec.list(), ","); got != want {
		t.Fatalf("the earlier run's work is undone too, after this run's:\n got %s\nwant %s", got, want)
	}
	for _, addr := range []string{"step.a", "step.b"} {
		if rb := res.Steps[addr].Rollback; rb == nil || rb.Status != event.StatusRolledBack {
			t.Errorf("%s: rollback %+v", addr, rb)
		}
	}
	notes := map[string]string{}
	for _, ev := range events {
		if ev.Type == event.RollbackFinished {
			notes[ev.Step] = ev.Message
		}
	}
	if !strings.Contains(notes["step.a"], "earlier run") || notes["step.c"] != "" {
		t.Errorf("the events say which rollbacks undo the earlier run's work: %q", notes)
	}
}

func TestFailedResumeRollsBackInTheEarlierOrder(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "x" {
  uses = "record"
  name = "x"
  rollback {
    uses = "record"
    name = "undo x"
  }
}
step "y" {
  uses = "record"
  name = "y"
  rollback {
    uses = "record"
    name = "undo y"
  }
}
step "skipped" {
  uses = "record"
  name = "skipped"
  when = false
  rollback {
    uses = "record"
    name = "undo skipped"
  }
}
step "z" {
  uses       = "fail"
  name       = "z"
  depends_on = [step.x, step.y, step.skipped]
}
`)
	reused := map[string]any{"step.x": map[string]any{"value": ""}, "step.y": map[string]any{"value": ""}, "step.skipped": nil}
	// The earlier run finished y, then x (newest first here); it skipped
	// "skipped", so that one stands for nothing and is not listed.
	res, _ := run(t, context.Background(), p, reg, engine.Options{Reused: reused, Earlier: []string{"step.x", "step.y"}})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if got, want := strings.Join(rec.list(), ","), "run z,run undo x,run undo y"; got != want {
		t.Fatalf("rollbacks:\n got %s\nwant %s", got, want)
	}
}

// panicTypes adds a type that panics, as a buggy step type might.
func panicTypes(rec *recorder) *steps.Registry {
	return rec.types().With(map[string]steptype.Type{
		"panic": steptype.Def[fakeArgs, fakeOut]{Summary: "panics", IsReadOnly: true, Fn: func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			rec.add("run " + a.Name)
			var m map[string]int
			m[a.Name]++ // assignment to entry in nil map
			return &fakeOut{}, nil
		}},
	})
}

func TestPanickingStepFailsAndRollsBack(t *testing.T) {
	rec := newRecorder()
	reg := panicTypes(rec)
	p := load(t, reg, `
step "a" {
  uses = "record"
  name = "a"
  rollback {
    uses = "record"
    name = "undo a"
  }
}
step "b" {
  uses       = "panic"
  name       = "b"
  depends_on = [step.a]
  retry {
    attempts = 3
    backoff  = "1ms"
  }
}
`)
	res, events := run(t, context.Background(), p, reg, engine.Options{Parallelism: 2})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if got, want := strings.Join(rec.list(), ","), "run a,run b,run undo a"; got != want {
		t.Fatalf("a panic is one failed attempt, then the rollbacks:\n got %s\nwant %s", got, want)
	}
	sr := res.Steps["step.b"]
	if sr.Status != event.StatusFailed || !strings.Contains(sr.Err.Error(), "step.b: panicked: assignment to entry in nil map") {
		t.Fatalf("b: %s %v", sr.Status, sr.Err)
	}
	var finished, stepErr, stack string
	for _, ev := range events {
		switch {
		case ev.Type == event.RunFinished:
			finished = string(ev.Status)
		case ev.Type == event.StepFinished && ev.Step == "step.b":
			stepErr, stack = ev.Error, ev.Stack
		}
	}
	if finished != string(event.StatusFailed) {
		t.Fatalf("run_finished: %q", finished)
	}
	// The stack names where it panicked, for whoever reads the record;
	// the error the terminal shows is one line.
	if !strings.Contains(stepErr, "panicked") || strings.Contains(stepErr, "\n") || !strings.Contains(stack, "goroutine ") || !strings.Contains(stack, "crash_test.go") {
		t.Fatalf("step_finished should carry the stack apart from the error:\nerror: %s\nstack: %s", stepErr, stack)
	}
}

func TestPanickingRollbackFailsAndTheRestRunOn(t *testing.T) {
	rec := newRecorder()
	reg := panicTypes(rec)
	p := load(t, reg, fmt.Sprintf(rollbackPlan, "rollback", "panic"))
	res, events := run(t, context.Background(), p, reg, engine.Options{Parallelism: 1})
	if !res.RollbackFailed || res.Steps["step.b"].Rollback.Status != event.StatusFailed {
		t.Fatalf("b's rollback panicked: %+v", res.Steps["step.b"].Rollback)
	}
	if got := strings.Join(rec.list(), ","); !strings.HasSuffix(got, "run undo b,run undo a") {
		t.Fatalf("a's rollback still runs: %s", got)
	}
	for _, ev := range events {
		if ev.Type == event.RollbackFinished && ev.Step == "step.b" && (!strings.Contains(ev.Stack, "goroutine ") || strings.Contains(ev.Error, "goroutine ")) {
			t.Fatalf("rollback_finished should carry the stack apart from the error: %q / %q", ev.Error, ev.Stack)
		}
	}
}

// A step whose work finished as the run was being interrupted succeeded:
// recorded so, a resume reuses it instead of running it again.
func TestStepDoneAsTheRunIsCancelledSucceeded(t *testing.T) {
	rec := newRecorder()
	reg := rec.types().With(map[string]steptype.Type{
		"finishes": steptype.Def[fakeArgs, fakeOut]{Summary: "finishes", IsReadOnly: true, Fn: func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			rec.started <- a.Name
			<-ctx.Done()
			return &fakeOut{Value: "done"}, nil // it was past the point of stopping
		}},
	})
	p := load(t, reg, `
plan "p" { on_failure = "stop" }
step "a" {
  uses = "finishes"
  name = "a"
}
step "after" {
  uses       = "record"
  name       = "after"
  depends_on = [step.a]
}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-rec.started
		cancel()
	}()
	res, events := run(t, ctx, p, reg, engine.Options{})
	if res.Status != event.StatusInterrupted {
		t.Fatalf("status %s", res.Status)
	}
	if sr := res.Steps["step.a"]; sr.Status != event.StatusSucceeded || sr.Err != nil {
		t.Fatalf("a: %s %v", sr.Status, sr.Err)
	}
	for _, ev := range events {
		if ev.Type == event.StepFinished && ev.Step == "step.a" && ev.Status != event.StatusSucceeded {
			t.Fatalf("step_finished: %s", ev.Status)
		}
	}
	if res.Steps["step.after"].Status != event.StatusNotRun {
		t.Fatalf("nothing starts after the interrupt: %s", res.Steps["step.after"].Status)
	}
}
