plan "retry-timeout" {
  on_failure = "stop"
}

step "restore" {
  uses    = "exec"
  command = ["pg_restore", "--jobs", "4", "dump"]
  timeout = "2h"
  retry {
    attempts    = 3
    backoff     = "30s"
    max_backoff = "5m"
  }
}

step "analyze" {
  uses       = "exec"
  command    = ["vacuumdb", "--analyze-only"]
  timeout    = "90m"
  depends_on = [step.restore]
}

step "quick" {
  uses = "exec"
  command = ["true"]
  retry {
    attempts = 2
  }
}
