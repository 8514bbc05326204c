plan "heroku-to-rds" {}

variable "source_url" { # ERROR: No value for required variable
  type      = string
  sensitive = true
}

variable "target_url" { # ERROR: No value for required variable
  type      = string
  sensitive = true
}

variable "jobs" {
  type    = number
  default = 4
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "--jobs", tostring(var.jobs), "-f", "dump", var.source_url]
}
