package sequences

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// SequencesArgs are the arguments of sequences.
type SequencesArgs struct {
	Source  *pgkit.Database `hcl:"source" doc:"The database whose sequences are copied."`
	Target  *pgkit.Database `hcl:"target" doc:"The database whose sequences are set."`
	Schemas []string        `hcl:"schemas,optional" doc:"Only the sequences in these schemas (default: every schema but the system ones)."`
	Mode    string          `hcl:"mode,optional" doc:"source (default): copy each sequence's state from the source exactly, even if that is lower; max: set sequences owned by a column (serial, identity) past the column's largest value on the target, never lower than they are, and copy the others from the source."`
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

var Type = steptype.Def[SequencesArgs, SequencesOutput]{
	Summary:   "Sets the target's sequences (serial, identity and free-standing) to the source's values, or past the largest key in each table, so that inserts work after a copy.",
	Fn:        Run,
	ArgChecks: map[string]func(string) error{"mode": steptype.CheckOneOf("", "source", "max")},
}

func Run(ctx context.Context, env *steptype.Env, a *SequencesArgs) (*SequencesOutput, error) {
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
	src, err := pgkit.Connect(ctx, env, a.Source, true)
	if err != nil {
		return nil, steptype.Refused(err)
	}
	defer src.Close(ctx)
	dst, err := pgkit.Connect(ctx, env, a.Target, false)
	if err != nil {
		return nil, steptype.Refused(err)
	}
	defer dst.Close(ctx)

	srcSeqs, err := pgkit.ReadSequences(ctx, src, a.Schemas)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", a.Source.Name, err)
	}
	dstSeqs, err := pgkit.ReadSequences(ctx, dst, a.Schemas)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", a.Target.Name, err)
	}
	byKey := map[string]*pgkit.Sequence{}
	for _, s := range dstSeqs {
		byKey[s.Key()] = s
	}
	var missing []string
	for _, s := range srcSeqs {
		if byKey[s.Key()] == nil {
			missing = append(missing, s.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d sequences of %s are missing on %s: %s", len(missing), a.Source.Name, a.Target.Name, strings.Join(missing, ", "))
	}

	out := &SequencesOutput{Sequences: make([]SequenceState, 0, len(srcSeqs))}
	batch := &pgx.Batch{}
	for _, s := range srcSeqs {
		d := byKey[s.Key()]
		value, called := s.Value, s.Called
		if mode == "max" && d.Table != "" {
			if value, called, err = pastLargestKey(ctx, dst, d); err != nil {
				return nil, fmt.Errorf("target %s: %w", a.Target.Name, err)
			}
		}
		out.Sequences = append(out.Sequences, SequenceState{
			Schema: s.Schema, Name: s.Name, Table: d.Table, Column: d.Column,
			SourceValue: s.Value, Before: d.Value, After: value,
		})
		if value == d.Value && called == d.Called {
			continue
		}
		// setval's third argument keeps a never-used sequence unused:
		// nextval then returns value itself.
		batch.Queue("SELECT pg_catalog.setval($1::regclass, $2, $3)", d.Key(), value, called)
		out.Updated++
	}
	if batch.Len() > 0 {
		if err := dst.SendBatch(ctx, batch).Close(); err != nil {
			return nil, fmt.Errorf("target %s: setval: %w", a.Target.Name, err)
		}
	}
	env.Logf("%d of %s updated on %s", out.Updated, plural.Of(len(out.Sequences), "sequence"), a.Target.Name)
	return out, nil
}

// pastLargestKey returns the state that makes a column-owned sequence hand
// out a value beyond every value in its column, unless it already would.
// Descending sequences go below the smallest value instead.
func pastLargestKey(ctx context.Context, conn *pgx.Conn, s *pgkit.Sequence) (int64, bool, error) {
	agg := "max"
	if s.Increment < 0 {
		agg = "min"
	}
	var extreme *int64
	table := pgkit.Qualified(s.TableSchema, s.Table)
	q := fmt.Sprintf("SELECT %s(%s)::bigint FROM %s", agg, pgkit.QuoteIdent(s.Column), table)
	if err := conn.QueryRow(ctx, q).Scan(&extreme); err != nil {
		return 0, false, fmt.Errorf("%s(%s) of %s: %w", agg, s.Column, table, err)
	}
	switch {
	case extreme == nil: // an empty table: whatever the sequence says is fine
		return s.Value, s.Called, nil
	case s.Increment > 0 && s.Next() > *extreme, s.Increment < 0 && s.Next() < *extreme:
		return s.Value, s.Called, nil
	}
	return *extreme, true, nil
}
