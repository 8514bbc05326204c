package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/testbin"
)

// crashPlan appends to a log so that the test can tell what ran, and how
// often. Step c is long: the test kills or interrupts the run during it.
const crashPlan = `
plan "crash" {}
variable "secret" {
  type      = string
  sensitive = true
  default   = "pw-Zq8rT3-never-recorded"
}
step "a" {
  uses  = "exec"
  shell = "echo a >> log.txt; echo token ${var.secret}"
  rollback {
    uses  = "exec"
    shell = "echo undo-a >> log.txt"
  }
}
step "b" {
  uses       = "exec"
  shell      = "echo b >> log.txt"
  depends_on = [step.a]
  rollback {
    uses  = "exec"
    shell = "echo undo-b >> log.txt"
  }
}
step "c" {
  uses       = "exec"
  shell      = "echo c-start >> log.txt; if [ -f fast ]; then exit 0; fi; sleep 30; echo c-end >> log.txt"
  depends_on = [step.b]
}
step "d" {
  uses       = "exec"
  shell      = "echo d >> log.txt"
  depends_on = [step.c]
}
`

type proc struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	done   chan error
}

func startPlanrun(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(testbin.Planrun(t), args...)
	cmd.Dir = dir
	p := &proc{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("planrun did not finish\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
	}
	return -1
}

func runPlanrun(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	p := startPlanrun(t, dir, args...)
	code := p.wait(t)
	return code, p.stdout.String(), p.stderr.String()
}

// waitForLog waits until the log holds a line.
func waitForLog(t *testing.T, dir, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(filepath.Join(dir, "log.txt"))
		for _, l := range strings.Split(string(raw), "\n") {
			if l == line {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("log never got %q", line)
}

func logLines(t *testing.T, dir string) map[string]int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, l := range strings.Fields(string(raw)) {
		count[l]++
	}
	return count
}

func crashDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(crashPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stateArgs returns the flags that put the journal in Postgres, or none.
func stateArgs(t *testing.T, store string) []string {
	if store == "file" {
		return nil
	}
	return []string{"--state-url", Source.FreshDB(t)}
}

func TestKillMidStepThenResume(t *testing.T) {
	for _, store := range []string{"file", "postgres"} {
		t.Run(store, func(t *testing.T) {
			dir := crashDir(t)
			state := stateArgs(t, store)
			p := startPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
			waitForLog(t, dir, "c-start")
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.wait(t)

			code, out, errOut := runPlanrun(t, dir, append([]string{"status", "plan.hcl"}, state...)...)
			if code != 0 || !strings.Contains(out, ": unfinished") {
				t.Fatalf("status after the crash (%d):\n%s%s", code, out, errOut)
			}
			if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut = runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
			}
			for _, want := range []string{"step.a: reused", "step.b: reused", "step.c: succeeded", "step.d: succeeded"} {
				if !strings.Contains(out, want) {
					t.Errorf("resume output lacks %q:\n%s", want, out)
				}
			}
			got := logLines(t, dir)
			want := map[string]int{"a": 1, "b": 1, "c-start": 2, "d": 1}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("%s ran %d times, want %d (log %v)", k, got[k], n, got)
				}
			}
			if got["c-end"] != 0 || got["undo-a"] != 0 {
				t.Errorf("the killed step's shell must be gone and nothing rolled back: %v", got)
			}
			code, out, _ = runPlanrun(t, dir, append([]string{"status", "plan.hcl"}, state...)...)
			if code != 0 || !strings.Contains(out, ": succeeded") {
				t.Fatalf("status after the resume:\n%s", out)
			}
			code, out, _ = runPlanrun(t, dir, append([]string{"history", "plan.hcl"}, state...)...)
			if code != 0 || strings.Count(out, "succeeded") != 1 {
				t.Fatalf("the resume continues the same run:\n%s", out)
			}
			assertNoSecret(t, dir, store, state, "pw-Zq8rT3-never-recorded")
		})
	}
}

// assertNoSecret looks for the secret in the journal, file or table.
func assertNoSecret(t *testing.T, dir, store string, state []string, secret string) {
	t.Helper()
	if store == "file" {
		err := filepath.Walk(filepath.Join(dir, ".planrun"), func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds the secret", path)
			}
			if strings.HasSuffix(path, ".jsonl") && !bytes.Contains(raw, []byte("token (sensitive)")) {
				t.Errorf("%s should hold the redacted output", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var leaks, redacted int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE e LIKE '%' || $1 || '%'), count(*) FILTER (WHERE e LIKE '%token (sensitive)%')
		FROM (SELECT convert_from(coalesce(line, convert_to(event::text, 'UTF8')), 'UTF8') AS e FROM planrun.events) AS events`, secret).Scan(&leaks, &redacted); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 || redacted == 0 {
		t.Fatalf("planrun.events: %d events hold the secret, %d the redacted output", leaks, redacted)
	}
}

func TestConcurrentAppliesOneWaitsNot(t *testing.T) {
	for _, store := range []string{"file", "postgres"} {
		t.Run(store, func(t *testing.T) {
			dir := crashDir(t)
			state := stateArgs(t, store)
			first := startPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
			waitForLog(t, dir, "c-start")
			start := time.Now()
			code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
			if code != 4 {
				t.Fatalf("the second apply: exit %d, want 4\n%s%s", code, out, errOut)
			}
			want := fmt.Sprintf("is being applied by pid %d on ", first.cmd.Process.Pid)
			if !strings.Contains(errOut, want) || !strings.Contains(errOut, " since ") {
				t.Fatalf("the lock message names the holder (%q):\n%s", want, errOut)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("the second apply must fail at once, not wait")
			}
			if got := logLines(t, dir); got["a"] != 1 {
				t.Fatalf("the second apply must run nothing: %v", got)
			}
			_ = first.cmd.Process.Signal(syscall.SIGKILL)
			first.wait(t)
		})
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	dir := crashDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, ".planrun", "crash")
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dead := `{"host":"old-runner","pid":999999,"since":"2026-01-02T03:04:05Z"}`
	if err := os.WriteFile(filepath.Join(lockDir, "lock"), []byte(dead), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "took over the lock left by pid 999999 on old-runner") {
		t.Fatalf("the takeover is reported:\n%s", errOut)
	}
	raw, _ := os.ReadFile(filepath.Join(lockDir, "lock"))
	if len(raw) != 0 {
		t.Fatalf("a released lock is empty: %q", raw)
	}
}

func TestStalePostgresLockIsTakenOver(t *testing.T) {
	dir := crashDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := stateArgs(t, "postgres")
	// A first run creates the tables; then a dead runner's row is left behind.
	if code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "--target", "a", "plan.hcl"}, state...)...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO planrun.locks VALUES ('crash', '{"host":"old-runner","pid":999999,"since":"2026-01-02T03:04:05Z"}')`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
	if code != 0 || !strings.Contains(errOut, "took over the lock left by pid 999999 on old-runner") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestDamagedJournalIsAnError(t *testing.T) {
	// A torn last line is tolerated (TestTornLastLine*); a line cut
	// anywhere before it is damage.
	for _, damage := range []string{"cut inside", "garbage"} {
		t.Run(damage, func(t *testing.T) {
			dir := crashDir(t)
			if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "--target", "b", "plan.hcl"); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "crash", "runs", "*.jsonl"))
			if len(files) != 1 {
				t.Fatalf("run records: %v", files)
			}
			raw, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if damage == "cut inside" {
				first := bytes.IndexByte(raw, '\n')
				raw = append(append(raw[:first+1:first+1], raw[first+1:first+20]...), raw[first+1:]...)
			} else {
				raw = append(raw, []byte("\x00\x01 not json\n")...)
			}
			if err := os.WriteFile(files[0], raw, 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
			if code != 1 || !strings.Contains(errOut, "is damaged at line") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if got := logLines(t, dir); got["a"] != 1 {
				t.Fatalf("nothing may run on a damaged journal (no silent fresh start): %v", got)
			}
			after, _ := filepath.Glob(filepath.Join(dir, ".planrun", "crash", "runs", "*.jsonl"))
			if len(after) != 1 {
				t.Fatalf("no new run may start: %v", after)
			}
		})
	}
}

func TestInterruptCancelsAndRollsBack(t *testing.T) {
	dir := crashDir(t)
	p := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	waitForLog(t, dir, "c-start")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 130 {
		t.Fatalf("exit %d, want 130\n%s%s", code, p.stdout, p.stderr)
	}
	got := logLines(t, dir)
	if got["undo-b"] != 1 || got["undo-a"] != 1 || got["c-end"] != 0 || got["d"] != 0 {
		t.Fatalf("the running step is cancelled, the completed ones rolled back: %v", got)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "log.txt"))
	if !strings.HasSuffix(string(raw), "undo-b\nundo-a\n") {
		t.Fatalf("rollbacks run newest first:\n%s", raw)
	}
	for _, want := range []string{"step.c: cancelled", "step.b: rolled back", "interrupted"} {
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, p.stdout)
		}
	}
	code, out, _ := runPlanrun(t, dir, "status", "plan.hcl")
	if code != 0 || !strings.Contains(out, ": interrupted") || !strings.Contains(out, "rolled_back") {
		t.Fatalf("status:\n%s", out)
	}
}

func TestRollbackCommand(t *testing.T) {
	dir := crashDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runPlanrun(t, dir, "rollback", "plan.hcl")
	if code != 2 || !strings.Contains(errOut, "--auto-approve") {
		t.Fatalf("without a terminal, rollback asks for --auto-approve: %d\n%s", code, errOut)
	}
	code, out, errOut = runPlanrun(t, dir, "rollback", "--auto-approve", "plan.hcl")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "log.txt"))
	if !strings.HasSuffix(string(raw), "d\nundo-b\nundo-a\n") {
		t.Fatalf("newest first:\n%s", raw)
	}
	code, out, _ = runPlanrun(t, dir, "rollback", "--auto-approve", "plan.hcl")
	if code != 0 || !strings.Contains(out, "Nothing to roll back") {
		t.Fatalf("a second rollback has nothing to do:\n%s", out)
	}
	code, out, _ = runPlanrun(t, dir, "status", "plan.hcl")
	if !strings.Contains(out, ": rolled_back") {
		t.Fatalf("status:\n%s", out)
	}
	// After a rollback, apply starts over: nothing of the old run stands.
	if code, out, errOut = runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl"); code != 0 || strings.Contains(out, "reused") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestSecondInterruptStopsRollbacks(t *testing.T) {
	dir := t.TempDir()
	plan := `
plan "twice" {}
step "a" {
  uses  = "exec"
  shell = "echo a >> log.txt"
  rollback {
    uses  = "exec"
    shell = "echo undo-a-start >> log.txt; sleep 30; echo undo-a-end >> log.txt"
  }
}
step "b" {
  uses       = "exec"
  shell      = "echo b-start >> log.txt; sleep 30"
  depends_on = [step.a]
}
`
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	waitForLog(t, dir, "b-start")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, dir, "undo-a-start")
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 130 {
		t.Fatalf("exit %d\n%s%s", code, p.stdout, p.stderr)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the second interrupt must stop the running rollback")
	}
	if got := logLines(t, dir); got["undo-a-end"] != 0 {
		t.Fatalf("the rollback was not stopped: %v", got)
	}
	if !strings.Contains(p.stdout.String(), "Rollbacks were interrupted") {
		t.Fatalf("the summary says so:\n%s", p.stdout)
	}
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "twice", "runs", "*.jsonl"))
	raw, _ := os.ReadFile(files[0])
	if !bytes.Contains(raw, []byte(`"rollbacks were interrupted: some hooks did not run"`)) {
		t.Fatalf("the record says so:\n%s", raw)
	}
	code, out, _ := runPlanrun(t, dir, "status", "plan.hcl")
	if code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("status shows the cancelled rollback:\n%s", out)
	}
}

// A crash during the first step leaves no completed step, but the step may
// have state of its own (copy): the next apply continues the same run.
func TestKillDuringTheFirstStepContinuesTheRun(t *testing.T) {
	dir := t.TempDir()
	plan := `
plan "first" {}
step "long" {
  uses  = "exec"
  shell = "echo start >> log.txt; if [ -f fast ]; then exit 0; fi; sleep 30"
}
`
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl")
	waitForLog(t, dir, "start")
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runPlanrun(t, dir, "apply", "--auto-approve", "plan.hcl"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ := runPlanrun(t, dir, "history", "plan.hcl")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "succeeded") {
		t.Fatalf("one run, continued and finished:\n%s", out)
	}
}
