plan "heroku-to-rds" {}

locals {
  dump_dir  = "${local.work_dir}/dump" # ERROR: Cycle in locals
  work_dir  = "${local.base}/work"
  base      = trimsuffix(local.dump_dir, "/work/dump")
  log_file  = "${local.log_file}.log" # ERROR: Cycle in locals
}

step "dump" {
  uses    = "exec"
  command = ["pg_dump", "-Fd", "-f", local.dump_dir]
}
