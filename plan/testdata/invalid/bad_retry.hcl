plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  retry {
    attempts = 0 # ERROR: Invalid attempts
  }
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "dump"]
  retry {
    attempts = 2.5 # ERROR: Invalid attempts
  }
}

step "analyze" {
  uses    = "exec"
  command = ["vacuumdb", "--analyze-only"]
  retry {
    attempts = "three" # ERROR: Invalid attempts
  }
}
