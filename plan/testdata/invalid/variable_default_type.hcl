plan "heroku-to-rds" {}

variable "jobs" {
  type    = number
  default = "four" # ERROR: Invalid default value
}

variable "tables" {
  type    = list(string)
  default = { users = true } # ERROR: Invalid default value
}

variable "verbose" {
  type    = bool
  default = "yes" # ERROR: Invalid default value
}
