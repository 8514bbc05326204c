plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

step "dump" { # ERROR: Duplicate step
  uses    = "exec"
  command = ["pg_dump", "-Fc", "-f", "dump.custom"]
}

check "dump" { # ERROR: Duplicate check
  uses     = "sleep"
  duration = "1s"
}
