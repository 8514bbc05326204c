package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runRecords reads the run records of the crash plan: run id to the
// events' types and the pids named by their run_started events.
func runRecords(t *testing.T, dir string) map[string][]map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "crash", "runs", "*.jsonl"))
	out := map[string][]map[string]any{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var evs []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			var ev map[string]any
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s: %v: %s", f, err, line)
			}
			evs = append(evs, ev)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".jsonl")] = evs
	}
	return out
}

// TestLockPathRemovedDuringApply: removing the lock file, or the whole
// .planrun directory, while an apply runs (a `git clean -fdx` in CI) does
// not let a second apply in: it is refused, naming the first, and no step
// runs twice. When the plan's lock directory itself goes, the first stops,
// saying why, as when a Postgres lock is lost.
func TestLockPathRemovedDuringApply(t *testing.T) {
	for _, what := range []string{"lock file", "whole directory"} {
		t.Run(what, func(t *testing.T) {
			dir := crashDir(t)
			first := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
			waitForLog(t, dir, "c-start")
			var err error
			if what == "lock file" {
				err = os.Remove(filepath.Join(dir, ".planrun", "crash", "lock"))
			} else {
				err = os.RemoveAll(filepath.Join(dir, ".planrun"))
			}
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
			if want := fmt.Sprintf("is being applied by pid %d on ", first.cmd.Process.Pid); code != 4 || !strings.Contains(errOut, want) {
				t.Fatalf("the second apply: exit %d, want 4 and %q\n%s%s", code, want, out, errOut)
			}
			// status, too, sees the first as the holder.
			if code, out, errOut := runPlanrun(t, dir, "status", "plan.hcl"); code != 0 || (what == "lock file" && !strings.Contains(out, "applying: pid")) {
				t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
			}

			if what == "lock file" {
				// Its directory is still locked: the first goes on until told to stop.
				_ = first.cmd.Process.Signal(syscall.SIGINT)
			}
			code = first.wait(t)
			firstErr := first.stderr.String()
			if what == "whole directory" {
				want := "lost the lock: " + filepath.Join(dir, ".planrun", "crash") + " was removed or replaced"
				if code != 130 || !strings.Contains(firstErr, want) {
					t.Fatalf("the first apply: exit %d, want 130 and %q\n%s%s", code, want, first.stdout, firstErr)
				}
			} else if code != 130 || strings.Contains(firstErr, "lost the lock") {
				t.Fatalf("the first apply: exit %d\n%s%s", code, first.stdout, firstErr)
			}
			got := logLines(t, dir)
			if got["a"] != 1 || got["b"] != 1 || got["c-start"] != 1 || got["d"] != 0 {
				t.Fatalf("a step ran twice, or ran after the lock was lost: %v", got)
			}

			// One record, written by the first alone (none when it was removed).
			runs := runRecords(t, dir)
			if what == "whole directory" {
				if len(runs) != 0 {
					t.Fatalf("the refused apply started a run: %v", runs)
				}
				return
			}
			if len(runs) != 1 {
				t.Fatalf("run records: %v", runs)
			}
			for id, evs := range runs {
				starts := 0
				for _, ev := range evs {
					if ev["run"] != id {
						t.Fatalf("an event of another run in %s: %v", id, ev)
					}
					if ev["type"] == "run_started" {
						starts++
						if by, _ := ev["by"].(map[string]any); by == nil || by["pid"] != float64(first.cmd.Process.Pid) {
							t.Fatalf("started by %v, want pid %d", ev["by"], first.cmd.Process.Pid)
						}
					}
				}
				if starts != 1 {
					t.Fatalf("%d segments in one record: two processes wrote it", starts)
				}
			}
		})
	}
}

// tearLastLine cuts the crash plan's only run record in the middle of its
// last line, as a crash during an append leaves it.
func tearLastLine(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "crash", "runs", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("run records: %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], raw[:len(raw)-20], 0o644); err != nil {
		t.Fatal(err)
	}
}

const tornWarning = "record ends in a torn line (a crash while writing): it is read up to its last complete event"

// everyCommandWorks runs status, history and report: each exits 0, with
// the torn-line warning or without it.
func everyCommandWorks(t *testing.T, dir string, warned bool) {
	t.Helper()
	for _, cmd := range []string{"status", "history", "report"} {
		code, out, errOut := runPlanrun(t, dir, cmd, "plan.hcl")
		if code != 0 || strings.Contains(errOut, tornWarning) != warned {
			t.Fatalf("%s: exit %d (warning expected: %v)\n%s%s", cmd, code, warned, out, errOut)
		}
	}
}

// TestTornLastLineThenResume: a record whose last line was torn reads up
// to its last complete event, with a warning; apply resumes it (the torn
// line is cut off), and afterwards no warning is left.
func TestTornLastLineThenResume(t *testing.T) {
	dir := crashDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "--target", "b", "plan.hcl"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	tearLastLine(t, dir) // its run_finished
	everyCommandWorks(t, dir, true)
	code, out, errOut := runPlanrun(t, dir, "status", "plan.hcl")
	if code != 0 || !strings.Contains(out, ": unfinished") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	if code != 0 || !strings.Contains(out, "reused") || !strings.Contains(errOut, tornWarning) {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if got := logLines(t, dir); got["a"] != 1 || got["b"] != 1 || got["c-start"] != 1 || got["d"] != 1 {
		t.Fatalf("the resumed run redid or skipped work: %v", got)
	}
	if runs := runRecords(t, dir); len(runs) != 1 {
		t.Fatalf("resuming must continue the run, not start one: %v", runs)
	}
	everyCommandWorks(t, dir, false)
}

// TestTornLastLineThenRestart: after a torn line, the fresh run that
// apply --restart starts leaves every command working.
func TestTornLastLineThenRestart(t *testing.T) {
	dir := crashDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "--target", "b", "plan.hcl"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	tearLastLine(t, dir)
	if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "--restart", "plan.hcl"); code != 0 {
		t.Fatalf("apply --restart: exit %d\n%s%s", code, out, errOut)
	}
	for _, cmd := range []string{"status", "history", "report"} {
		if code, out, errOut := runPlanrun(t, dir, cmd, "plan.hcl"); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", cmd, code, out, errOut)
		}
	}
	code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	if code != 0 || !strings.Contains(out, "Nothing to do") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	if got := logLines(t, dir); got["a"] != 2 || got["d"] != 1 {
		t.Fatalf("log: %v", got)
	}
}

// TestRecordRemovedDuringApply: apply does not point at a record that is
// gone: it says that it was removed during the run.
func TestRecordRemovedDuringApply(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(`
plan "gone" {}
step "a" {
  uses  = "exec"
  shell = "echo a >> log.txt; while [ ! -f go-on ]; do sleep 0.01; done"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	waitForLog(t, dir, "a")
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "gone", "runs", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("run records: %v", files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go-on"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	out := p.stdout.String()
	rel, _ := filepath.Rel(dir, files[0])
	want := "The run record " + rel + " was removed during the run."
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "Record: ") {
		t.Fatalf("exit %d, want %q\n%s%s", code, want, out, p.stderr)
	}
}
