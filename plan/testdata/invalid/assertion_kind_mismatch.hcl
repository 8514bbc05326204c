plan "kinds" {}

step "run" {
  uses    = "exec"
  command = ["true"]
  assert { that = "output.exit_code == '0'" } # ERROR: Comparison of different kinds
  assert { that = "output.stdout != 0" } # ERROR: Comparison of different kinds
  assert { that = "output.exit_code == 0 && output.stdout == 'ok' && output.stderr != nil" }
}

step "later" {
  uses    = "exec"
  command = ["true"]
  assert { that = "'x' != steps.run.stdout && 1 <= steps.run.exit_code" }
  assert { that = "steps.run.exit_code >= '1'" } # ERROR: Comparison of different kinds
}
