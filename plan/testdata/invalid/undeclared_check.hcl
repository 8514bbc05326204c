plan "heroku-to-rds" {}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "--jobs", "4", "dump"]
}

check "same_data" {
  uses     = "sleep"
  duration = "1s"
}

step "switch" {
  uses  = "exec"
  shell = "heroku config:set DATABASE_URL=... # ${check.same_dta.output.seconds}" # ERROR: Reference to undeclared check
}
