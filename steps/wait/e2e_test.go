package wait_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/wait"
)

func TestWaitEndToEndExecProbe(t *testing.T) {
	// Each probe bumps a counter file in the plan's directory; the third
	// one says ready. The next step reads the wait's output.
	src := `
step "ready" {
  uses     = "wait"
  interval = "10ms"
  max_wait = "10s"
  probe {
    uses          = "exec"
    output_format = "json"
    shell         = <<-EOT
      n=$(cat count 2>/dev/null || echo 0)
      n=$((n+1))
      echo $n > count
      echo "{\"n\": $n}"
    EOT
  }
  until = "output.json.n >= 3"
  assert { that = "output.attempts == 3 && output.last.json.n == 3 && output.last_error == ''" }
}

step "after" {
  uses    = "exec"
  command = ["echo", "ready after ${step.ready.output.attempts} attempts"]
}
`
	res, _ := e2etest.Apply(t, "plan.hcl", src, engine.Options{})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if got := e2etest.OutputOf(t, res, "step.after")["stdout"]; got != "ready after 3 attempts\n" {
		t.Errorf("after: stdout %q", got)
	}
}

// replicaAPI reports a replication lag that shrinks on each request, under
// the path /<name>.
func replicaAPI(t *testing.T, name string, lags ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name {
			http.NotFound(w, r)
			return
		}
		i := int(n.Add(1)) - 1
		lag := lags[min(i, len(lags)-1)]
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"state": "streaming", "lag_bytes": %d}`, lag)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

const waitHTTPPlan = `
variable "base" { type = string }

step "replica" {
  uses    = "exec"
  command = ["printf", "replica-1"]
}

step "caught_up" {
  uses     = "wait"
  interval = "10ms"
  max_wait = "%s"
  probe {
    uses = "http"
    url  = "${var.base}/${step.replica.output.stdout}"
  }
  until     = "output.json.lag_bytes == 0"
  fail_fast = "output.json.state == 'broken'"
}
`

func TestWaitEndToEndHTTPProbe(t *testing.T) {
	// The probe's URL reads another step's output: that is a DAG edge, and
	// the value is there when the probe runs.
	srv, requests := replicaAPI(t, "replica-1", 4096, 512, 0)
	res, _ := e2etest.Apply(t, "plan.hcl", fmt.Sprintf(waitHTTPPlan, "10s"), engine.Options{}, "base="+srv.URL)
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	out := e2etest.OutputOf(t, res, "step.caught_up")
	if out["attempts"] != int64(3) || requests.Load() != 3 {
		t.Errorf("attempts %v, requests %d", out["attempts"], requests.Load())
	}
	if last := out["last"].(map[string]any); last["status"] != int64(200) || last["json"].(map[string]any)["lag_bytes"] != int64(0) {
		t.Errorf("last = %v", last)
	}
}

func TestWaitEndToEndGivesUp(t *testing.T) {
	srv, _ := replicaAPI(t, "replica-1", 4096)
	res, _ := e2etest.Apply(t, "plan.hcl", fmt.Sprintf(waitHTTPPlan, "100ms"), engine.Options{}, "base="+srv.URL)
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	msg := res.Steps["step.caught_up"].Err.Error()
	for _, want := range []string{"step.caught_up: wait: gave up", "max_wait 100ms", "attempts", `"lag_bytes":4096`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestWaitEndToEndStepTimeout(t *testing.T) {
	// The step's own timeout is shorter than max_wait: the engine cancels
	// the wait, which still says how far it got.
	src := `
step "never" {
  uses     = "wait"
  timeout  = "150ms"
  interval = "20ms"
  probe {
    uses    = "exec"
    command = ["echo", "{\"ok\": false}"]
    output_format = "json"
  }
  until = "output.json.ok"
}
`
	res, _ := e2etest.Apply(t, "plan.hcl", src, engine.Options{})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	msg := res.Steps["step.never"].Err.Error()
	for _, want := range []string{"timed out after 150ms", "wait: stopped after", "context deadline exceeded", `"ok":false`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestWaitEndToEndBadArgumentsCheckedAtLoad(t *testing.T) {
	// A condition that does not compile, and a duration that is not one,
	// fail validate at their place in the file, in the probe too, rather
	// than the run.
	src := `
step "bad" {
  uses = "wait"
  probe {
    uses            = "http"
    url             = "http://localhost"
    request_timeout = "soon"
  }
  until    = "output.status =="
  max_wait = "forever"
}
`
	path := filepath.Join(t.TempDir(), "plan.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Environ: []string{}})
	var all []string
	for _, d := range diags {
		all = append(all, fmt.Sprintf("%d:%d: %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail))
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{
		`7:23: Invalid argument value: Inappropriate value for argument "request_timeout": "soon" is not a duration`,
		`9:30: Invalid condition in until: unexpected token EOF (in "output.status ==")`,
		`10:14: Invalid argument value: Inappropriate value for argument "max_wait": "forever" is not a duration`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, got)
		}
	}
}

func TestWaitEndToEndProbeArgumentsCheckedAtLoad(t *testing.T) {
	// The loader checks the probe's body against the probe's type: a typo
	// is a diagnostic before anything runs.
	src := `
step "typo" {
  uses = "wait"
  probe {
    uses = "http"
    urll = "http://localhost"
  }
  until = "output.status == 200"
}
`
	path := filepath.Join(t.TempDir(), "plan.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Environ: []string{}})
	var all []string
	for _, d := range diags {
		all = append(all, d.Summary+": "+d.Detail)
	}
	if got := strings.Join(all, "\n"); !strings.Contains(got, `An argument named "urll" is not expected here`) {
		t.Errorf("diagnostics:\n%s", got)
	}
}

func TestWaitEndToEndSQLProbe(t *testing.T) {
	// A sql step sets up a sequence; the wait's sql probe reads the next
	// value until it reaches 3, against a real PostgreSQL database.
	src := `
variable "db" {
  type      = string
  sensitive = true
}

database "target" { url = var.db }

step "setup" {
  uses     = "sql"
  database = database.target
  script   = "CREATE SEQUENCE ticks"
}

step "ticks" {
  uses       = "wait"
  interval   = "10ms"
  max_wait   = "20s"
  depends_on = [step.setup]
  probe {
    uses     = "sql"
    database = database.target
    query    = "SELECT nextval('ticks') AS n"
  }
  until = "output.rows[0].n >= 3"
  assert { that = "output.attempts == 3" }
}
`
	res, _ := e2etest.Apply(t, "plan.hcl", src, engine.Options{}, "db="+wait.Source.FreshDB(t))
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	last := e2etest.OutputOf(t, res, "step.ticks")["last"].(map[string]any)
	if rows := last["rows"].([]any); len(rows) != 1 || rows[0].(map[string]any)["n"] != int64(3) {
		t.Errorf("last = %v", last)
	}
}

func TestWaitInCheck(t *testing.T) {
	// wait may be a check when its probe is read-only: the probe then runs
	// read-only too, so a probe that writes fails instead of writing.
	src := `
variable "db" {
  type      = string
  sensitive = true
}

database "target" { url = var.db }

step "setup" {
  uses     = "sql"
  database = database.target
  script   = "CREATE SEQUENCE ticks; CREATE TABLE t AS SELECT 1 AS n"
}

check "rows_arrived" {
  uses       = "wait"
  interval   = "10ms"
  max_wait   = "5s"
  depends_on = [step.setup]
  probe {
    uses     = "sql"
    database = database.target
    query    = "SELECT count(*) AS n FROM t"
  }
  until = "output.rows[0].n == 1"
}

check "writes" {
  uses       = "wait"
  interval   = "10ms"
  max_wait   = "1500ms"
  depends_on = [step.setup]
  probe {
    uses     = "sql"
    database = database.target
    query    = "SELECT nextval('ticks') AS n"
  }
  until = "output.rows[0].n >= 1"
}
`
	res, _ := e2etest.Apply(t, "plan.hcl", src, engine.Options{KeepGoing: true}, "db="+wait.Source.FreshDB(t))
	if got := res.Steps["check.rows_arrived"]; got.Status != event.StatusSucceeded {
		t.Errorf("rows_arrived: %s: %v", got.Status, got.Err)
	}
	got := res.Steps["check.writes"]
	if got.Status != event.StatusFailed || got.Err == nil || !strings.Contains(got.Err.Error(), "read-only transaction") {
		t.Errorf("writes: %s: %v", got.Status, got.Err)
	}

	// A probe that can change data is refused in a check before the run.
	bad := `
check "exec_probe" {
  uses = "wait"
  probe {
    uses    = "exec"
    command = ["true"]
  }
  until = "output.exit_code == 0"
}
`
	path := filepath.Join(t.TempDir(), "plan.hcl")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Environ: []string{}})
	var all []string
	for _, d := range diags {
		all = append(all, fmt.Sprintf("%d:%d: %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail))
	}
	if got := strings.Join(all, "\n"); !strings.Contains(got, `5:15: Step type not allowed in a check: A check is read-only, and "exec" can change data`) {
		t.Errorf("diagnostics:\n%s", got)
	}
}
