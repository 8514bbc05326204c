plan "variables" {
  description = "Every kind of variable: types, defaults, validation, sensitive values"
}

variable "app" {
  type        = string
  description = "The Heroku app"
  default     = "acme-prod"
}

variable "jobs" {
  type    = number
  default = 4
  validation {
    condition     = var.jobs >= 1 && var.jobs <= 64
    error_message = "jobs is between 1 and 64."
  }
}

variable "tables" {
  type    = list(string)
  default = ["users", "orders"]
}

variable "flags" {
  type    = map(bool)
  default = { analyze = true, vacuum = false }
}

variable "target" {
  type = object({ host = string, port = number })
  default = {
    host = "rds.example.com"
    port = 5432
  }
}

variable "source_url" {
  type      = string
  sensitive = true
}

variable "anything" {
  default = "untyped"
}

database "heroku" {
  url = var.source_url
}

step "dump" {
  uses = "exec"
  command = concat(
    ["pg_dump", "-Fd", "--jobs", tostring(var.jobs), "-f", "dump"],
    [for t in var.tables : "--table=${t}"],
  )
  env = {
    PGURL  = database.heroku.url
    TARGET = "${var.target.host}:${var.target.port}"
    APP    = var.app
  }
  when = var.flags.analyze
}
