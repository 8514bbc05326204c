plan "pause" {}

variable "pause" {
  default = "5 minutes"
}

step "drain" {
  uses     = "sleep"
  duration = "30 seconds" # ERROR: Invalid argument value
}

step "settle" {
  uses     = "sleep"
  duration = var.pause # ERROR: Invalid argument value
}

step "report" {
  uses          = "exec"
  command       = ["true"]
  output_format = "yaml" # ERROR: Invalid argument value
}

step "later" {
  uses     = "sleep"
  duration = "${step.report.output.exit_code}s" # known only when report has run: checked then
}
