plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  assert {
    that = "output.bytes > 0" # ERROR: Unsupported attribute
  }
}

check "counts" {
  uses     = "row_counts"
  database = database.heroku
  assert {
    that    = "all(output.tables, {.rows > 0}) && output.tables.rows > 0" # ERROR: Unsupported attribute
    message = "empty tables: {{ filter(output.tables, {.rows == 0}) }} out of {{ output.count }}" # ERROR: Unsupported attribute
  }
}

database "heroku" {
  url = "postgres://app@heroku.example.com/app"
}
