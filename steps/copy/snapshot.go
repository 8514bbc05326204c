package copy

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// copySnapshot is the coordinating transaction on the source. It exports
// its snapshot, and every connection that reads the source for the copy
// (pg_dump, the data workers, the large-object workers) imports it, so
// that the schema, every table and every large object are read as of one
// instant however long the copy takes and whatever the application writes
// meanwhile. The snapshot lives as long as this transaction: it is kept
// open until the last read.
type copySnapshot struct {
	conn  *pgx.Conn
	tx    pgx.Tx
	id    string // pg_export_snapshot()
	major int
	db    *pgkit.Database
}

// openCopySnapshot opens the coordinating transaction, in a snapshot of its
// own, or in the one imported ("" for none: see copyOptions.importSnapshot).
func openCopySnapshot(ctx context.Context, env *steptype.Env, db *pgkit.Database, imported string) (*copySnapshot, error) {
	conn, err := copyConnect(ctx, env, db, true, nil)
	if err != nil {
		return nil, err
	}
	s := &copySnapshot{conn: conn, db: db}
	if s.major, err = pgkit.ServerMajor(ctx, conn); err != nil {
		pgkit.Close(ctx, conn)
		return nil, fmt.Errorf("source %s: %w", db.Name, err)
	}
	if s.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}); err != nil {
		pgkit.Close(ctx, conn)
		return nil, fmt.Errorf("source %s: begin the snapshot transaction: %w", db.Name, err)
	}
	if imported != "" {
		if _, err := s.tx.Exec(ctx, pgkit.SetSnapshotSQL(imported)); err != nil {
			pgkit.Close(ctx, conn)
			return nil, fmt.Errorf("source %s: import snapshot %s: %w", db.Name, imported, err)
		}
	}
	// Exported again (also when imported): the workers and pg_dump import
	// this one, which lives as long as this transaction.
	if err := s.tx.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&s.id); err != nil {
		pgkit.Close(ctx, conn)
		// A copy in several snapshots could tear rows that the
		// application wrote in between: no snapshot, no copy.
		return nil, fmt.Errorf("source %s: export a snapshot (a pooler in transaction mode, or a standby without hot_standby_feedback, cannot): %w", db.Name, err)
	}
	return s, nil
}

// lock takes ACCESS SHARE locks on the tables, as pg_dump does: DROP,
// ALTER and TRUNCATE then wait for the copy instead of breaking it, while
// reads and writes go on.
func (s *copySnapshot) lock(ctx context.Context, tables []*copyTable) error {
	const batch = 1000 // keeps each statement a reasonable size
	for i := 0; i < len(tables); i += batch {
		names := make([]string, 0, batch)
		for _, t := range tables[i:min(i+batch, len(tables))] {
			names = append(names, t.qualified())
		}
		if _, err := s.tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS SHARE MODE"); err != nil {
			return fmt.Errorf("source %s: lock the tables: %w", s.db.Name, err)
		}
	}
	return nil
}

// close ends the transaction, and with it the snapshot.
func (s *copySnapshot) close(ctx context.Context) {
	pgkit.Close(ctx, s.conn)
}

// sourceInSnapshot connects a worker to the source, in a read-only
// transaction in the copy's snapshot; done rolls it back and disconnects.
func (c *copyRun) sourceInSnapshot(ctx context.Context) (conn *pgx.Conn, tx pgx.Tx, done func(), err error) {
	conn, err = copyConnect(ctx, c.env, c.o.src, true, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if tx, err = pgkit.BeginInSnapshot(ctx, conn, c.snap.id); err != nil {
		pgkit.Close(ctx, conn)
		return nil, nil, nil, fmt.Errorf("source %s: %w", c.o.src.Name, err)
	}
	return conn, tx, func() {
		pgkit.Rollback(ctx, tx)
		pgkit.Close(ctx, conn)
	}, nil
}
