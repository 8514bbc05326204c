package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
)

func lockedBy(t *testing.T, err error) Holder {
	t.Helper()
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("want a *LockedError, got %v", err)
	}
	return le.Holder
}

// TestFileLockOutlivesItsLockFile: removing DIR/PLAN/lock (a `git clean
// -fdx`) takes nothing from the holder: the plan's directory is what is
// locked, and the holder is still named (from /proc/locks).
func TestFileLockOutlivesItsLockFile(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: filepath.Join(t.TempDir(), ".planrun")}
	lease, _, err := s.Lock(ctx, "p", Me("r1"))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if err := os.Remove(filepath.Join(s.Dir, "p", "lock")); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Lock(ctx, "p", Me("r2"))
	if h := lockedBy(t, err); h.PID != os.Getpid() {
		t.Fatalf("holder %+v, want pid %d", h, os.Getpid())
	}
	if err := lease.Check(); err != nil {
		t.Fatalf("the directory is still in place: %v", err)
	}
}

// TestFileLockLostWhenItsDirectoryGoes: when the whole store is removed, a
// second Lock is still refused while the first holder lives (the byte it
// holds in the directory above), the first's lease is lost (at once by
// Check, and by its own goroutine), and once it is released the plan can
// be locked again.
func TestFileLockLostWhenItsDirectoryGoes(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"removed", "replaced"} {
		t.Run(how, func(t *testing.T) {
			s := &FileStore{Dir: filepath.Join(t.TempDir(), ".planrun"), LockCheck: 10 * time.Millisecond}
			lease, _, err := s.Lock(ctx, "p", Me("r1"))
			if err != nil {
				t.Fatal(err)
			}
			defer lease.Release()
			if err := os.RemoveAll(s.Dir); err != nil {
				t.Fatal(err)
			}
			if how == "replaced" {
				if err := os.MkdirAll(filepath.Join(s.Dir, "p"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err = s.Lock(ctx, "p", Me("r2"))
			if h := lockedBy(t, err); h.PID != os.Getpid() {
				t.Fatalf("holder %+v, want pid %d", h, os.Getpid())
			}
			select {
			case <-lease.Lost():
			case <-time.After(5 * time.Second):
				t.Fatal("the lease's goroutine never saw the directory go")
			}
			err = lease.Check()
			var lost *LockLostError
			if !errors.As(err, &lost) || !strings.Contains(err.Error(), "lost the lock: "+filepath.Join(s.Dir, "p")+" was removed or replaced") {
				t.Fatalf("Check: %v", err)
			}
			if err := lease.Release(); err != nil {
				t.Fatalf("release: %v", err)
			}
			again, _, err := s.Lock(ctx, "p", Me("r3"))
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			again.Release()
		})
	}
}

// TestFileLockCheckIsImmediate: Check sees a removed directory before the
// lease's goroutine would (an hour away here).
func TestFileLockCheckIsImmediate(t *testing.T) {
	s := &FileStore{Dir: filepath.Join(t.TempDir(), ".planrun"), LockCheck: time.Hour}
	lease, _, err := s.Lock(context.Background(), "p", Me("r1"))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if err := lease.Check(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(s.Dir, "p")); err != nil {
		t.Fatal(err)
	}
	if err := lease.Check(); err == nil {
		t.Fatal("Check did not see the directory go")
	}
	select {
	case <-lease.Lost():
	default:
		t.Fatal("Lost is not closed after a failed Check")
	}
}

// TestFileStoresBesideEachOtherLockApart: stores in sibling directories
// share the directory above, but not their plans' bytes in it.
func TestFileStoresBesideEachOtherLockApart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a := &FileStore{Dir: filepath.Join(root, "a")}
	b := &FileStore{Dir: filepath.Join(root, "b")}
	la, _, err := a.Lock(ctx, "p", Me(""))
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	lb, _, err := b.Lock(ctx, "p", Me(""))
	if err != nil {
		t.Fatalf("a sibling store's plan of the same name: %v", err)
	}
	lb.Release()
}

// tornRun writes a run record whose last line is cut mid-JSON, as a crash
// in the middle of an append leaves it, and returns its events but the torn one.
func tornRun(t *testing.T, s *FileStore, plan, id string) []event.Event {
	t.Helper()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	whole := []event.Event{
		{Time: t0, Type: event.RunStarted, Run: id, Plan: plan, Hash: "h"},
		{Time: t0, Type: event.StepStarted, Run: id, Step: "step.x", Uses: "exec"},
		{Time: t0, Type: event.StepFinished, Run: id, Step: "step.x", Status: event.StatusSucceeded},
	}
	raw := lines(t, whole)
	last := lines(t, []event.Event{{Time: t0, Type: event.StepStarted, Run: id, Step: "step.y", Uses: "exec"}})
	raw = append(raw, last[:len(last)/2]...)
	path := filepath.Join(s.Dir, plan, "runs", id+".jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return whole
}

// TestTornLastLine: a torn last line is left out and said, the run reads
// as unfinished at its last complete event, and resuming it (Append) cuts
// the torn line off so that the record reads whole again.
func TestTornLastLine(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	want := tornRun(t, s, "p", "r1")
	got, err := s.Events(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lines(t, got), lines(t, want)) {
		t.Fatalf("events:\n%s\nwant\n%s", lines(t, got), lines(t, want))
	}
	runs, err := s.Runs(ctx, "p")
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	if runs[0].Torn == nil || runs[0].Torn.Line != 4 || runs[0].Status != "" ||
		runs[0].Torn.Error() != "run r1's record ends in a torn line (a crash while writing): it is read up to its last complete event" {
		t.Fatalf("run: %+v (torn %v)", runs[0], runs[0].Torn)
	}
	if r := Replay("r1", got); r.Status != event.StatusUnfinished || r.Steps["step.x"].Status != event.StatusSucceeded {
		t.Fatalf("replay: %+v", r)
	}

	w, err := s.Append(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	fin := event.Event{Time: time.Now().UTC(), Type: event.RunFinished, Run: "r1", Status: event.StatusSucceeded}
	if err := w.Record(fin); err != nil {
		t.Fatal(err)
	}
	w.Close()
	runs, err = s.Runs(ctx, "p")
	if err != nil || len(runs) != 1 || runs[0].Torn != nil || runs[0].Status != event.StatusSucceeded {
		t.Fatalf("after resuming: %+v, %v", runs, err)
	}
}

// TestLastLineWithoutNewline: a whole event that lacks only its newline is
// kept, and an append ends it first rather than glue onto it.
func TestLastLineWithoutNewline(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	want := oddRun("p")[:3]
	raw := lines(t, want)
	path := filepath.Join(s.Dir, "p", "runs", "r1.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, "p")
	if err != nil || len(runs) != 1 || runs[0].Torn != nil {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	w, err := s.Append(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	fin := oddRun("p")[3]
	if err := w.Record(fin); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := s.Events(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lines(t, got), lines(t, oddRun("p"))) {
		t.Fatalf("events:\n%s", lines(t, got))
	}
}

// TestDamageIsConfinedToItsRun: a line that does not parse before the
// last is damage, an error for that run (Events), while Runs still lists
// the others and names the damaged one.
func TestDamageIsConfinedToItsRun(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	record(t, s, "p", "20260101T000000.000Z-aaaa", oddRun("p"))
	record(t, s, "p", "20260102T000000.000Z-bbbb", oddRun("p"))
	path := filepath.Join(s.Dir, "p", "runs", "20260101T000000.000Z-aaaa.jsonl")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.IndexByte(raw, '\n')
	raw = append(append(append([]byte{}, raw[:cut+1]...), "{\"type\": \"step_st\n"...), raw[cut+1:]...)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var damaged *DamagedError
	if _, err := s.Events(ctx, "p", "20260101T000000.000Z-aaaa"); !errors.As(err, &damaged) || damaged.Line != 2 {
		t.Fatalf("Events: %v", err)
	}
	runs, err := s.Runs(ctx, "p")
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	if runs[0].Damaged != nil || runs[0].Status != event.StatusSucceeded {
		t.Fatalf("the sound run: %+v", runs[0])
	}
	if !errors.As(runs[1].Damaged, &damaged) || runs[1].ID != "20260101T000000.000Z-aaaa" {
		t.Fatalf("the damaged run: %+v", runs[1])
	}
}

// TestRecordGone: a writer says when its record was removed under it.
func TestRecordGone(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	w, err := s.Create(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir, "p", "runs", "r1.jsonl")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var gone *RecordGoneError
	if err := w.Check(); !errors.As(err, &gone) || gone.Path != path {
		t.Fatalf("Check: %v", err)
	}
}
