package pgkit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// A pg_dump or pg_restore that exited 0 finished its work, even when the
// run is cancelled before RunClient has read the rest of its stderr.
func TestRunClientExitedBeforeCancelSucceeds(t *testing.T) {
	l := steptest.NewLinger(t)
	ctx, cancel := context.WithCancel(steptest.Ctx(t))
	done := make(chan error, 1)
	go func() { done <- pgkit.RunClient(ctx, "/bin/sh", []string{"-c", l.Script("dumped", 0)}, nil, nil) }()
	l.Exited(t)
	cancel()
	l.Release(t)
	if err := <-done; err != nil {
		t.Fatalf("exit 0, then cancelled: want success, got %v", err)
	}
}

func TestRunClientStoppedWhileRunning(t *testing.T) {
	ctx, cancel := context.WithCancel(steptest.Ctx(t))
	cancel()
	err := pgkit.RunClient(ctx, "/bin/sh", []string{"-c", "sleep 30"}, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want a cancellation, got %v", err)
	}
}

// firstWrite records when a tool first wrote to stderr.
type firstWrite struct {
	mu sync.Mutex
	at time.Time
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() {
		w.at = time.Now()
	}
	return len(p), nil
}

func (w *firstWrite) when() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at
}

// The grace a tool gets between SIGTERM and SIGKILL comes out of a step's
// timeout: a tool that ignores SIGTERM (as pg_restore does while its
// cancel request hangs on a server that went away) is killed by the
// deadline, not ClientGrace after it.
func TestRunClientGraceWithinDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(steptest.Ctx(t), timeout)
	defer cancel()
	start := time.Now()
	err := pgkit.RunClient(ctx, "/bin/sh", []string{"-c", "trap '' TERM; exec sleep 30"}, nil, nil)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline, got %v", err)
	}
	// Generous for a loaded machine, and far below timeout + ClientGrace.
	if took < timeout || took > timeout+1500*time.Millisecond {
		t.Fatalf("returned after %s, want about %s (not %s)", took, timeout, timeout+pgkit.ClientGrace)
	}
	t.Logf("returned after %s", took)
}

// A tool that does stop on SIGTERM is asked to before the deadline, a
// quarter of the time left (here 0.5 s) ahead of it.
func TestRunClientSignalledBeforeDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(steptest.Ctx(t), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	w := &firstWrite{}
	err := pgkit.RunClient(ctx, "/bin/sh", []string{"-c", "trap 'echo terminated >&2; exit 1' TERM; sleep 30 & wait"}, nil, w)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline, got %v", err)
	}
	at := w.when()
	if at.IsZero() || !at.Before(deadline) {
		t.Fatalf("SIGTERM reached the tool at %v, want before the deadline %v", at, deadline)
	}
	if early := deadline.Sub(at); early > time.Second {
		t.Errorf("SIGTERM %s before the deadline, want about 0.5s", early)
	}
	if time.Now().Before(deadline) {
		t.Errorf("returned before the deadline: the step would not report its timeout")
	}
}
