plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", step.dump.output.path] # ERROR: Unsupported attribute
  env     = { EXIT = step.dump.output.exitcode } # ERROR: Unsupported attribute
  stdin   = step.dump.result # ERROR: Unsupported attribute
}
