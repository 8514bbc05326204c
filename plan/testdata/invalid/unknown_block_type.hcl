plan "nightly-archive" {
  on_failure = "stop"
}

stage "archive" { # ERROR: Unsupported block type
  uses    = "exec"
  command = ["./archive.sh"]
}

steps "cleanup" { # ERROR: Unsupported block type
  uses  = "exec"
  shell = "rm -rf ./tmp"
}
