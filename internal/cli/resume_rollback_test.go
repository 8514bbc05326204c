package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFailedResumeRollsBackTheFirstAttempt crashes a run after step a, then
// resumes it with b failing: the rollback undoes a too, though a completed
// in the first attempt, and b's only once.
func TestFailedResumeRollsBackTheFirstAttempt(t *testing.T) {
	dir := t.TempDir()
	plan := `
plan "resume_rollback" {}
step "a" {
  uses  = "exec"
  shell = "echo a >> log.txt"
  rollback {
    uses  = "exec"
    shell = "echo undo-a >> log.txt"
  }
}
step "b" {
  uses       = "exec"
  shell      = "echo b-start >> log.txt; if [ -f fail ]; then exit 1; fi; sleep 30"
  depends_on = [step.a]
  rollback {
    uses  = "exec"
    shell = "echo undo-b >> log.txt"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	waitForLog(t, dir, "b-start")
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	if code == 0 || !strings.Contains(out, "step.a: reused") || !strings.Contains(out, "step.b: failed") {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	got := logLines(t, dir)
	for k, n := range map[string]int{"a": 1, "b-start": 2, "undo-b": 1, "undo-a": 1} {
		if got[k] != n {
			t.Errorf("%s: %d times, want %d (log %v)\n%s", k, got[k], n, got, out)
		}
	}
	// Nothing is left standing: another apply starts afresh.
	code, out, errOut = runPlanrun(t, dir, "rollback", "--auto-approve", "plan.hcl")
	if code != 0 || !strings.Contains(out, "Nothing to roll back") {
		t.Fatalf("rollback after the failed resume: exit %d\n%s%s", code, out, errOut)
	}
}
