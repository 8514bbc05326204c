plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "dump"]
  assert {
    that = "output.exit_code == 0 && steps.dumb.exit_code == 0" # ERROR: Reference to undeclared step
  }
  assert {
    that = "checks.unknown.seconds < 60" # ERROR: Reference to undeclared check
  }
  assert {
    that = "var.strict == false || output.stderr == ''" # ERROR: Reference to undeclared input variable
  }
}
