plan "heroku-to-rds" {}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", "dump"]
  assert {
    that = "output.exit_code == 0 &&& output.stderr == ''" # ERROR: Invalid assertion
  }
  assert {
    that    = "len(output.stdout) > " # ERROR: Invalid assertion
    message = "nothing was written"
  }
  assert { that = "len(output.stdout)" } # ERROR: Invalid assertion
}
