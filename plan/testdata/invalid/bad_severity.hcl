plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  assert {
    that     = "output.stderr == ''"
    severity = "warning" # ERROR: Invalid severity
  }
  assert {
    that     = "output.seconds < 3600"
    severity = "fatal" # ERROR: Invalid severity
  }
}
