// Package capture is the capture step type: trigger-based change capture
// for a zero-downtime move off a source that cannot publish (Heroku
// Postgres: no superuser, no REPLICATION). The table owner's rights are
// enough. start creates, in a schema of its own on the source
// (planrun_capture), a change log and triggers on the chosen tables, then
// fills the target with copy's exported entry point (copy.Prepare, then
// Prepared.Run) in one snapshot whose pg_snapshot is the first replay
// boundary; catch_up replays the log onto the target; verify, while the
// application writes, replays the target to a snapshot of the source,
// holds it there and checksums every table on both sides (compare, the
// source in that snapshot); cutover fences the source's writes, drains
// the log, sets the sequences and checks the rows changed since the
// verify (kept on the target as touched, read by key on both sides);
// unfence lifts the fence; stop (also start's rollback) removes
// everything. capture reaches into copy (the initial copy) and compare
// (the checksums), their exported entry points only.
//
// Commit order. A log row carries its transaction's id (xid8). The replay
// proceeds in epochs, each the difference of two snapshots of the source,
// S0 then S1: it applies the rows whose transaction is visible in S1 and
// not in S0 (pg_visible_in_snapshot), ordered by log position. Every
// transaction of an epoch committed before every transaction of the next
// (visible in S1 means committed before S1 was taken; not visible means
// committed after, or not yet), so epochs follow commit order; inside an
// epoch, two transactions that touched the same row did so one after
// the other (the second waited for the first's row lock, then logged a
// later position), so position order is their order. A bigserial alone is
// not: a position handed out early may commit late. The first S0 is the
// copy's own snapshot, so a change is in the copy or replayed, never both
// and never neither. The target keeps S0 (and, inside a long epoch, S1
// and the last position applied) in the same transaction as the changes
// it applied: a crash loses nothing and applies nothing twice. A batch may
// end inside an epoch, and so inside a source transaction; at the end of
// every epoch the target is the source as of S1, transactionally whole.
//
// The write fence (cutover) is a BEFORE statement trigger on every
// captured table that raises SQLSTATE 25006: creating it waits for the
// transactions that have written to the tables, so once it commits no
// writer is left, and the next epoch drains the log.
package capture
