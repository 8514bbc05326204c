package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// firstLine is the run_started line of the plan's only run: the file's, or
// planrun.events' row.
func firstLine(t *testing.T, dir string, state []string) []byte {
	t.Helper()
	if len(state) == 0 {
		files, err := filepath.Glob(filepath.Join(dir, ".planrun", "crash", "runs", "*.jsonl"))
		if err != nil || len(files) != 1 {
			t.Fatalf("run files %v: %v", files, err)
		}
		raw, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := bytes.Cut(raw, []byte("\n"))
		return line
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var line []byte
	if err := conn.QueryRow(ctx, "SELECT line FROM planrun.events ORDER BY seq LIMIT 1").Scan(&line); err != nil {
		t.Fatal(err)
	}
	return line
}

// TestFingerprintsAreKeyed: a sensitive value enters a fingerprint through
// an HMAC keyed per store, so the record cannot be checked against guesses
// of the secret; the same store still recognises its plan (the resume tests
// resume this plan in both stores).
func TestFingerprintsAreKeyed(t *testing.T) {
	var prints []map[string]string
	for _, store := range []string{"file", "file", "postgres"} {
		dir := crashDir(t)
		if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		state := stateArgs(t, store)
		if code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		line := firstLine(t, dir, state)
		// What the fingerprint used to hash in the clear: the sensitive
		// argument's JSON, and the secret itself.
		for _, plain := range []string{`"echo a >> log.txt; echo token pw-Zq8rT3-never-recorded"`, "pw-Zq8rT3-never-recorded"} {
			sum := sha256.Sum256([]byte(plain))
			if h := hex.EncodeToString(sum[:]); bytes.Contains(line, []byte(h)) || bytes.Contains(line, []byte(h[:16])) {
				t.Fatalf("the record holds sha256(%s)", plain)
			}
		}
		var ev struct{ Fingerprints map[string]string }
		if err := json.Unmarshal(line, &ev); err != nil || len(ev.Fingerprints) != 4 {
			t.Fatalf("run_started %s: %v", line, err)
		}
		prints = append(prints, ev.Fingerprints)
		if code, out, _ := runPlanrun(t, dir, append([]string{"status", "plan.hcl"}, state...)...); code != 0 || strings.Contains(out, "changed since") {
			t.Fatalf("status against the same store:\n%s", out)
		}
	}
	for i := 1; i < len(prints); i++ {
		if prints[i]["step.a"] == prints[0]["step.a"] {
			t.Fatalf("two stores gave step.a (a secret in its shell) one fingerprint: %v %v", prints[0], prints[i])
		}
		if prints[i]["step.b"] != prints[0]["step.b"] {
			t.Fatalf("step.b holds no secret; its fingerprint need not differ: %v %v", prints[0], prints[i])
		}
	}
}

// TestApplyStopsWhenTheLockIsLost: the state database drops the session
// that holds the plan's advisory lock mid-run; the apply must stop rather
// than go on beside an apply that could now take the lock.
func TestApplyStopsWhenTheLockIsLost(t *testing.T) {
	dir := crashDir(t)
	state := stateArgs(t, "postgres")
	p := startPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
	waitForLog(t, dir, "c-start")
	terminateLock(t, state[1])
	start := time.Now()
	code := p.wait(t)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the apply went on %s after losing its lock", took)
	}
	if code == 0 || !strings.Contains(p.stderr.String(), "lost the lock on the state database") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	if got := logLines(t, dir); got["c-end"] != 0 || got["d"] != 0 {
		t.Fatalf("the run went on: %v", got)
	}
	// Nothing holds the lock now: the next apply resumes.
	if err := os.WriteFile(filepath.Join(dir, "fast"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...); code != 0 {
		t.Fatalf("apply after the loss: exit %d\n%s%s", code, out, errOut)
	}
}

// TestApplyStopsWhenTheRecordFails: a run whose record cannot be written
// stops rather than go on unrecorded, and says why.
func TestApplyStopsWhenTheRecordFails(t *testing.T) {
	dir := crashDir(t)
	state := stateArgs(t, "postgres")
	// status creates the tables; then the state database refuses step.c's start.
	if code, out, errOut := runPlanrun(t, dir, append([]string{"status", "plan.hcl"}, state...)...); code != 0 {
		t.Fatalf("status: %d\n%s%s", code, out, errOut)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
CREATE FUNCTION planrun.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF convert_from(NEW.line, 'UTF8') LIKE '%"type":"step_started",%"step":"step.c"%' THEN
    RAISE EXCEPTION 'disk full';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON planrun.events FOR EACH ROW EXECUTE FUNCTION planrun.refuse();`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...)
	if code != 1 || !strings.Contains(errOut, "the run record could not be written") || !strings.Contains(errOut, "disk full") ||
		!strings.Contains(errOut, "stopping the run") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := logLines(t, dir); got["c-end"] != 0 || got["d"] != 0 {
		t.Fatalf("the run went on unrecorded: %v", got)
	}
}

// terminateLock ends the session that holds the plan's advisory lock.
func terminateLock(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d lock sessions: %v", n, err)
	}
}

func TestRollbackStopsWhenTheLockIsLost(t *testing.T) {
	dir := t.TempDir()
	src := `
plan "slowundo" {}
step "a" {
  uses  = "exec"
  shell = "echo a >> log.txt"
  rollback {
    uses  = "exec"
    shell = "echo undo-start >> log.txt; sleep 30; echo undo-end >> log.txt"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := stateArgs(t, "postgres")
	if code, out, errOut := runPlanrun(t, dir, append([]string{"apply", "--auto-approve", "plan.hcl"}, state...)...); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	p := startPlanrun(t, dir, append([]string{"rollback", "--auto-approve", "plan.hcl"}, state...)...)
	waitForLog(t, dir, "undo-start")
	terminateLock(t, state[1])
	start := time.Now()
	code := p.wait(t)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the rollback went on %s after losing its lock", took)
	}
	if code == 0 || !strings.Contains(p.stderr.String(), "lost the lock on the state database") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	if got := logLines(t, dir); got["undo-end"] != 0 {
		t.Fatalf("the rollback went on: %v", got)
	}
}
