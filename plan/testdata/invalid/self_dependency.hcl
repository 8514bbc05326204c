plan "heroku-to-rds" {}

step "dump" { # ERROR: Dependency cycle
  uses       = "exec"
  command    = ["pg_dump", "-Fd", "-f", "dump"]
  depends_on = [step.dump]
}

step "restore" { # ERROR: Dependency cycle
  uses    = "exec"
  command = ["pg_restore", "dump"]
  assert {
    that = "steps.restore.exit_code == 0"
  }
  env = { PREVIOUS = step.restore.output.stdout }
}
