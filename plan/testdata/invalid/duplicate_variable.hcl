plan "heroku-to-rds" {}

variable "jobs" {
  type    = number
  default = 4
}

variable "jobs" { # ERROR: Duplicate variable
  type    = number
  default = 8
}

locals {
  dump_dir = "dump"
}

locals {
  dump_dir = "dump2" # ERROR: Duplicate local
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "--jobs", tostring(var.jobs), "-f", local.dump_dir]
}
