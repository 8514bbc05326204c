# Move a production Postgres to another server with (almost) no downtime:
# planrun's fast copy fills the target as of a replication slot's snapshot,
# then logical replication keeps it in sync while the application still
# writes to the source. At cut-over writes stop for a few seconds: the
# target catches up, sequences are set, every row is verified, the app is
# switched, replication is removed.
#
#   planrun apply examples/zero-downtime/plan.hcl \
#     -var source_url=... -var target_url=... \
#     -var app_api=https://deploy.example.com/apps/shop -var app_token=...
#
# Without app_api the maintenance and switch calls are skipped (rehearsals).
# The source needs wal_level = logical (on RDS: rds.logical_replication = 1).

plan "zero-downtime" {
  description = "Move the app's Postgres with logical replication and a cut-over of seconds"
  on_failure  = "rollback"
  downtime {
    from = step.writes_off
    to   = step.writes_on
  }
}

variable "source_url" {
  type        = string
  sensitive   = true
  description = "The database to move (PostgreSQL 10+, wal_level = logical); its role needs REPLICATION (rds_replication on RDS) and must own the tables or be a superuser (rds_superuser)."
}

variable "target_url" {
  type        = string
  sensitive   = true
  description = "The new database, created empty, with sslmode=require for a managed server."
}

variable "source_conninfo" {
  type        = string
  default     = ""
  sensitive   = true
  description = "How the target server reaches the source, if not by source_url (a private address inside the VPC); empty: source_url."
}

variable "app_api" {
  type        = string
  default     = ""
  description = "Your platform's API for the app: PATCH {maintenance = bool} turns writes off and on, PATCH /config {DATABASE_URL} switches it. Empty skips these calls."
}

variable "app_token" {
  type        = string
  default     = ""
  sensitive   = true
  description = "A token for app_api."
}

variable "jobs" {
  type        = number
  default     = 4
  description = "Parallel jobs for the initial copy (tables and index builds) and the verification."
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
  description = "How long the target may take to catch up once writes are off: the window's main unknown. Rehearse it."
}

locals {
  platform = var.app_api != ""
  headers  = { Authorization = "Bearer ${var.app_token}" }
}

database "old" { url = var.source_url }
database "new" { url = var.target_url }

# 1. Before anything: what would make the move fail or lose data. Tables
#    without a primary key are errors here in effect: replicate refuses
#    them, because once published their UPDATEs and DELETEs would fail.
check "preflight" {
  uses   = "preflight"
  source = database.old
  target = database.new
  assert {
    that    = "output.errors == 0"
    message = "fix these first: {{ map(filter(output.findings, {.severity == 'error'}), {(.object == '' ? '' : .object + ': ') + .message + ' Fix: ' + .fix}) }}"
  }
  assert {
    that    = "len(filter(output.findings, {.check == 'primary_key'})) == 0"
    message = "tables without a key cannot be replicated: {{ map(filter(output.findings, {.check == 'primary_key'}), {.object}) }}"
  }
  assert {
    that     = "output.warnings == 0"
    severity = "warn"
    message  = "read these: {{ map(filter(output.findings, {.severity == 'warning'}), {(.object == '' ? '' : .object + ': ') + .message}) }}"
  }
}

# 2. The initial copy and replication, while the app runs: a publication
#    on the source, a replication slot whose snapshot planrun's copy reads
#    (schema, rows in parallel, indexes after the rows, sequences, large
#    objects), then a subscription on that slot streams every change
#    committed since. The step ends once the target has caught up. Its
#    rollback removes the replication (and the slot that holds WAL on the
#    source). From here until the cut-over, freeze schema changes: DDL is
#    not replicated.
#    clean: a re-run (apply again after a rollback) drops what the last
#    copy brought first; without it, start wants an empty target.
step "replicate" {
  uses            = "replicate"
  source          = database.old
  target          = database.new
  source_conninfo = var.source_conninfo
  initial_copy    = "copy"
  jobs            = var.jobs
  clean           = true
  max_wait        = var.sync_max_wait
  depends_on      = [check.preflight]
  assert {
    that     = "all(output.not_replicated, {.kind in ['sequences', 'schema_changes']})"
    severity = "warn"
    message  = "not replicated, copy these yourself at cut-over: {{ filter(output.not_replicated, {!(.kind in ['sequences', 'schema_changes'])}) }}"
  }
  rollback {
    uses   = "replicate"
    action = "stop"
    source = database.old
    target = database.new
  }
}

# 3. The target is in sync and stays so. Cut over when you choose:
#    apply waits here (--auto-approve passes).
step "go" {
  uses       = "approve"
  message    = "The target is in sync (${step.replicate.output.tables} tables). Stop writes and cut over now?"
  depends_on = [step.replicate]
}

# 4. The window opens: the app stops writing (maintenance mode, or its
#    workers scaled to zero).
step "writes_off" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = var.app_api
  headers    = local.headers
  json       = { maintenance = true }
  depends_on = [step.go]
  assert { that = "output.status < 300" }
  rollback {
    uses    = "http"
    method  = "PATCH"
    url     = var.app_api
    headers = local.headers
    json    = { maintenance = false }
  }
}

# 5. The barrier: everything the source committed is now on the target.
step "catch_up" {
  uses       = "replicate"
  action     = "catch_up"
  source     = database.old
  target     = database.new
  max_wait   = var.cutover_max_wait
  depends_on = [step.writes_off]
}

# 6. Sequences are not replicated: set them from the source, now that
#    nothing writes.
step "sequences" {
  uses       = "sequences"
  source     = database.old
  target     = database.new
  depends_on = [step.catch_up]
  assert { that = "all(output.sequences, {.after == .source_value})" }
}

# 7. Every row's content, both sides hashed in the databases, plus the
#    schema objects. Any difference rolls back: the app goes back to the
#    source, which nothing but the app ever wrote to.
check "verify" {
  uses       = "compare"
  source     = database.old
  target     = database.new
  data       = "checksum"
  jobs       = var.jobs
  depends_on = [step.sequences]
  assert {
    that    = "len(output.mismatched) == 0"
    message = "data differs in {{ output.mismatched }}: {{ filter(output.checksums, {!.match}) }}"
  }
  assert {
    that    = "len(output.sequences_behind) == 0"
    message = "sequences behind the source: {{ output.sequences_behind }}"
  }
  assert {
    that    = "len(output.indexes.missing) == 0 && len(output.constraints.missing) == 0 && len(output.foreign_keys.missing) == 0"
    message = "missing on the target: indexes {{ output.indexes.missing }}, constraints {{ output.constraints.missing }}, foreign keys {{ output.foreign_keys.missing }}"
  }
}

# 8. Point the app at the target; its rollback points it back.
step "switch" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = "${var.app_api}/config"
  headers    = local.headers
  json       = { DATABASE_URL = var.target_url }
  depends_on = [check.verify]
  assert { that = "output.status < 300" }
  rollback {
    uses    = "http"
    method  = "PATCH"
    url     = "${var.app_api}/config"
    headers = local.headers
    json    = { DATABASE_URL = var.source_url }
  }
}

# 9. The window closes.
step "writes_on" {
  uses       = "http"
  when       = local.platform
  method     = "PATCH"
  url        = var.app_api
  headers    = local.headers
  json       = { maintenance = false }
  depends_on = [step.switch]
  assert { that = "output.status < 300" }
}

# 10. Replication is no longer needed: drop the subscription, the slot (it
#    would hold WAL on the source forever) and the publication.
step "stop_replication" {
  uses       = "replicate"
  action     = "stop"
  source     = database.old
  target     = database.new
  depends_on = [step.writes_on]
}
