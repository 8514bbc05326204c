plan "heroku-to-rds" {
  description = "Move production from Heroku Postgres to RDS with a short maintenance window"
  on_failure  = "rollback"
  downtime {
    from = step.maintenance_on
    to   = step.maintenance_off
  }
}

variable "app" {
  type    = string
  default = "acme-prod"
}

variable "jobs" {
  type    = number
  default = 4
  validation {
    condition     = var.jobs >= 1
    error_message = "jobs must be at least 1"
  }
}

variable "source_url" {
  type      = string
  sensitive = true
  default   = "postgres://app:heroku-pw@heroku.example.com/app"
}

variable "target_url" {
  type      = string
  sensitive = true
  default   = "host=rds.example.com dbname=app user=app password=rds-pw"
}

locals {
  dump_dir = "${path.plan}/dump"
  jobs     = tostring(var.jobs)
}

database "heroku" {
  url = var.source_url
}

database "rds" {
  url = var.target_url
}

step "maintenance_on" {
  uses    = "exec"
  command = ["heroku", "maintenance:on", "--app", var.app]
  timeout = "1m"
  assert {
    that = "output.exit_code == 0"
  }
  rollback {
    uses    = "exec"
    command = ["heroku", "maintenance:off", "--app", var.app]
  }
}

step "dump" {
  uses       = "exec"
  command    = ["pg_dump", "-Fd", "--jobs", local.jobs, "-f", local.dump_dir, database.heroku.url]
  depends_on = [step.maintenance_on]
  timeout    = "2h"
  assert {
    that    = "output.exit_code == 0"
    message = "pg_dump failed: {{ output.stderr }}"
  }
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "--jobs", local.jobs, "--clean", "--if-exists", "-d", database.rds.url, local.dump_dir]
  env     = { DUMP_LOG = step.dump.output.stdout }
  timeout = "2h"
  retry {
    attempts = 2
    backoff  = "30s"
  }
}

check "drained" {
  uses       = "sleep"
  duration   = "5s"
  depends_on = [step.restore]
  assert {
    that     = "output.seconds >= 5"
    severity = "warn"
  }
}

step "switch" {
  uses  = "exec"
  shell = "heroku config:set --app ${var.app} DATABASE_URL=$URL"
  env   = { URL = database.rds.url }
  when  = var.jobs > 0
  assert {
    that = "checks.drained.seconds >= 5 && output.exit_code == 0"
  }
}

step "maintenance_off" {
  uses       = "exec"
  command    = ["heroku", "maintenance:off", "--app", var.app]
  depends_on = [step.switch]
}
