plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  timeout = "2 hours" # ERROR: Invalid duration
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "dump"]
  timeout = 7200 # ERROR: Invalid value
  retry {
    attempts = 3
    backoff  = "-5s" # ERROR: Invalid duration
  }
}
