// Package sequences is the sequences step type: it sets the target's
// sequences to the source's values (or past the largest key in each table)
// so that inserts work after a copy. It writes nothing but sequence values.
package sequences
