# Move a production Postgres from Heroku to AWS RDS with a short maintenance
# window: pre-flight checks while the app still runs, then maintenance on,
# dump, parallel restore, sequences, validation, switch, maintenance off.
# Any failure rolls back: maintenance off, the app left on the old database.
#
#   planrun apply examples/heroku-to-rds/plan.hcl \
#     -var source_url=... -var target_url=... -var heroku_app=myapp -var heroku_api_token=...
#
# Without heroku_app the platform calls are skipped (rehearsals, the demo).
# The platform calls are http steps; each retries the API's transient
# answers (429, 5xx, no answer) with backoff, and a refusal fails with the
# API's message.

plan "heroku-to-rds" {
  description = "Move the app's Postgres from Heroku to RDS in a short maintenance window"
  on_failure  = "rollback"
  downtime {
    from = step.maintenance_on
    to   = step.maintenance_off
  }
}

variable "source_url" {
  type        = string
  sensitive   = true
  description = "The Heroku database (heroku config:get DATABASE_URL)."
}

variable "target_url" {
  type        = string
  sensitive   = true
  description = "The RDS database, with sslmode=require."
}

variable "heroku_app" {
  type        = string
  default     = ""
  description = "The Heroku app; empty skips the platform calls."
}

variable "heroku_api_token" {
  type        = string
  default     = ""
  sensitive   = true
  description = "A Heroku API token (heroku auth:token)."
}

variable "heroku_api" {
  type        = string
  default     = "https://api.heroku.com"
  description = "The Heroku Platform API (a test server in rehearsals)."
}

variable "jobs" {
  type        = number
  default     = 4
  description = "Parallel dump, restore and count jobs: about the number of cores of the smaller server."
  validation {
    condition     = var.jobs >= 1 && var.jobs <= 32
    error_message = "jobs must be between 1 and 32."
  }
}

variable "verify" {
  type        = string
  default     = "counts"
  description = "How check.verify compares the data: counts (exact row counts) or checksum (every row's content, slower)."
  validation {
    condition     = contains(["counts", "checksum"], var.verify)
    error_message = "verify is counts or checksum."
  }
}

locals {
  platform = var.heroku_app != ""
  app_url  = "${var.heroku_api}/apps/${var.heroku_app}"
  headers = {
    Authorization = "Bearer ${var.heroku_api_token}"
    Accept        = "application/vnd.heroku+json; version=3"
  }
  transient = [429, 500, 502, 503, 504]
  # How many of the tables given ($1) have row-level security not FORCE'd.
  unforced = "SELECT count(*) AS unforced FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE format('%I.%I', n.nspname, c.relname) = ANY($1) AND NOT c.relforcerowsecurity"
  # The app's add-on attachments, as step.attachments read them.
  attached = local.platform ? [for a in step.attachments.output.json : { name = a.name, id = a.id, addon = a.addon.id }] : []
  # The attachment that owns DATABASE_URL today: the Heroku database.
  source = merge({ name = "", id = "", addon = "" }, [for a in local.attached : a if a.name == "DATABASE"]...)
}

database "heroku" { url = var.source_url }
database "rds" { url = var.target_url }

# 0. Row-level security that the owner is subject to (FORCE) would hide
#    rows from pg_dump, and Heroku's role cannot have BYPASSRLS: lift
#    FORCE for the move, as the owner, and put it back afterwards (step
#    force_rls; the rollback puts it back too).
step "forced_rls" {
  uses     = "sql"
  database = database.heroku
  query    = "SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND c.relforcerowsecurity AND pg_has_role(c.relowner, 'USAGE') ORDER BY 1"
}

step "no_force_rls" {
  uses     = "sql"
  when     = length(step.forced_rls.output.rows) > 0
  database = database.heroku
  script   = join(";\n", [for r in step.forced_rls.output.rows : "ALTER TABLE ${r.t} NO FORCE ROW LEVEL SECURITY"])
  rollback {
    uses     = "sql"
    database = database.heroku
    script   = join(";\n", [for r in step.forced_rls.output.rows : "ALTER TABLE ${r.t} FORCE ROW LEVEL SECURITY"])
  }
}

# 1. Before the window: what would make the move fail or lose data.
check "preflight" {
  uses       = "preflight"
  source     = database.heroku
  target     = database.rds
  depends_on = [step.no_force_rls]
  assert {
    that    = "output.errors == 0"
    message = "fix these before the window: {{ map(filter(output.findings, {.severity == 'error'}), {(.object == '' ? '' : .object + ': ') + .message + ' Fix: ' + .fix}) }}"
  }
  assert {
    that     = "output.warnings == 0"
    severity = "warn"
    message  = "read these: {{ map(filter(output.findings, {.severity == 'warning'}), {(.object == '' ? '' : .object + ': ') + .message}) }}"
  }
}

# 2. Still before the window: the token works, and DATABASE_URL belongs to
#    the add-on attached as DATABASE (Heroku refuses to set it then).
step "platform" {
  uses       = "http"
  when       = local.platform
  url        = "${local.app_url}/addon-attachments/DATABASE"
  headers    = local.headers
  retry_on   = local.transient
  depends_on = [check.preflight]
}

# 3. The window opens: the app answers with its maintenance page.
step "maintenance_on" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = local.app_url
  headers    = local.headers
  retry_on   = local.transient
  json       = { maintenance = true }
  depends_on = [step.platform]
  assert { that = "output.json.maintenance == true" }
  rollback {
    uses     = "http"
    method   = "PATCH"
    url      = local.app_url
    headers  = local.headers
    retry_on = local.transient
    json     = { maintenance = false }
  }
}

# 4. Dump in parallel (directory format), while no one writes.
step "dump" {
  uses       = "pg_dump"
  database   = database.heroku
  format     = "directory"
  jobs       = var.jobs
  path       = "dump"
  overwrite  = true
  no_owner   = true
  no_acl     = true
  depends_on = [step.maintenance_on]
  timeout    = "2h"
  assert {
    that    = "output.bytes > 0 && output.tables > 0"
    message = "the dump is empty"
  }
}

# 5. Restore in parallel; RDS has no Heroku roles, hence no owners or grants.
step "restore" {
  uses      = "pg_restore"
  database  = database.rds
  path      = step.dump.output.path
  jobs      = var.jobs
  clean     = true
  if_exists = true
  no_owner  = true
  no_acl    = true
  timeout   = "4h"
  retry {
    attempts = 2
    backoff  = "30s"
  }
  assert {
    that    = "output.errors == 0"
    message = "pg_restore reported errors: {{ filter(output.messages, {.level == 'error'}) }}"
  }
}

# 6. pg_restore sets sequences from the dump; this makes sure every one
#    (serial, identity, free-standing) matches the source exactly.
step "sequences" {
  uses       = "sequences"
  source     = database.heroku
  target     = database.rds
  depends_on = [step.restore]
  assert { that = "all(output.sequences, {.after == .source_value})" }
}

# 7. Validate: same rows, same schema objects, sequences not behind.
check "verify" {
  uses       = "compare"
  source     = database.heroku
  target     = database.rds
  jobs       = var.jobs
  data       = var.verify
  depends_on = [step.sequences]
  assert {
    that    = "len(output.mismatched) == 0"
    message = "data differs in {{ output.mismatched }}: {{ filter(output.tables, {!.match}) }} {{ filter(output.checksums, {!.match}) }}"
  }
  assert {
    that    = "len(output.indexes.missing) == 0 && len(output.indexes.invalid) == 0"
    message = "indexes missing {{ output.indexes.missing }}, invalid {{ output.indexes.invalid }}"
  }
  assert {
    that    = "len(output.foreign_keys.missing) == 0 && len(output.constraints.missing) == 0"
    message = "foreign keys missing {{ output.foreign_keys.missing }}, constraints missing {{ output.constraints.missing }}"
  }
  assert {
    that    = "len(output.sequences_behind) == 0"
    message = "sequences behind the source: {{ output.sequences_behind }}"
  }
  assert {
    that    = "len(output.extensions.missing) == 0 && len(output.views.missing) == 0 && len(output.missing_tables) == 0"
    message = "missing: extensions {{ output.extensions.missing }}, views {{ output.views.missing }}, tables {{ output.missing_tables }}"
  }
}

# 7b. What pg_dump does not carry: the source database's own settings
#     (Heroku sets search_path = "$user", public, heroku_ext, where its
#     extensions live): set on the target database, as its owner.
step "db_settings" {
  uses       = "sql"
  database   = database.heroku
  query      = "SELECT unnest(setconfig) AS s FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
  depends_on = [step.restore]
}

step "carry_settings" {
  uses       = "sql"
  when       = length(step.db_settings.output.rows) > 0
  database   = database.rds
  script     = join(";\n", [for r in step.db_settings.output.rows : "DO $do$ BEGIN EXECUTE format('ALTER DATABASE %I SET %s', current_database(), $set$ ${r.s} $set$); END $do$"])
  depends_on = [step.db_settings]
}

# 7c. FORCE again on both sides, and proof that it is on.
step "force_rls" {
  uses       = "sql"
  when       = length(step.forced_rls.output.rows) > 0
  database   = database.rds
  script     = join(";\n", [for r in step.forced_rls.output.rows : "ALTER TABLE ${r.t} FORCE ROW LEVEL SECURITY"])
  depends_on = [check.verify]
}

step "force_rls_source" {
  uses       = "sql"
  when       = length(step.forced_rls.output.rows) > 0
  database   = database.heroku
  script     = join(";\n", [for r in step.forced_rls.output.rows : "ALTER TABLE ${r.t} FORCE ROW LEVEL SECURITY"])
  depends_on = [check.verify]
}

check "rls_forced_target" {
  uses       = "sql"
  database   = database.rds
  query      = local.unforced
  params     = [[for r in step.forced_rls.output.rows : r.t]]
  depends_on = [step.force_rls]
  assert { that = "output.rows[0].unforced == 0" }
}

check "rls_forced_source" {
  uses       = "sql"
  database   = database.heroku
  query      = local.unforced
  params     = [[for r in step.forced_rls.output.rows : r.t]]
  depends_on = [step.force_rls_source]
  assert { that = "output.rows[0].unforced == 0" }
}

# 8. The app's attachments, read again in this window (a rollback
#    attaches the Heroku database anew).
step "attachments" {
  uses       = "http"
  when       = local.platform
  url        = "${local.app_url}/addon-attachments"
  headers    = local.headers
  retry_on   = local.transient
  depends_on = [check.verify, check.rls_forced_target, check.rls_forced_source, step.carry_settings]
  assert {
    that    = "len(filter(output.json, {.name == 'DATABASE'})) == 1"
    message = "the app has no DATABASE attachment any more"
  }
}

# 9. Keep the Heroku database: Heroku keeps an add-on only while it is
#    attached somewhere, and a fresh one is attached as DATABASE and as
#    HEROKU_POSTGRESQL_<COLOR> too. Attached as OLD_DATABASE if it has no
#    second name; a rollback leaves that (another name for the same
#    database), and a later run finds it.
step "keep_source" {
  uses     = "http"
  when     = local.platform && length([for a in local.attached : a if a.addon == local.source.addon]) < 2
  method   = "POST"
  url      = "${var.heroku_api}/addon-attachments"
  headers  = local.headers
  retry_on = local.transient
  json     = { addon = local.source.addon, app = var.heroku_app, name = "OLD_DATABASE" }
}

# 10. Point the app at RDS: detach the Heroku database from DATABASE, then
#     set DATABASE_URL, now a plain config var. Heroku restarts the dynos.
step "detach_source" {
  uses       = "http"
  when       = local.platform
  method     = "DELETE"
  url        = "${var.heroku_api}/addon-attachments/${local.source.id}"
  headers    = local.headers
  retry_on   = local.transient
  depends_on = [step.keep_source]
  rollback {
    uses     = "http"
    method   = "POST"
    url      = "${var.heroku_api}/addon-attachments"
    headers  = local.headers
    retry_on = local.transient
    json     = { addon = local.source.addon, app = var.heroku_app, name = "DATABASE" }
  }
}

step "switch" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = "${local.app_url}/config-vars"
  headers    = local.headers
  retry_on   = local.transient
  json       = { DATABASE_URL = var.target_url }
  keep_body  = false # the answer holds every config var of the app
  depends_on = [step.detach_source]
  # The rollback removes the plain variable, so that the add-on can own it again.
  rollback {
    uses      = "http"
    method    = "PATCH"
    url       = "${local.app_url}/config-vars"
    headers   = local.headers
    retry_on  = local.transient
    json      = { DATABASE_URL = null }
    keep_body = false
  }
}

# 11. The window closes.
step "maintenance_off" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = local.app_url
  headers    = local.headers
  retry_on   = local.transient
  json       = { maintenance = false }
  depends_on = [step.switch]
  assert { that = "output.json.maintenance == false" }
}
