plan "kinds" {}

# A -var value that is not of its variable's type is named, with the type,
# and how one is written; never the HCL parser's "Variables not allowed".
variable "jobs" { # ERROR: Invalid value for variable
  type = number
}

variable "dry_run" { # ERROR: Invalid value for variable
  type = bool
}

variable "tables" { # ERROR: Invalid value for variable
  type = list(string)
}

variable "sizes" { # ERROR: Invalid value for variable
  type = map(number)
}

variable "pin" { # ERROR: Invalid value for variable
  type      = number
  sensitive = true
}

variable "ok" {
  type = number
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "--jobs", tostring(var.jobs), tostring(var.dry_run), join(",", var.tables), tostring(var.sizes["a"] + var.pin + var.ok)]
}
