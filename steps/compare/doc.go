// Package compare is the compare step type: it checks that two databases
// hold the same thing — exact row counts or per-column checksums (narrowed
// by key range to the rows that differ), columns, indexes, constraints,
// sequences, extensions, views — each side read in one snapshot.
//
// It is read-only by construction (read-only transactions on both sides):
// it may run as a check and must never write, not even to a temporary
// table.
package compare
