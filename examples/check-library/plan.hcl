# Post-migration validation with shared check libraries:
#
#   planrun check examples/check-library/plan.hcl \
#     -var source_url=... -var target_url=...
#
# library "integrity" is built into planrun; library "shop" is a team's own,
# kept in ./checks (in real life, a git repository: see the README).

variable "source_url" {
  type      = string
  sensitive = true
}

variable "target_url" {
  type      = string
  sensitive = true
}

variable "max_open_orders" {
  type    = number
  default = 30000
}

database "old" { url = var.source_url }
database "new" { url = var.target_url }

library "integrity" {
  source = "planrun/postgres"
  inputs = { source = database.old, target = database.new }
}

library "shop" {
  source     = "./checks"
  inputs     = { target = database.new, max_open_orders = var.max_open_orders }
  depends_on = [library.integrity]
}
