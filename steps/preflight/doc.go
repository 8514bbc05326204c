// Package preflight is the preflight step type: it finds, before the
// maintenance window, what would make a move fail or lose data — tool
// versions, row-level security, extensions missing on the target, tables
// without keys, large objects, locales. It is read-only and reports
// findings; it must not fix anything.
package preflight
