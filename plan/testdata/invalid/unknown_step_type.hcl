plan "heroku-to-rds" {}

step "maintenance_on" {
  uses    = "exce" # ERROR: Unknown step type
  command = ["heroku", "maintenance:on", "--app", "acme-prod"]
}

step "drain" {
  uses     = "slep" # ERROR: Unknown step type
  duration = "30s"
}

step "notify" {
  uses = "slack" # ERROR: Unknown step type
  text = "maintenance started"
}
