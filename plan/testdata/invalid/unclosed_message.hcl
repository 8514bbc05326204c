plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  assert {
    that    = "output.exit_code == 0"
    message = "pg_dump failed with {{ output.exit_code: {{ output.stderr }}" # ERROR: Invalid message
  }
  assert {
    that    = "output.stderr == ''"
    message = "pg_dump warned: {{ output.stderr" # ERROR: Invalid message
  }
}
