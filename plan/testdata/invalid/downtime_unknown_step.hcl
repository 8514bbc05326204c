plan "heroku-to-rds" {
  on_failure = "rollback"
  downtime {
    from = step.maintenance_on
    to   = step.maintenance_of # ERROR: Unknown downtime step
  }
}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on"]
}

step "maintenance_off" {
  uses       = "exec"
  command    = ["heroku", "maintenance:off"]
  depends_on = [step.maintenance_on]
}
