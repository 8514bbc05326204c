plan "heroku-to-rds" {}

variable "jobs" {
  type    = number
  default = 4
}

step "dump" {
  uses          = "exec"
  command       = "pg_dump -Fd -f dump" # ERROR: Incorrect argument type
  allow_failure = "sometimes" # ERROR: Incorrect argument type
  env           = { PGJOBS = var.jobs }
}

step "drain" {
  uses     = "sleep"
  duration = ["30s"] # ERROR: Incorrect argument type
}
