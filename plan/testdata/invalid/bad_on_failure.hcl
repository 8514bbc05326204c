plan "heroku-to-rds" {
  on_failure = "retry" # ERROR: Invalid on_failure
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}
