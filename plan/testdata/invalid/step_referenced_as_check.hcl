plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
}

check "dump_ok" {
  uses     = "sleep"
  duration = "1s"
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", check.dump.output.stdout] # ERROR: Reference to undeclared check
  env     = { WAITED = step.dump_ok.output.seconds } # ERROR: Reference to undeclared step
}
