package steps_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps"
)

// The Heroku-to-RDS runbook in small: dump, restore, the source moves on,
// sequences catch up, and inserts work on the target.
const migratePlan = `
plan "migrate" {}

variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}

database "heroku" { url = var.src }
database "rds"    { url = var.dst }

step "seed" {
  uses     = "sql"
  database = database.heroku
  script   = <<-SQL
    CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
    CREATE TABLE books (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, author_id int REFERENCES authors, title text);
    INSERT INTO authors (name) SELECT 'author ' || g FROM generate_series(1, 20) g;
    INSERT INTO books (author_id, title) SELECT 1 + g % 20, 'book ' || g FROM generate_series(1, 50) g;
  SQL
}

step "dump" {
  uses       = "pg_dump"
  database   = database.heroku
  path       = "${path.plan}/dump"
  jobs       = 2
  no_owner   = true
  no_acl     = true
  depends_on = [step.seed]
  assert { that = "output.bytes > 0 && output.tables == 2 && output.format == 'directory'" }
}

step "restore" {
  uses      = "pg_restore"
  database  = database.rds
  path      = step.dump.output.path
  jobs      = 2
  clean     = true
  if_exists = true
  no_owner  = true
  no_acl    = true
  assert { that = "output.errors == 0 && output.warnings == 0 && len(output.messages) == 0" }
}

step "source_moves_on" {
  uses       = "sql"
  database   = database.heroku
  query      = "SELECT setval('authors_id_seq', 500) AS v"
  depends_on = [step.restore]
}

step "sequences" {
  uses       = "sequences"
  source     = database.heroku
  target     = database.rds
  schemas    = ["public"]
  depends_on = [step.source_moves_on]
  assert { that = "output.updated == 1 && all(output.sequences, {.after == .source_value})" }
  assert { that = "one(output.sequences, {.table == 'authors' && .column == 'id' && .before == 20 && .after == 500})" }
}

step "insert" {
  uses       = "sql"
  database   = database.rds
  script     = "INSERT INTO authors (name) VALUES ('new'); INSERT INTO books (author_id, title) VALUES (1, 'new') RETURNING id"
  depends_on = [step.sequences]
  assert { that = "output.rows[0].id == 51" }
}

check "same_counts" {
  uses       = "sql"
  database   = database.rds
  query      = "SELECT (SELECT count(*) FROM authors) AS authors, (SELECT max(id) FROM authors) AS top"
  depends_on = [step.insert]
  assert { that = "output.rows[0].authors == 21 && output.rows[0].top == 501" }
}
`

func TestPgDumpRestoreSequencesEndToEnd(t *testing.T) {
	src, dst := steps.Source.FreshDB(t), steps.Target.FreshDB(t)
	res := e2etest.RunPlan(t, migratePlan, "src="+src, "dst="+dst)
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status = %s: %v", res.Status, res.Err)
	}
	dump := e2etest.OutputOf(t, res, "step.dump")
	if path, _ := dump["path"].(string); !strings.HasSuffix(path, "/dump") || dump["pg_dump_version"] == "" {
		t.Errorf("dump output = %v", dump)
	}
	for addr, sr := range res.Steps {
		raw, _ := json.Marshal(sr.Output)
		if s := string(raw); strings.Contains(s, steps.Source.Password) || strings.Contains(s, steps.Target.Password) {
			t.Errorf("%s's output shows a password: %s", addr, s)
		}
	}
}
