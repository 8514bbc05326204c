plan "heroku-to-rds" {}

database "heroku" {
  url = "postgres://app@heroku.example.com/app"
}

check "source_counts" {
  uses     = "row_counts"
  database = database.heroku
}

step "report" {
  uses    = "exec"
  command = ["echo", check.source_counts.output.tables.name] # ERROR: Unsupported attribute
  env = {
    FIRST = check.source_counts.output.tables[0].name
    TOTAL = check.source_counts.output.total
  }
}
