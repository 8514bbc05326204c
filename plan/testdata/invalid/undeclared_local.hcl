plan "heroku-to-rds" {}

locals {
  dump_dir = "${path.plan}/dump"
  app      = "acme-prod"
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", local.dump_dri] # ERROR: Reference to undeclared local value
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "--jobs", "4", local.dump_dir]
  env     = { APP = local.application } # ERROR: Reference to undeclared local value
}
