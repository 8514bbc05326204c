package exec_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/exec"
	"github.com/planrun/planrun/steps/steptype"
)

// runInBackground runs exec with a shell script and hands back its result.
func runInBackground(ctx context.Context, t *testing.T, script string) <-chan result {
	done := make(chan result, 1)
	env := steptest.Env(t)
	go func() {
		out, err := exec.Type.Run(ctx, env, &exec.ExecArgs{Shell: script})
		o, _ := out.(*exec.ExecOutput)
		done <- result{o, err}
	}()
	return done
}

type result struct {
	out *exec.ExecOutput
	err error
}

// A command that exited 0 did its work, even when the run is cancelled
// before exec has collected its output: recording it as cancelled would
// make a resume run it a second time.
func TestExitedCommandSucceedsThoughCancelledAfter(t *testing.T) {
	for _, code := range []int{0, 3} {
		l := steptest.NewLinger(t)
		ctx, cancel := context.WithCancel(steptest.Ctx(t))
		done := runInBackground(ctx, t, l.Script("did the work", code))
		l.Exited(t) // exited and reaped; exec is still reading its output
		cancel()
		l.Release(t)
		res := <-done
		switch code {
		case 0:
			if res.err != nil {
				t.Fatalf("exit 0, then cancelled: want success, got %v", res.err)
			}
		default:
			if res.err == nil || !strings.Contains(res.err.Error(), "exit code 3") || errors.Is(res.err, context.Canceled) {
				t.Fatalf("exit 3, then cancelled: the exit code is the error, got %v", res.err)
			}
		}
		if res.out == nil || res.out.ExitCode != code || !strings.Contains(res.out.Stdout, "did the work") {
			t.Fatalf("exit %d: output %+v", code, res.out)
		}
	}
}

// A command still running when the context is cancelled is killed, and
// the step says it was cancelled.
func TestCancelledCommandIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(steptest.Ctx(t))
	done := runInBackground(ctx, t, "echo started; sleep 30; echo finished")
	cancel()
	res := <-done
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("want a cancellation, got %v", res.err)
	}
	if res.out != nil && strings.Contains(res.out.Stdout, "finished") {
		t.Fatalf("the command should have been killed: %q", res.out.Stdout)
	}
}

// A command that cannot start changed nothing: a refusal. One that ran and
// failed is not.
func TestExecRefusalOnlyWhenNotStarted(t *testing.T) {
	env := steptest.Env(t)
	if _, err := exec.Type.Run(context.Background(), env, &exec.ExecArgs{Command: []string{"/nonexistent/planrun-no-such-command"}}); err == nil || !steptype.IsRefusal(err) {
		t.Errorf("not started: %v", err)
	}
	if _, err := exec.Type.Run(context.Background(), env, &exec.ExecArgs{Shell: "exit 3"}); err == nil || steptype.IsRefusal(err) {
		t.Errorf("ran and failed: %v", err)
	}
}
