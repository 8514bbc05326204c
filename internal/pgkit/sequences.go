package pgkit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Sequence is a sequence and its state on one side.
type Sequence struct {
	Schema, Name               string
	TableSchema, Table, Column string // the owning column, if any
	Increment                  int64
	Value                      int64 // last_value
	Called                     bool  // is_called: false means nextval returns value itself
}

// Key is the quoted name, for SQL.
func (s *Sequence) Key() string { return Qualified(s.Schema, s.Name) }

func (s *Sequence) String() string { return s.Schema + "." + s.Name }

// ReadSequences lists the sequences of a database with their owning
// columns and current state. Sequences that belong to an extension are left
// out: the extension manages them.
func ReadSequences(ctx context.Context, conn *pgx.Conn, schemas []string) ([]*Sequence, error) {
	const q = `
SELECT n.nspname, c.relname, coalesce(tn.nspname, ''), coalesce(t.relname, ''), coalesce(a.attname, ''), s.seqincrement
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.relkind = 'S'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
  AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1))
ORDER BY 1, 2`
	if schemas == nil {
		schemas = []string{}
	}
	rows, err := conn.Query(ctx, q, schemas)
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Sequence, error) {
		s := &Sequence{}
		return s, r.Scan(&s.Schema, &s.Name, &s.TableSchema, &s.Table, &s.Column, &s.Increment)
	})
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	// last_value and is_called live in each sequence itself; one round trip
	// reads them all.
	batch := &pgx.Batch{}
	for _, s := range seqs {
		batch.Queue("SELECT last_value, is_called FROM " + s.Key()).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&s.Value, &s.Called); err != nil {
				return fmt.Errorf("read %s: %w", s, err)
			}
			return nil
		})
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	return seqs, nil
}

// Next is what nextval would return.
func (s *Sequence) Next() int64 {
	if s.Called {
		return s.Value + s.Increment
	}
	return s.Value
}
