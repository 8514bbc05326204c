package preflight_test

import (
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/preflight"
)

const preflightPlan = `
variable "source_url" {
  type      = string
  sensitive = true
}
variable "target_url" {
  type      = string
  sensitive = true
}

database "heroku" { url = var.source_url }
database "rds"    { url = var.target_url }

check "preflight" {
  uses   = "preflight"
  source = database.heroku
  target = database.rds
  assert {
    that    = "output.ok && output.errors == 0"
    message = "{{ filter(output.findings, {.severity == 'error'}) }}"
  }
  assert {
    that    = "none(output.findings, {.check == 'primary_key'})"
    message = "tables without a primary key: {{ map(filter(output.findings, {.check == 'primary_key'}), {.object}) }}"
  }
}
`

func TestPreflightEndToEnd(t *testing.T) {
	src, tgt := preflight.Source.FreshDB(t), preflight.Target.FreshDB(t)
	steptest.MustExec(t, src, "CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE audit_log (at timestamptz, line text)")
	res := e2etest.RunPlan(t, preflightPlan, "source_url="+src, "target_url="+tgt)
	sr := res.Steps["check.preflight"]
	if res.Status != event.StatusFailed || sr == nil || sr.Err == nil {
		t.Fatalf("status %s: %+v", res.Status, sr)
	}
	if msg := sr.Err.Error(); !strings.Contains(msg, "tables without a primary key") || !strings.Contains(msg, "public.audit_log") {
		t.Errorf("the failure does not name the table: %s", msg)
	}
	if len(sr.Assertions) != 2 || !sr.Assertions[0].Passed || sr.Assertions[1].Passed {
		t.Errorf("assertions %+v", sr.Assertions)
	}
	out := sr.Output.(map[string]any)
	if out["ok"] != true || out["warnings"] != int64(1) || out["source_version"] == "" {
		t.Errorf("output %v", out)
	}
}
