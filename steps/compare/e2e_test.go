package compare_test

import (
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/compare"
)

const comparePlan = `
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

check "same_data" {
  uses            = "compare"
  source          = database.heroku
  target          = database.rds
  jobs            = 2
  exclude_schemas = ["scratch"]
  assert {
    that    = "all(output.tables, {.source_rows == .target_rows})"
    message = "row counts differ: {{ output.mismatched }}"
  }
  assert { that = "len(output.indexes.missing) == 0" }
  assert { that = "all(output.sequences, {.target_value >= .source_value})" }
  assert { that = "len(output.constraints.not_valid) == 0" }
}
`

func TestCompareEndToEnd(t *testing.T) {
	schema := `CREATE TABLE orders (id serial PRIMARY KEY, total int NOT NULL);
		INSERT INTO orders (total) SELECT i FROM generate_series(1, 10) i;
		CREATE TABLE items (id serial PRIMARY KEY, order_id int REFERENCES orders);
		CREATE SCHEMA scratch; CREATE TABLE scratch.junk (i int)`
	src, tgt := compare.Source.FreshDB(t), compare.Target.FreshDB(t)
	steptest.MustExec(t, src, schema)
	steptest.MustExec(t, tgt, schema+"; INSERT INTO scratch.junk VALUES (1)") // excluded: no difference
	vars := []string{"source_url=" + src, "target_url=" + tgt}

	res := e2etest.RunPlan(t, comparePlan, vars...)
	sr := res.Steps["check.same_data"]
	if res.Status != event.StatusSucceeded || sr == nil {
		t.Fatalf("identical: status %s: %v", res.Status, res.Err)
	}
	out := sr.Output.(map[string]any)
	if out["equal"] != true || len(out["tables"].([]any)) != 2 {
		t.Errorf("output %v", out)
	}

	steptest.MustExec(t, tgt, "DELETE FROM orders WHERE id = 10")
	res = e2etest.RunPlan(t, comparePlan, vars...)
	sr = res.Steps["check.same_data"]
	if res.Status != event.StatusFailed || sr.Err == nil {
		t.Fatalf("a row missing: status %s, err %v", res.Status, sr.Err)
	}
	if msg := sr.Err.Error(); !strings.Contains(msg, "row counts differ") || !strings.Contains(msg, "public.orders") {
		t.Errorf("the failure does not name the table: %s", msg)
	}
	if len(sr.Assertions) != 4 || sr.Assertions[0].Passed || !sr.Assertions[1].Passed || !sr.Assertions[2].Passed || !sr.Assertions[3].Passed {
		t.Errorf("assertions %+v", sr.Assertions)
	}
}

const compareChecksumPlan = `
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

check "same_rows" {
  uses   = "compare"
  source = database.heroku
  target = database.rds
  data   = "checksum"
  assert {
    that    = "all(output.checksums, {.match})"
    message = "data differs: {{ map(filter(output.checksums, {!.match}), {.name + ': ' + join(map(.differing_keys, {.kind + ' ' + .key}), ', ')}) }}"
  }
}
`

func TestCompareChecksumEndToEnd(t *testing.T) {
	schema := `CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10,2) NOT NULL, note text);
		INSERT INTO orders (total) SELECT i / 4.0 FROM generate_series(1, 1000) i`
	src, tgt := compare.Source.FreshDB(t), compare.Target.FreshDB(t)
	steptest.MustExec(t, src, schema)
	steptest.MustExec(t, tgt, schema)
	vars := []string{"source_url=" + src, "target_url=" + tgt}

	res := e2etest.RunPlan(t, compareChecksumPlan, vars...)
	if sr := res.Steps["check.same_rows"]; res.Status != event.StatusSucceeded || sr == nil {
		t.Fatalf("identical: status %s: %v", res.Status, res.Err)
	}

	steptest.MustExec(t, tgt, "UPDATE orders SET total = 1.50 WHERE id = 700; DELETE FROM orders WHERE id = 800")
	res = e2etest.RunPlan(t, compareChecksumPlan, vars...)
	sr := res.Steps["check.same_rows"]
	if res.Status != event.StatusFailed || sr.Err == nil {
		t.Fatalf("rows changed: status %s, err %v", res.Status, sr.Err)
	}
	if msg := sr.Err.Error(); !strings.Contains(msg, "orders: changed id=700, missing id=800") {
		t.Errorf("the failure does not name the rows: %s", msg)
	}
}
