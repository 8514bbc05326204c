plan "heroku-to-rds" {}

variable "jobs" { # ERROR: Invalid value for variable
  type    = number
  default = 0
  validation {
    condition     = var.jobs >= 1
    error_message = "jobs must be at least 1."
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
  validation {
    condition     = contains(["us-east-1", "eu-west-1"], var.region)
    error_message = "region must be us-east-1 or eu-west-1."
  }
}

variable "format" { # ERROR: Invalid value for variable
  type    = string
  default = "tar"
  validation {
    condition     = contains(["directory", "custom"], var.format)
    error_message = "format must be directory or custom."
  }
}
