step "hello" {
  uses    = "exec"
  command = ["echo", "hello"]
}
