plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  comand  = ["pg_dump", "-Fd", "-f", "dump"] # ERROR: Unsupported argument
  timeout = "1h"
}

step "drain" {
  uses     = "sleep"
  duration = "30s"
  jitter   = "5s" # ERROR: Unsupported argument
}

step "restore" {
  uses       = "exec"
  shell      = "pg_restore --jobs 4 dump"
  dependson  = [step.dump] # ERROR: Unsupported argument
}
