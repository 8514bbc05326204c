plan "heroku-to-rds" {}

step "dump" { # ERROR: Dependency cycle
  uses       = "exec"
  command    = ["pg_dump", "-Fd", "-f", "dump"]
  depends_on = [step.maintenance_on]
}

step "maintenance_on" {
  uses  = "exec"
  shell = "heroku maintenance:on # after ${step.dump.output.exit_code}"
}
