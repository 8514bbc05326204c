plan "heroku-to-rds" {}

check "dump_exists" {
  uses    = "exec" # ERROR: Step type not allowed in a check
  command = ["test", "-d", "dump"]
}

check "drained" {
  uses     = "sleep"
  duration = "5s"
}
