package pgkit_test

import (
	"context"
	"errors"
	"testing"

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
