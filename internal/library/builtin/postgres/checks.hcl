# planrun/postgres: the checks that prove a Postgres copy is whole.
#
#   library "integrity" {
#     source     = "planrun/postgres"
#     inputs     = { source = database.heroku, target = database.rds }
#     depends_on = [step.restore]
#   }

variable "source" {
  type        = object({ name = string, url = string })
  description = "The database copied from: database.NAME."
}

variable "target" {
  type        = object({ name = string, url = string })
  description = "The database copied to: database.NAME."
}

variable "jobs" {
  type        = number
  default     = 4
  description = "How many tables are counted or checksummed at once on each side."
}

check "row_counts" {
  uses   = "compare"
  source = var.source
  target = var.target
  jobs   = var.jobs
  assert {
    that    = "len(output.mismatched) == 0"
    message = "row counts differ: {{ map(filter(output.tables, {!.match}), {.schema + '.' + .name + ' ' + string(.source_rows) + ' vs ' + string(.target_rows)}) }}"
  }
}

check "data_checksums" {
  uses       = "compare"
  source     = var.source
  target     = var.target
  jobs       = var.jobs
  data       = "checksum"
  depends_on = [check.row_counts]
  assert {
    that    = "all(output.checksums, {.match})"
    message = "rows differ: {{ map(filter(output.checksums, {!.match}), {.schema + '.' + .name + ': ' + join(map(.differing_keys, {.kind + ' ' + .key}), ', ') + (.note == '' ? '' : ' (' + .note + ')')}) }}"
  }
}

check "schema_objects" {
  uses   = "compare"
  source = var.source
  target = var.target
  counts = false
  assert {
    that    = "len(output.missing_tables) == 0 && len(output.columns.missing) == 0"
    message = "missing tables {{ output.missing_tables }}, columns {{ output.columns.missing }}"
  }
  assert {
    that    = "len(output.indexes.missing) == 0 && len(output.indexes.invalid) == 0"
    message = "indexes missing {{ output.indexes.missing }}, invalid {{ output.indexes.invalid }}"
  }
  # A constraint that is NOT VALID on the source must stay NOT VALID (a
  # faithful copy); one that differs in validity shows up as changed.
  assert {
    that    = "len(output.constraints.missing) == 0 && len(output.constraints.changed) == 0"
    message = "constraints missing {{ output.constraints.missing }}, changed {{ output.constraints.changed }}"
  }
  assert {
    that     = "len(output.constraints.not_valid) == 0"
    severity = "warn"
    message  = "constraints NOT VALID on the target (their old rows were never checked): {{ output.constraints.not_valid }}"
  }
  assert {
    that    = "len(output.foreign_keys.missing) == 0"
    message = "foreign keys missing: {{ output.foreign_keys.missing }}"
  }
  assert {
    that    = "len(output.extensions.missing) == 0"
    message = "extensions missing: {{ output.extensions.missing }}"
  }
}

check "sequences" {
  uses   = "compare"
  source = var.source
  target = var.target
  counts = false
  assert {
    that    = "len(output.sequences_behind) == 0"
    message = "sequences behind the source (inserts would collide): {{ output.sequences_behind }}"
  }
}
