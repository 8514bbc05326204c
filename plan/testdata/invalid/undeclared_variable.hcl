plan "heroku-to-rds" {}

variable "jobs" {
  type    = number
  default = 4
}

variable "app" {
  type    = string
  default = "acme-prod"
}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on", "--app", var.ap] # ERROR: Reference to undeclared input variable
}

step "dump" {
  uses    = "exec"
  shell   = "pg_dump --jobs ${var.jbos} -Fd -f dump" # ERROR: Reference to undeclared input variable
  when    = var.dry_run == false # ERROR: Reference to undeclared input variable
}
