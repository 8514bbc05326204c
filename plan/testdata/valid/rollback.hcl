plan "rollback" {
  on_failure = "rollback"
  downtime {
    from = step.maintenance_on
    to   = step.maintenance_off
  }
}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on", "--app", "acme-prod"]
  rollback {
    uses    = "exec"
    command = ["heroku", "maintenance:off", "--app", "acme-prod"]
    timeout = "1m"
    retry {
      attempts = 5
    }
  }
}

step "switch" {
  uses       = "exec"
  shell      = "heroku config:set DATABASE_URL=$NEW_URL"
  env        = { NEW_URL = "postgres://rds.example.com/app" }
  depends_on = [step.maintenance_on]
  rollback {
    uses  = "exec"
    # a rollback may read its own step's output: not an edge
    shell = "heroku config:set DATABASE_URL=$OLD_URL # undoes: ${step.switch.output.stdout}"
    env   = { OLD_URL = "postgres://heroku.example.com/app" }
  }
}

step "maintenance_off" {
  uses       = "exec"
  command    = ["heroku", "maintenance:off", "--app", "acme-prod"]
  depends_on = [step.switch]
}
