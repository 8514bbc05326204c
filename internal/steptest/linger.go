package steptest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Linger stages a command that has exited while its caller is still in
// cmd.Wait: the script exits at once, and a child it leaves behind holds
// its stdout and stderr open until Release, so Wait keeps copying. A test
// cancels the context in that gap (after Exited) to check that a command
// which ran to its end is not called cancelled.
type Linger struct {
	dir string
}

// NewLinger makes a Linger whose leftover child is released when the test
// ends at the latest.
func NewLinger(t *testing.T) *Linger {
	l := &Linger{dir: t.TempDir()}
	t.Cleanup(func() { l.Release(t) })
	return l
}

// Script is a /bin/sh script that prints marker, leaves the child behind
// and exits with code.
func (l *Linger) Script(marker string, code int) string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	pid, release := q(filepath.Join(l.dir, "pid")), q(filepath.Join(l.dir, "release"))
	return "echo " + q(marker) + "; (while [ ! -e " + release + " ]; do sleep 0.01; done) & " +
		"echo $$ > " + pid + ".tmp && mv " + pid + ".tmp " + pid + "; exit " + strconv.Itoa(code)
}

// Exited waits until the script's shell has exited and been reaped: its
// caller's Wait has its exit status and is waiting for the output only.
func (l *Linger) Exited(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		raw, err := os.ReadFile(filepath.Join(l.dir, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("linger: pid file: %v", err)
		}
		// A zombie still takes signal 0; a reaped process is gone.
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Fatal("linger: the script's shell did not exit and get reaped in 30s")
}

// Release lets the leftover child end, closing the output.
func (l *Linger) Release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(l.dir, "release"), nil, 0o644); err != nil {
		t.Fatalf("linger: %v", err)
	}
}
