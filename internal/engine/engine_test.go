package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps/steptype"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// fakeArgs and fakeOut are the arguments and output of the fake step types.
type fakeArgs struct {
	Name  string `hcl:"name,optional"`
	Value string `hcl:"value,optional"`
	Fails int    `hcl:"fails,optional"` // fail this many attempts first
}

type fakeOut struct {
	Value string `json:"value"`
}

// recorder collects what the fake types saw, safely across goroutines.
type recorder struct {
	mu        sync.Mutex
	events    []string
	attempts  map[string]int
	running   atomic.Int32
	maxActive atomic.Int32
	cancelled atomic.Int32
	started   chan string
}

func newRecorder() *recorder {
	return &recorder{attempts: map[string]int{}, started: make(chan string, 100)}
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) types() *steps.Registry {
	def := func(readOnly bool, fn func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error)) steptype.Type {
		return steptype.Def[fakeArgs, fakeOut]{Summary: "fake", IsReadOnly: readOnly, Fn: fn}
	}
	return steps.New(map[string]steptype.Type{
		"record": def(true, func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			r.add("run " + a.Name)
			return &fakeOut{Value: a.Value}, nil
		}),
		"slow": def(true, func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			n := r.running.Add(1)
			defer r.running.Add(-1)
			for {
				cur := r.maxActive.Load()
				if n <= cur || r.maxActive.CompareAndSwap(cur, n) {
					break
				}
			}
			r.add("start " + a.Name)
			select {
			case <-time.After(15 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			r.add("end " + a.Name)
			return &fakeOut{Value: a.Name}, nil
		}),
		"fail": def(true, func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			r.add("run " + a.Name)
			return nil, fmt.Errorf("%s broke", a.Name)
		}),
		"flaky": def(true, func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			r.mu.Lock()
			r.attempts[a.Name]++
			n := r.attempts[a.Name]
			r.mu.Unlock()
			if n <= a.Fails {
				return nil, fmt.Errorf("attempt %d failed", n)
			}
			return &fakeOut{Value: fmt.Sprint(n)}, nil
		}),
		"block": def(true, func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
			r.add("run " + a.Name)
			r.started <- a.Name
			<-ctx.Done()
			r.cancelled.Add(1)
			return nil, ctx.Err()
		}),
	})
}

func load(t testing.TB, reg *steps.Registry, src string, vars ...string) *plan.Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := plan.Load(path, plan.Options{Types: reg, Vars: vars, Environ: []string{}})
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	return p
}

func run(t testing.TB, ctx context.Context, p *plan.Plan, reg *steps.Registry, opts engine.Options) (*engine.Result, []event.Event) {
	t.Helper()
	var mu sync.Mutex
	var events []event.Event
	opts.Registry = reg
	opts.Events = func(ev event.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}
	res := engine.Run(ctx, p, opts)
	return res, events
}

func TestParallelismIsBounded(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, "step \"s%d\" {\n  uses = \"slow\"\n  name = \"s%d\"\n}\n", i, i)
	}
	p := load(t, reg, b.String())
	res, _ := run(t, context.Background(), p, reg, engine.Options{Parallelism: 3})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if got := rec.maxActive.Load(); got != 3 {
		t.Fatalf("at most 3 steps should run at once, and 12 independent ones fill 3 slots; saw %d", got)
	}
}

func TestDependencyOrder(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	// a -> (b, c) -> d: b and c wait for a; d waits for both.
	p := load(t, reg, `
step "a" {
  uses = "slow"
  name = "a"
}
step "b" {
  uses = "slow"
  name = "b-${step.a.output.value}"
}
step "c" {
  uses       = "slow"
  name       = "c"
  depends_on = [step.a]
}
step "d" {
  uses = "slow"
  name = "d"
  assert { that = "steps.b.value == 'b-a' && steps.c.value == 'c'" }
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{Parallelism: 4})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	pos := map[string]int{}
	for i, e := range rec.list() {
		pos[e] = i
	}
	for _, edge := range [][2]string{{"end a", "start b-a"}, {"end a", "start c"}, {"end b-a", "start d"}, {"end c", "start d"}} {
		if pos[edge[0]] > pos[edge[1]] {
			t.Errorf("%q came after %q: %v", edge[0], edge[1], rec.list())
		}
	}
	if got := p.Step("step.d").Deps; strings.Join(got, ",") != "step.b,step.c" {
		t.Errorf("the assertion's reads should be edges; deps of d = %v", got)
	}
}

const rollbackPlan = `
plan "p" { on_failure = "%s" }
step "a" {
  uses = "record"
  name = "a"
  rollback {
    uses = "record"
    name = "undo a"
  }
}
step "b" {
  uses = "record"
  name = "b"
  depends_on = [step.a]
  rollback {
    uses = "%s"
    name = "undo b"
  }
}
step "c" {
  uses = "fail"
  name = "c"
  depends_on = [step.b]
  rollback {
    uses = "record"
    name = "undo c"
  }
}
step "d" {
  uses = "record"
  name = "d"
  depends_on = [step.c]
  rollback {
    uses = "record"
    name = "undo d"
  }
}
`

func TestFailureRollsBackInReverseOrder(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, fmt.Sprintf(rollbackPlan, "rollback", "record"))
	res, _ := run(t, context.Background(), p, reg, engine.Options{Parallelism: 2})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	want := "run a,run b,run c,run undo c,run undo b,run undo a"
	if got := strings.Join(rec.list(), ","); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	if res.Steps["step.d"].Status != event.StatusNotRun {
		t.Errorf("d should not run after c failed: %s", res.Steps["step.d"].Status)
	}
	if res.Steps["step.b"].Rollback.Status != event.StatusRolledBack {
		t.Errorf("b rollback: %+v", res.Steps["step.b"].Rollback)
	}
	if !strings.Contains(res.Err.Error(), "step.c: c broke") {
		t.Errorf("error should name the step and cause: %v", res.Err)
	}
}

func TestFailingRollbackKeepsFirstError(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, fmt.Sprintf(rollbackPlan, "rollback", "fail"))
	res, events := run(t, context.Background(), p, reg, engine.Options{Parallelism: 1})
	if !res.RollbackFailed {
		t.Fatal("RollbackFailed should be set")
	}
	if !strings.Contains(res.Err.Error(), "c broke") || strings.Contains(res.Err.Error(), "undo b") {
		t.Fatalf("the first error must stay the run's error: %v", res.Err)
	}
	if got := strings.Join(rec.list(), ","); !strings.HasSuffix(got, "run undo b,run undo a") {
		t.Fatalf("a's rollback must still run after b's failed: %s", got)
	}
	var rbErr string
	for _, ev := range events {
		if ev.Type == event.RollbackFinished && ev.Step == "step.b" {
			rbErr = ev.Error
		}
	}
	if !strings.Contains(rbErr, "undo b broke") {
		t.Fatalf("the rollback failure must be reported: %q", rbErr)
	}
}

func TestOnFailureStopRunsNoRollback(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, fmt.Sprintf(rollbackPlan, "stop", "record"))
	res, _ := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	if got := strings.Join(rec.list(), ","); got != "run a,run b,run c" {
		t.Fatalf("no rollback expected: %s", got)
	}
}

func TestCancellationReachesRunningSteps(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses = "block"
  name = "a"
  rollback {
    uses = "record"
    name = "undo a"
  }
}
step "b" {
  uses = "block"
  name = "b"
}
step "after" {
  uses = "record"
  name = "after"
  depends_on = [step.a, step.b]
}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-rec.started
		<-rec.started
		cancel()
	}()
	res, _ := run(t, ctx, p, reg, engine.Options{Parallelism: 4})
	if res.Status != event.StatusInterrupted {
		t.Fatalf("status %s", res.Status)
	}
	if rec.cancelled.Load() != 2 {
		t.Fatalf("both running steps should see their context cancelled, saw %d", rec.cancelled.Load())
	}
	for _, a := range []string{"step.a", "step.b"} {
		if s := res.Steps[a].Status; s != event.StatusCancelled {
			t.Errorf("%s: %s", a, s)
		}
	}
	if res.Steps["step.after"].Status != event.StatusNotRun {
		t.Errorf("after: %s", res.Steps["step.after"].Status)
	}
	if got := rec.list(); got[len(got)-1] != "run undo a" {
		t.Errorf("a partly ran, so its rollback runs: %v", got)
	}
}

func TestSecondInterruptStopsRollbacks(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses = "record"
  name = "a"
  rollback {
    uses = "block"
    name = "undo a"
  }
}
step "b" {
  uses = "block"
  name = "b"
  depends_on = [step.a]
}
`)
	ctx, cancel := context.WithCancel(context.Background())
	rbCtx, rbCancel := context.WithCancel(context.Background())
	defer cancel()
	defer rbCancel()
	go func() {
		<-rec.started // b runs: first interrupt
		cancel()
		<-rec.started // a's rollback runs: second interrupt
		rbCancel()
	}()
	res, _ := run(t, ctx, p, reg, engine.Options{RollbackContext: rbCtx})
	if !res.RollbackInterrupted {
		t.Fatal("the second interrupt should be recorded")
	}
	if res.Steps["step.a"].Rollback.Status != event.StatusCancelled {
		t.Fatalf("a's rollback: %+v", res.Steps["step.a"].Rollback)
	}
}

func TestWhenSkipsAndDependentsStillRun(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
variable "app" { default = "" }
step "maintenance" {
  uses = "record"
  name = "maintenance"
  when = var.app != ""
}
step "dump" {
  uses       = "record"
  name       = "dump"
  depends_on = [step.maintenance]
}
`)
	res, events := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if res.Steps["step.maintenance"].Status != event.StatusSkipped {
		t.Fatalf("maintenance: %s", res.Steps["step.maintenance"].Status)
	}
	if got := strings.Join(rec.list(), ","); got != "run dump" {
		t.Fatalf("ran: %s", got)
	}
	said := false
	for _, ev := range events {
		if ev.Step == "step.maintenance" && ev.Status == event.StatusSkipped && strings.Contains(ev.Message, "when") {
			said = true
		}
	}
	if !said {
		t.Fatal("a skipped step says why")
	}
}

func TestFailedAssertionShowsTheValuesItRead(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses  = "record"
  value = "west"
}
step "b" {
  uses  = "record"
  value = "east"
  assert {
    that     = "output.value == steps.a.value"
    message  = "b is in {{ output.value }}, a in {{ steps.a.value }}"
  }
  assert {
    that     = "output.value == 'north'"
    severity = "warn"
  }
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	var ae *engine.AssertionError
	if !errors.As(res.Err, &ae) {
		t.Fatalf("want an AssertionError, got %T: %v", res.Err, res.Err)
	}
	msg := res.Err.Error()
	for _, want := range []string{"output.value == steps.a.value", "b is in east, a in west", `output.value = "east"`, `steps.a.value = "west"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	asserts := res.Steps["step.b"].Assertions
	if len(asserts) != 2 || asserts[1].Passed || asserts[1].Severity != "warn" {
		t.Fatalf("the warning should be recorded too: %+v", asserts)
	}
}

func TestWarningAssertionDoesNotFail(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses  = "record"
  value = "x"
  assert {
    that     = "output.value == 'y'"
    severity = "warn"
  }
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if res.Steps["step.a"].Assertions[0].Passed {
		t.Fatal("the warning should be recorded as not passed")
	}
}

func TestRetryAndTimeout(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "flaky" {
  uses  = "flaky"
  name  = "flaky"
  fails = 2
  retry {
    attempts = 3
    backoff  = "1ms"
  }
}
step "hangs" {
  uses    = "block"
  name    = "hangs"
  timeout = "30ms"
  depends_on = [step.flaky]
}
`)
	res, events := run(t, context.Background(), p, reg, engine.Options{})
	if sr := res.Steps["step.flaky"]; sr.Status != event.StatusSucceeded || sr.Attempts != 3 {
		t.Fatalf("flaky: %s after %d attempts", sr.Status, sr.Attempts)
	}
	retries := 0
	for _, ev := range events {
		if ev.Type == event.StepRetrying {
			retries++
		}
	}
	if retries != 2 {
		t.Fatalf("each failed attempt is reported: %d", retries)
	}
	if sr := res.Steps["step.hangs"]; sr.Status != event.StatusFailed || !strings.Contains(sr.Err.Error(), "timed out after 30ms") {
		t.Fatalf("hangs: %s %v", sr.Status, sr.Err)
	}
}

func TestTargetRunsOnlyWhatItNeeds(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses = "record"
  name = "a"
}
step "b" {
  uses = "record"
  name = "b"
  depends_on = [step.a]
}
step "other" {
  uses = "record"
  name = "other"
}
`)
	keep := p.Graph.Ancestors("step.b")
	res, _ := run(t, context.Background(), p, reg, engine.Options{Select: func(st *plan.Step) bool { return keep[st.Addr] }})
	if res.Status != event.StatusSucceeded {
		t.Fatal(res.Err)
	}
	if got := strings.Join(rec.list(), ","); got != "run a,run b" {
		t.Fatalf("ran %s", got)
	}
}

func TestSecretsNeverReachEvents(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
variable "token" {
  type      = string
  sensitive = true
}
step "leak" {
  uses  = "record"
  value = "Bearer ${var.token}"
  assert { that = "output.value == 'nope'" }
}
`, "token=hunter2-secret")
	res, events := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	for _, ev := range events {
		if s := fmt.Sprintf("%+v", ev); strings.Contains(s, "hunter2-secret") {
			t.Fatalf("secret in event: %s", s)
		}
	}
	// The run itself saw the real value.
	if got := res.Steps["step.leak"].Err; got == nil || !strings.Contains(fmt.Sprint(res.Steps["step.leak"].Assertions), "(sensitive)") {
		t.Fatalf("the assertion values should show (sensitive): %+v", res.Steps["step.leak"].Assertions)
	}
}

func TestReusedOutputsFeedReferences(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
step "a" {
  uses  = "record"
  name  = "a"
  value = "first run"
}
step "b" {
  uses = "record"
  name = "b ${step.a.output.value}"
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{Reused: map[string]any{"step.a": map[string]any{"value": "recorded"}}})
	if res.Status != event.StatusSucceeded {
		t.Fatal(res.Err)
	}
	if got := strings.Join(rec.list(), ","); got != "run b recorded" {
		t.Fatalf("a must not run again and its recorded output must feed b: %s", got)
	}
	if res.Steps["step.a"].Status != event.StatusReused {
		t.Fatalf("a: %s", res.Steps["step.a"].Status)
	}
}

func TestDowntimeIsMeasured(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
plan "p" {
  downtime {
    from = step.on
    to   = step.off
  }
}
step "on" {
  uses = "slow"
  name = "on"
}
step "work" {
  uses = "slow"
  name = "work"
  depends_on = [step.on]
}
step "off" {
  uses = "slow"
  name = "off"
  depends_on = [step.work]
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{})
	if res.Downtime == nil || *res.Downtime < 45*time.Millisecond {
		t.Fatalf("three 15ms steps in the window: %v", res.Downtime)
	}
}

// A run that fails inside the window has its downtime measured too: to the
// end of the rollback that closed it.
func TestDowntimeIsClosedByTheRollback(t *testing.T) {
	rec := newRecorder()
	reg := rec.types()
	p := load(t, reg, `
plan "p" {
  on_failure = "rollback"
  downtime {
    from = step.on
    to   = step.off
  }
}
step "on" {
  uses = "slow"
  name = "on"
  rollback {
    uses = "slow"
    name = "on-undo"
  }
}
step "work" {
  uses = "fail"
  name = "work"
  depends_on = [step.on]
}
step "off" {
  uses = "slow"
  name = "off"
  depends_on = [step.work]
}
`)
	res, _ := run(t, context.Background(), p, reg, engine.Options{})
	if res.Status != event.StatusFailed || res.Steps["step.on"].Rollback == nil || res.Steps["step.on"].Rollback.Status != event.StatusRolledBack {
		t.Fatalf("status %s, rollback %+v", res.Status, res.Steps["step.on"].Rollback)
	}
	if res.Downtime == nil || *res.Downtime < 30*time.Millisecond || res.DowntimeEnd != "the rollback of step.on" {
		t.Fatalf("two 15ms steps in the window, closed by the rollback: %v, %q", res.Downtime, res.DowntimeEnd)
	}
}
