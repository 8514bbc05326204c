package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/steps/steptype"
)

// SequencesArgs are the arguments of sequences.
type SequencesArgs struct {
	Source  *Database `hcl:"source" doc:"The database whose sequences are copied."`
	Target  *Database `hcl:"target" doc:"The database whose sequences are set."`
	Schemas []string  `hcl:"schemas,optional" doc:"Only the sequences in these schemas (default: every schema but the system ones)."`
	Mode    string    `hcl:"mode,optional" doc:"source (default): copy each sequence's state from the source exactly, even if that is lower; max: set sequences owned by a column (serial, identity) past the column's largest value on the target, never lower than they are, and copy the others from the source."`
}

// SequencesOutput is the output of sequences.
type SequencesOutput struct {
	Sequences []SequenceState `json:"sequences" doc:"Every sequence, with its value on the source and on the target before and after."`
	Updated   int             `json:"updated" doc:"How many target sequences changed."`
}

// SequenceState is one sequence. Values are last_value as PostgreSQL keeps
// it: for a sequence never used, its start.
type SequenceState struct {
	Schema      string `json:"schema" doc:"The sequence's schema."`
	Name        string `json:"name" doc:"The sequence's name."`
	Table       string `json:"table" doc:"The table whose column owns the sequence (serial, identity), or \"\"."`
	Column      string `json:"column" doc:"The owning column, or \"\"."`
	SourceValue int64  `json:"source_value" doc:"last_value on the source."`
	Before      int64  `json:"before" doc:"last_value on the target before."`
	After       int64  `json:"after" doc:"last_value on the target after."`
}

var sequencesType = steptype.Def[SequencesArgs, SequencesOutput]{
	Summary:   "Sets the target's sequences (serial, identity and free-standing) to the source's values, or past the largest key in each table, so that inserts work after a copy.",
	Fn:        runSequences,
	ArgChecks: map[string]func(string) error{"mode": steptype.CheckOneOf("", "source", "max")},
}

// seqInfo is a sequence and its state on one side.
type seqInfo struct {
	schema, name               string
	tableSchema, table, column string // the owning column, if any
	increment                  int64
	value                      int64 // last_value
	called                     bool  // is_called: false means nextval returns value itself
}

// key is the quoted name, for SQL.
func (s *seqInfo) key() string { return qualified(s.schema, s.name) }

func (s *seqInfo) String() string { return s.schema + "." + s.name }

// next is what nextval would return.
func (s *seqInfo) next() int64 {
	if s.called {
		return s.value + s.increment
	}
	return s.value
}

func runSequences(ctx context.Context, env *steptype.Env, a *SequencesArgs) (*SequencesOutput, error) {
	out, err := syncSequences(ctx, env, a)
	if err != nil {
		return nil, fmt.Errorf("sequences: %w", err)
	}
	return out, nil
}

func syncSequences(ctx context.Context, env *steptype.Env, a *SequencesArgs) (*SequencesOutput, error) {
	if a.Source == nil || a.Target == nil {
		return nil, errors.New("give source and target databases")
	}
	mode := a.Mode
	if mode == "" {
		mode = "source"
	}
	if mode != "source" && mode != "max" {
		return nil, fmt.Errorf("mode is source or max, not %q", mode)
	}
	src, err := connect(ctx, env, a.Source, true)
	if err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	dst, err := connect(ctx, env, a.Target, false)
	if err != nil {
		return nil, err
	}
	defer dst.Close(ctx)

	srcSeqs, err := readSequences(ctx, src, a.Schemas)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", a.Source.Name, err)
	}
	dstSeqs, err := readSequences(ctx, dst, a.Schemas)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", a.Target.Name, err)
	}
	byKey := map[string]*seqInfo{}
	for _, s := range dstSeqs {
		byKey[s.key()] = s
	}
	var missing []string
	for _, s := range srcSeqs {
		if byKey[s.key()] == nil {
			missing = append(missing, s.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d sequences of %s are missing on %s: %s", len(missing), a.Source.Name, a.Target.Name, strings.Join(missing, ", "))
	}

	out := &SequencesOutput{Sequences: make([]SequenceState, 0, len(srcSeqs))}
	batch := &pgx.Batch{}
	for _, s := range srcSeqs {
		d := byKey[s.key()]
		value, called := s.value, s.called
		if mode == "max" && d.table != "" {
			if value, called, err = pastLargestKey(ctx, dst, d); err != nil {
				return nil, fmt.Errorf("target %s: %w", a.Target.Name, err)
			}
		}
		out.Sequences = append(out.Sequences, SequenceState{
			Schema: s.schema, Name: s.name, Table: d.table, Column: d.column,
			SourceValue: s.value, Before: d.value, After: value,
		})
		if value == d.value && called == d.called {
			continue
		}
		// setval's third argument keeps a never-used sequence unused:
		// nextval then returns value itself.
		batch.Queue("SELECT pg_catalog.setval($1::regclass, $2, $3)", d.key(), value, called)
		out.Updated++
	}
	if batch.Len() > 0 {
		if err := dst.SendBatch(ctx, batch).Close(); err != nil {
			return nil, fmt.Errorf("target %s: setval: %w", a.Target.Name, err)
		}
	}
	env.Logf("%d of %d sequences updated on %s", out.Updated, len(out.Sequences), a.Target.Name)
	return out, nil
}

// pastLargestKey returns the state that makes a column-owned sequence hand
// out a value beyond every value in its column, unless it already would.
// Descending sequences go below the smallest value instead.
func pastLargestKey(ctx context.Context, conn *pgx.Conn, s *seqInfo) (int64, bool, error) {
	agg := "max"
	if s.increment < 0 {
		agg = "min"
	}
	var extreme *int64
	table := qualified(s.tableSchema, s.table)
	q := fmt.Sprintf("SELECT %s(%s)::bigint FROM %s", agg, quoteIdent(s.column), table)
	if err := conn.QueryRow(ctx, q).Scan(&extreme); err != nil {
		return 0, false, fmt.Errorf("%s(%s) of %s: %w", agg, s.column, table, err)
	}
	switch {
	case extreme == nil: // an empty table: whatever the sequence says is fine
		return s.value, s.called, nil
	case s.increment > 0 && s.next() > *extreme, s.increment < 0 && s.next() < *extreme:
		return s.value, s.called, nil
	}
	return *extreme, true, nil
}

// readSequences lists the sequences of a database with their owning
// columns and current state. Sequences that belong to an extension are left
// out: the extension manages them.
func readSequences(ctx context.Context, conn *pgx.Conn, schemas []string) ([]*seqInfo, error) {
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
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*seqInfo, error) {
		s := &seqInfo{}
		return s, r.Scan(&s.schema, &s.name, &s.tableSchema, &s.table, &s.column, &s.increment)
	})
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	// last_value and is_called live in each sequence itself; one round trip
	// reads them all.
	batch := &pgx.Batch{}
	for _, s := range seqs {
		batch.Queue("SELECT last_value, is_called FROM " + s.key()).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&s.value, &s.called); err != nil {
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
