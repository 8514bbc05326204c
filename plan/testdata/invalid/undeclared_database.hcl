plan "heroku-to-rds" {}

variable "source_url" {
  type      = string
  default   = "postgres://app@heroku.example.com/app"
}

database "heroku" {
  url = var.source_url
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump", database.herku.url] # ERROR: Reference to undeclared database
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "-d", database.rds.url, "dump"] # ERROR: Reference to undeclared database
}
