plan "references" {}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on", "--app", "acme-prod"]
}

step "dump" {
  uses       = "exec"
  command    = ["pg_dump", "-Fd", "-f", "dump"]
  depends_on = [step.maintenance_on]
}

step "schema" {
  uses          = "exec"
  shell         = "pg_dump --schema-only > schema.sql && cat schema.sql"
  output_format = "text"
}

# reads the output of two steps: two implicit edges
step "restore" {
  uses  = "exec"
  shell = "pg_restore --jobs 4 dump # ${step.dump.output.stdout} ${step.schema.output.exit_code}"
}

check "drained" {
  uses     = "sleep"
  duration = "5s"
}

# when reads a check: an edge too
step "switch" {
  uses       = "exec"
  command    = ["heroku", "config:set", "DATABASE_URL=postgres://rds.example.com/app"]
  when       = check.drained.output.seconds >= 0
  depends_on = [step.restore]
}

step "maintenance_off" {
  uses       = "exec"
  command    = ["heroku", "maintenance:off", "--app", "acme-prod"]
  depends_on = [step.switch, check.drained]
}
