plan "locals" {}

variable "app" {
  type    = string
  default = "acme-prod"
}

locals {
  # declared out of order on purpose: each local comes after what it reads
  dump_file = "${local.work_dir}/${var.app}.dump"
  work_dir  = "${local.base}/work"
  base      = path.plan
  label     = upper(var.app)
  argv      = ["pg_dump", "-Fc", "-f", local.dump_file]
}

step "dump" {
  uses    = "exec"
  command = local.argv
  env     = { LABEL = local.label }
}
