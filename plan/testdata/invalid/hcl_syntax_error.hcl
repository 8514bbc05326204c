plan "heroku-to-rds" {
  description = "Move production to RDS"
}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on", "--app", "acme-prod"]
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "--jobs", "4" "-f", "dump"] # ERROR: Missing item separator
  depends_on = [step.maintenance_on]
}
