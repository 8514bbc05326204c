plan "assertions" {}

variable "min_rows" {
  type    = number
  default = 1
}

database "heroku" {
  url = "postgres://app@heroku.example.com/app"
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  assert {
    that    = "output.exit_code == 0 && output.stderr == \"\""
    message = "pg_dump failed ({{ output.exit_code }}): {{ output.stderr }}"
  }
  assert {
    that     = "output.seconds < 3600"
    severity = "warn"
    message  = "the dump took {{ output.seconds }}s"
  }
}

check "counts" {
  uses     = "row_counts"
  database = database.heroku
  assert {
    that    = "all(output.tables, {.rows >= var.min_rows}) && output.total > 0"
    message = "empty tables: {{ filter(output.tables, {.rows < var.min_rows}) }}"
  }
  assert {
    that = "output.tables[0].name != ''"
  }
}

# Nothing in its arguments reads dump or counts: the edges come from the
# assertions alone.
step "report" {
  uses    = "exec"
  command = ["true"]
  assert {
    that    = "steps.dump.exit_code == 0 && len(checks.counts.tables) > 0"
    message = "dump took {{ steps.dump.seconds }}s"
  }
}
