plan "heroku-to-rds" {}

step "maintenance_on" { # ERROR: Dependency cycle
  uses       = "exec"
  command    = ["heroku", "maintenance:on"]
  depends_on = [step.switch]
}

step "dump" {
  uses       = "exec"
  command    = ["pg_dump", "-Fd", "-f", "dump"]
  depends_on = [step.maintenance_on]
}

step "switch" {
  uses    = "exec"
  command = ["heroku", "config:set", "DATABASE_URL=${step.dump.output.stdout}"]
}

step "maintenance_off" {
  uses       = "exec"
  command    = ["heroku", "maintenance:off"]
  depends_on = [step.switch]
}
