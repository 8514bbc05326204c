plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "--jobs", "4", step.dumb.output.stdout] # ERROR: Reference to undeclared step
}

step "analyze" {
  uses  = "exec"
  shell = "psql -c 'ANALYZE' # after ${step.restor.output.exit_code}" # ERROR: Reference to undeclared step
}
