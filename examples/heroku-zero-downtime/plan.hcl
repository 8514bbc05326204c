# Move off Heroku Postgres (or any source that cannot publish: no
# superuser, no REPLICATION) with a cut-over of seconds. Triggers that the
# table owner can create log every change in a schema of planrun's own on
# the source (planrun_capture); planrun's copy fills the empty target in
# one snapshot; the log is replayed onto the target in commit order while
# the app keeps writing. Every row is verified while the app writes; at
# cut-over a write fence (a trigger that raises) stops the app's writes,
# the log drains, sequences are set, the rows changed since the verify
# are checked, the app is switched; then the capture is removed.
#
#   planrun apply examples/heroku-zero-downtime/plan.hcl \
#     -var source_url=... -var target_url=... \
#     -var heroku_app=shop -var heroku_api_token=...
#
# Without heroku_app the switch is skipped (rehearsals). The switch follows
# Heroku's attachment model, as examples/heroku-to-rds does: DATABASE_URL
# belongs to the add-on's DATABASE attachment, which the API will not
# overwrite.

plan "heroku-zero-downtime" {
  description = "Move a Heroku Postgres database with trigger-based capture and a cut-over of seconds"
  on_failure  = "rollback"
  downtime {
    from = step.cutover
    to   = step.switch
  }
}

variable "source_url" {
  type        = string
  sensitive   = true
  description = "The Heroku database (heroku config:get DATABASE_URL): its role owns the tables, which is all capture needs. PostgreSQL 13 or newer."
}

variable "target_url" {
  type        = string
  sensitive   = true
  description = "The new database, created empty, with sslmode=require for a managed server."
}

variable "heroku_app" {
  type        = string
  default     = ""
  description = "The Heroku app whose DATABASE_URL is switched; empty skips the switch (rehearsals)."
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
  description = "Parallel jobs for the initial copy and the verification."
  validation {
    condition     = var.jobs >= 1 && var.jobs <= 32
    error_message = "jobs must be between 1 and 32."
  }
}

variable "sync_max_wait" {
  type        = string
  default     = "12h"
  description = "How long the target may take to catch up with the changes made during the initial copy (the app is up meanwhile)."
}

variable "cutover_max_wait" {
  type        = string
  default     = "2m"
  description = "How long the log may take to drain once writes are fenced: the window's main unknown. Rehearse it."
}

locals {
  platform = var.heroku_app != ""
  app_url  = "${var.heroku_api}/apps/${var.heroku_app}"
  headers = {
    Authorization = "Bearer ${var.heroku_api_token}"
    Accept        = "application/vnd.heroku+json; version=3"
  }
  transient = [429, 500, 502, 503, 504]
  # The app's add-on attachments, as step.attachments read them, and the
  # one that owns DATABASE_URL today: the Heroku database.
  attached = local.platform ? [for a in step.attachments.output.json : { name = a.name, id = a.id, addon = a.addon.id }] : []
  source   = merge({ name = "", id = "", addon = "" }, [for a in local.attached : a if a.name == "DATABASE"]...)
}

database "heroku" { url = var.source_url }
database "new" { url = var.target_url }

# 1. Capture, then copy, while the app runs. start refuses, before it
#    creates anything, a table without a primary key (or a unique key on
#    NOT NULL columns), and names it. The copy reads one snapshot whose
#    pg_snapshot is where the replay starts: each change is in the copy or
#    replayed, never both. Its rollback removes the capture from the
#    source. From here until the cut-over, freeze schema changes: a DDL
#    on a captured table fails the sync (and the rollback cleans up).
#    clean: a re-run after a rollback drops what the last copy brought.
step "capture" {
  uses   = "capture"
  source = database.heroku
  target = database.new
  jobs   = var.jobs
  clean  = true
  rollback {
    uses   = "capture"
    action = "stop"
    source = database.heroku
    target = database.new
  }
}

# 2. Replay what the app wrote during the copy, until the target is less
#    than a second behind. Lag (rows, seconds) shows live.
step "sync" {
  uses       = "capture"
  action     = "catch_up"
  source     = database.heroku
  target     = database.new
  max_lag    = "1s"
  max_wait   = var.sync_max_wait
  depends_on = [step.capture]
  assert {
    that    = "output.caught_up"
    message = "still {{ output.lag_rows }} changes ({{ output.lag_seconds }}s) behind"
  }
}

# 3. Every row, while the app writes: the target is replayed up to a
#    snapshot of the source and held there while every captured table is
#    checksummed on both sides (the source in that snapshot). A difference
#    fails here, before any downtime. The cut-over then checks only the
#    rows changed since.
step "verify" {
  uses       = "capture"
  action     = "verify"
  source     = database.heroku
  target     = database.new
  jobs       = var.jobs
  depends_on = [step.sync]
  assert {
    that    = "len(output.differing) == 0"
    message = "the target differs: {{ output.differing }}"
  }
}

# 4. The verify held the replay: catch up again.
step "resync" {
  uses       = "capture"
  action     = "catch_up"
  source     = database.heroku
  target     = database.new
  max_lag    = "1s"
  max_wait   = var.sync_max_wait
  depends_on = [step.verify]
}

# 5. Cut over when you choose: apply waits here (--auto-approve passes).
step "go" {
  uses       = "approve"
  message    = "The target is ${step.resync.output.lag_seconds}s behind on ${length(step.resync.output.tables)} tables, all ${step.verify.output.verified_rows} rows verified. Fence the writes and cut over now?"
  depends_on = [step.resync]
}

# 6. The window opens: a trigger on every captured table makes writes fail
#    (SQLSTATE 25006, read-only transaction; reads go on). The log drains,
#    the definitions are checked again, the sequences are set, and the
#    rows changed since the verify are read by key on both sides and
#    compared (verify = "full" would checksum every table instead, in the
#    window). The fence stays on through the switch; the rollback lifts it.
step "cutover" {
  uses       = "capture"
  action     = "cutover"
  source     = database.heroku
  target     = database.new
  verify     = "changed"
  jobs       = var.jobs
  max_wait   = var.cutover_max_wait
  depends_on = [step.go]
  assert { that = "output.fenced && output.lag_rows == 0 && len(output.differing) == 0" }
  rollback {
    uses   = "capture"
    action = "unfence"
    source = database.heroku
    target = database.new
  }
}

# 7. The schema objects and the sequences, capture's own schema left out
#    (the data was checked by the cut-over). Any difference rolls back:
#    the fence is lifted, the capture removed, the app stays on Heroku.
check "objects" {
  uses            = "compare"
  source          = database.heroku
  target          = database.new
  counts          = false
  jobs            = var.jobs
  exclude_schemas = ["planrun_capture"]
  depends_on      = [step.cutover]
  assert {
    that    = "len(output.mismatched) == 0 && len(output.columns.missing) == 0 && len(output.indexes.missing) == 0 && len(output.constraints.missing) == 0 && len(output.foreign_keys.missing) == 0"
    message = "the target lacks {{ output.mismatched }} {{ output.columns.missing }} {{ output.indexes.missing }} {{ output.constraints.missing }} {{ output.foreign_keys.missing }}"
  }
  assert {
    that    = "len(output.sequences_behind) == 0"
    message = "sequences behind the source: {{ output.sequences_behind }}"
  }
}

# 8. Point the app at the target, as Heroku allows it: keep the Heroku
#    database attached under a second name (Heroku keeps an add-on only
#    while it is attached; a fresh one is also HEROKU_POSTGRESQL_<COLOR>),
#    detach it from DATABASE, then set DATABASE_URL, now a plain config
#    var; Heroku restarts the dynos. The rollbacks undo it newest first.
step "attachments" {
  uses       = "http"
  when       = local.platform
  url        = "${local.app_url}/addon-attachments"
  headers    = local.headers
  retry_on   = local.transient
  depends_on = [check.objects]
  assert {
    that    = "len(filter(output.json, {.name == 'DATABASE'})) == 1"
    message = "the app has no DATABASE attachment"
  }
}

step "keep_source" {
  uses     = "http"
  when     = local.platform && length([for a in local.attached : a if a.addon == local.source.addon]) < 2
  method   = "POST"
  url      = "${var.heroku_api}/addon-attachments"
  headers  = local.headers
  retry_on = local.transient
  json     = { addon = local.source.addon, app = var.heroku_app, name = "OLD_DATABASE" }
}

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

# 9. Remove the capture: triggers, functions, the log and the schema on
#    the source (the fence with them), the bookkeeping on the target.
step "stop" {
  uses       = "capture"
  action     = "stop"
  source     = database.heroku
  target     = database.new
  depends_on = [step.switch]
  assert { that = "len(output.dropped) == 2" }
}
