plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "dump"]
  depends_on = [
    step.dump.output.stdout, # ERROR: Invalid depends_on
    "step.dump", # ERROR: Invalid depends_on
    var.previous, # ERROR: Invalid depends_on
  ]
}

step "analyze" {
  uses       = "exec"
  command    = ["vacuumdb", "--analyze-only"]
  depends_on = [step.restor] # ERROR: Reference to undeclared step
}

step "switch" {
  uses       = "exec"
  command    = ["heroku", "config:set"]
  depends_on = step.analyze # ERROR: Invalid depends_on
}
