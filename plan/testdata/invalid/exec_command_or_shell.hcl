plan "backup" {}

step "both" {
  uses    = "exec"
  command = ["pg_dump", "-Fc"]
  shell   = "pg_dump -Fc > dump" # ERROR: Invalid combination of arguments
}

step "neither" { # ERROR: Invalid combination of arguments
  uses = "exec"
  dir  = "/tmp"
}
