plan "heroku-to-rds" {}

check "drained" {
  uses     = "sleep"
  duration = "5s"
  rollback { # ERROR: Rollback in a check
    uses  = "exec"
    shell = "heroku maintenance:off"
  }
}
