plan "heroku-to-rds" {}

variable "jobs" {
  type    = number
  default = 4
}

variable "app" {
  type = string
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "--jobs", tostring(var.jobs), "-f", "dump-${var.app}"]
}
