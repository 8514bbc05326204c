# The shop team's own checks: business invariants that must hold after any
# migration of the shop database.

variable "target" {
  type        = object({ name = string, url = string })
  description = "The migrated database."
}

variable "max_open_orders" {
  type        = number
  default     = 1000
  description = "More open orders than this means the migration resurrected old ones."
}

check "open_orders" {
  uses     = "sql"
  database = var.target
  query    = "SELECT count(*) AS open FROM app.orders WHERE status IN ('pending', 'paid')"
  assert {
    that    = "output.rows[0].open <= var.max_open_orders"
    message = "{{ output.rows[0].open }} open orders"
  }
}

check "every_order_has_a_customer" {
  uses     = "sql"
  database = var.target
  query    = "SELECT count(*) AS orphans FROM app.orders o LEFT JOIN app.customers c ON c.id = o.customer_id WHERE c.id IS NULL"
  assert { that = "output.rows[0].orphans == 0" }
}

check "invoices_add_up" {
  uses       = "sql"
  database   = var.target
  query      = "SELECT count(*) AS bad FROM billing.invoices i JOIN app.orders o ON o.id = i.order_id WHERE i.amount < 0"
  depends_on = [check.every_order_has_a_customer]
  assert {
    that     = "output.rows[0].bad == 0"
    severity = "warn"
    message  = "{{ output.rows[0].bad }} invoices with a negative amount"
  }
}
