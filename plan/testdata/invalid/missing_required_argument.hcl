plan "heroku-to-rds" {}

step "drain" { # ERROR: Missing required argument
  uses = "sleep"
}

step "dump" { # ERROR: Missing required argument
  command = ["pg_dump", "-Fd", "-f", "dump"]
}
