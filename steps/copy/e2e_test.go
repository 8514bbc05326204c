package copy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/internal/testbin"
	copystep "github.com/planrun/planrun/steps/copy"
)

// The copy as a plan runs it: arguments from HCL, assertions on its
// output, the state directory from the engine, passwords kept out of
// everything recorded.
const copyPlan = `
plan "move" {}

variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}

database "old" { url = var.src }
database "new" { url = var.dst }

step "copy" {
  uses        = "copy"
  source      = database.old
  target      = database.new
  jobs        = 2
  index_jobs  = 3
  split_bytes = "2MB"
  assert { that = "len(output.tables) == 17 && output.rows == sum(output.tables, {.rows})" }
  assert { that = "one(output.tables, {.schema == 'public' && .name == 'big' && .chunks > 1})" }
  assert { that = "output.large_objects == 5 && output.sequences == 8 && !output.resumed" }
  assert { that = "len(output.indexes) > 0 && output.phases.post_data > 0 && output.bytes_per_second > 0" }
}

check "counts" {
  uses       = "compare"
  source     = database.old
  target     = database.new
  depends_on = [step.copy]
  assert { that = "output.equal" }
}
`

func TestCopyPlanEndToEnd(t *testing.T) {
	t.Parallel()
	src, dst := copystep.CopyTestSource(t)
	stateRoot := t.TempDir()
	res, events := e2etest.Apply(t, "plan.hcl", copyPlan, engine.Options{
		StateDir: func(addr string) string { return filepath.Join(stateRoot, addr) },
	}, "src="+src, "dst="+dst)
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	copystep.CopyAssertSame(t, src, dst)
	if _, err := os.Stat(filepath.Join(stateRoot, "step.copy", copystep.CopyStateFileName)); err != nil {
		t.Errorf("no state in the step's state directory: %v", err)
	}
	raw, _ := json.Marshal(events)
	for _, pw := range []string{copystep.Source.Password, copystep.Target.Password} {
		if strings.Contains(string(raw), pw) {
			t.Errorf("a password shows in the run's events")
		}
	}
	logs := 0
	for _, ev := range events {
		if ev.Type == event.StepLog && ev.Step == "step.copy" {
			logs++
		}
	}
	if logs < 5 {
		t.Errorf("%d log lines from the copy", logs)
	}
}

const copyCrashPlan = `
plan "move" {}
variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}
database "old" { url = var.src }
database "new" { url = var.dst }
step "maintenance_on" {
  uses  = "exec"
  shell = "echo maintenance on"
}
step "copy" {
  uses       = "copy"
  source     = database.old
  target     = database.new
  jobs       = 2
  depends_on = [step.maintenance_on]
}
`

// planrun is killed (SIGKILL: no cleanup of any kind) in the middle of the
// data phase, while a slow table loads; apply again resumes the run: the
// tables recorded as done are not copied again, and the target ends exact.
func TestCopyKilledProcessResumes(t *testing.T) {
	t.Parallel()
	bin := testbin.Planrun(t)
	src, dst := copystep.CopyTestSource(t)
	steptest.MustExec(t, src, copystep.CopySlowTableSQL)
	copystep.CopySlowDown(t, dst, true)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(copyCrashPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func() *exec.Cmd {
		cmd := exec.Command(bin, "apply", "--auto-approve", "plan.hcl")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PLANRUN_VAR_src="+src, "PLANRUN_VAR_dst="+dst)
		return cmd
	}

	var out bytes.Buffer
	first := apply()
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill() //nolint:errcheck // already dead when the test went well
	// Wait until the state records some tables while public.slow loads.
	var state struct {
		Tables map[string]copystep.CopyTable `json:"tables"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "state", "*", "step.copy", copystep.CopyStateFileName))
		if len(files) == 1 {
			raw, _ := os.ReadFile(files[0])
			_ = json.Unmarshal(raw, &state)
		}
		loading := steptest.Query(t, dst, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'planrun' AND query LIKE 'COPY "public"."slow"%'`)
		if len(state.Tables) >= 5 && loading[0] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy never got to the slow table with 5 tables done (%d done)\n%s", len(state.Tables), out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, done := state.Tables["public.slow"]; done {
		t.Fatal("public.slow done before the kill")
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	copystep.CopySlowDown(t, dst, false)
	second := apply()
	started := time.Now()
	got, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("apply after the kill: %v\n%s", err, got)
	}
	t.Logf("the resumed apply took %s:\n%s", time.Since(started), got)
	copystep.CopyAssertSame(t, src, dst)
	copystep.CopyAssertInserts(t, src, dst)

	var names []string
	want := map[string]int64{}
	for name, tb := range state.Tables {
		names = append(names, name)
		want[name] = tb.Rows
	}
	inserted := copystep.CopyInserted(t, dst, names, want)
	for name, rows := range want {
		// One row more where copyAssertInserts added one.
		if n := inserted[name]; n != rows && n != rows+1 {
			t.Errorf("%s: %d rows inserted for %d rows: copied again after the kill", name, n, rows)
		}
	}
}

// A copy that refuses a target which already holds its tables changed
// nothing, so its rollback (which drops the tables) must not run: the
// target's tables survive the failed run.
func TestRefusedCopyIsNotRolledBack(t *testing.T) {
	src, dst := copystep.Source.FreshDB(t), copystep.Target.FreshDB(t)
	steptest.MustExec(t, src, "CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept SELECT generate_series(1, 5)")
	steptest.MustExec(t, dst, "CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (42)")
	res, events := e2etest.Apply(t, "plan.hcl", `
variable "src" { type = string }
variable "dst" { type = string }
database "src" { url = var.src }
database "dst" { url = var.dst }
step "copy" {
  uses   = "copy"
  source = database.src
  target = database.dst
  rollback {
    uses     = "sql"
    database = database.dst
    query    = "DROP TABLE IF EXISTS kept CASCADE"
  }
}
`, engine.Options{}, "src="+src, "dst="+dst)
	if err := res.Steps["step.copy"].Err; err == nil || !strings.Contains(err.Error(), "already has 1 of the tables") {
		t.Fatalf("copy: %v", err)
	}
	if got := steptest.Query(t, dst, "SELECT id FROM kept"); len(got) != 1 || got[0] != "42" {
		t.Fatalf("the target's table was dropped or changed: %v", got)
	}
	var said string
	for _, ev := range events {
		if ev.Type == event.RollbackFinished && ev.Step == "step.copy" {
			said = string(ev.Status) + ": " + ev.Message
		}
	}
	if !strings.Contains(said, "before it changed anything") {
		t.Errorf("the rollback's event says %q", said)
	}
}
