// Package copy is the copy step type: it copies a database into another
// from one snapshot — the schema through pg_dump --snapshot, rows by
// parallel COPY streams (big tables in chunks of pages), each table's
// indexes and constraints as soon as its rows are in, large objects and
// sequences — and resumes after a crash from its state file.
//
// It writes only to the target; the source is read inside the snapshot.
// Another type may run a copy only through Prepare and Prepared.Run
// (replicate's initial copy does), never through its internals.
package copy
