package sql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps/sql"
)

const sqlPlan = `
plan "sql" {}

variable "src" {
  type      = string
  sensitive = true
}
variable "ids" {
  type    = list(number)
  default = [1, 3]
}

database "src" { url = var.src }

step "setup" {
  uses     = "sql"
  database = database.src
  script   = <<-SQL
    CREATE TABLE t (id int PRIMARY KEY, name text, doc jsonb, at timestamptz);
    INSERT INTO t VALUES (1, 'a', '{"k": 1}', '2024-05-06 07:08:09+00'), (2, 'b', NULL, NULL), (3, 'c', NULL, NULL);
  SQL
  assert { that = "output.statements == 2 && output.rows_affected == 3 && output.command == 'INSERT 0 3'" }
}

step "query" {
  uses       = "sql"
  database   = database.src
  query      = "SELECT id, name, doc, at FROM t WHERE id = ANY($1) AND name <> $2 ORDER BY id"
  params     = [var.ids, "zzz"]
  max_rows   = 1
  depends_on = [step.setup]
  assert { that = "output.rows[0].id == 1 && output.rows[0].doc.k == 1 && output.rows[0].at == '2024-05-06T07:08:09Z'" }
  assert { that = "output.truncated && output.rows_affected == 2 && output.columns == ['id', 'name', 'doc', 'at']" }
}

step "next" {
  uses     = "sql"
  database = database.src
  query    = "SELECT $1::int + 1 AS next"
  params   = [step.query.output.rows[0].id]
  assert { that = "output.rows[0].next == 2" }
}

check "count" {
  uses       = "sql"
  database   = database.src
  query      = "SELECT count(*) AS n FROM t"
  depends_on = [step.next]
  assert { that = "output.rows[0].n == 3" }
}
`

func TestSQLEndToEnd(t *testing.T) {
	url := sql.Source.FreshDB(t)
	res := e2etest.RunPlan(t, sqlPlan, "src="+url)
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status = %s: %v", res.Status, res.Err)
	}
	if rows := e2etest.OutputOf(t, res, "step.query")["rows"].([]any); len(rows) != 1 {
		t.Errorf("rows = %v", rows)
	}
}

// A check that tries to write fails, and writes nothing.
func TestSQLEndToEndCheckIsReadOnly(t *testing.T) {
	url := sql.Source.FreshDB(t)
	res := e2etest.RunPlan(t, `
variable "src" { type = string }
database "src" { url = var.src }

step "setup" {
  uses     = "sql"
  database = database.src
  script   = "CREATE TABLE t (id int)"
}

check "sneaky" {
  uses       = "sql"
  database   = database.src
  script     = "INSERT INTO t VALUES (1)"
  depends_on = [step.setup]
}
`, "src="+url)
	sr := res.Steps["check.sneaky"]
	if res.Status != event.StatusFailed || sr == nil || sr.Err == nil || !strings.Contains(sr.Err.Error(), "read-only transaction") {
		t.Fatalf("status %s, check %+v", res.Status, sr)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows = %d (%v), want 0", n, err)
	}
}
