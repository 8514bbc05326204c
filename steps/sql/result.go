package sql

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/planrun/planrun/internal/pgkit"
)

// sqlResult collects what the last statement returned.
type sqlResult struct {
	maxRows    int
	types      *pgtype.Map
	fields     []pgconn.FieldDescription
	columns    []string
	rows       []map[string]any
	truncated  bool
	tag        pgconn.CommandTag
	statements int
}

// runQuery runs one statement with the extended protocol: parameters, and
// results in the formats pgValue wants.
func (r *sqlResult) runQuery(ctx context.Context, conn *pgx.Conn, sql string, params []any) error {
	args := append([]any{pgkit.ResultFormats(conn.TypeMap())}, params...)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	r.start(rows.FieldDescriptions())
	for rows.Next() {
		if err := r.add(rows.RawValues()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.tag, r.statements = rows.CommandTag(), 1
	return nil
}

// runScript sends a script as one message (the simple protocol): PostgreSQL
// runs its statements in order and stops at the first error.
func (r *sqlResult) runScript(ctx context.Context, conn *pgx.Conn, script string) error {
	mrr := conn.PgConn().Exec(ctx, script)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		r.start(rr.FieldDescriptions())
		for rr.NextRow() {
			if err := r.add(rr.Values()); err != nil {
				_, _ = rr.Close()
				_ = mrr.Close()
				return err
			}
		}
		tag, err := rr.Close()
		if err != nil {
			_ = mrr.Close()
			return r.statementErr(script, err)
		}
		r.tag = tag
		r.statements++
	}
	if err := mrr.Close(); err != nil {
		return r.statementErr(script, err)
	}
	return nil
}

// statementErr says which statement of a script failed: the one after those
// that completed.
func (r *sqlResult) statementErr(script string, err error) error {
	n := r.statements + 1
	if sts := splitSQL(script); n <= len(sts) {
		return fmt.Errorf("statement %d (line %d): %w", n, sts[n-1].line, err)
	}
	return fmt.Errorf("statement %d: %w", n, err)
}

// runEach runs a script one statement at a time, each committing on its own:
// PostgreSQL runs a multi-statement message as one implicit transaction,
// which CREATE INDEX CONCURRENTLY and VACUUM refuse.
func (r *sqlResult) runEach(ctx context.Context, conn *pgx.Conn, script string) error {
	for _, st := range splitSQL(script) {
		done := r.statements
		r.statements = 0
		err := r.runScript(ctx, conn, st.text)
		r.statements += done
		if err != nil {
			var se *pgconn.PgError
			if errors.As(err, &se) {
				err = se
			}
			return fmt.Errorf("statement %d (line %d): %w", done+1, st.line, err)
		}
	}
	return nil
}

// start begins the result of a new statement: the output describes the
// last statement of a script, as psql shows only the last result of -c.
func (r *sqlResult) start(fields []pgconn.FieldDescription) {
	r.fields = fields
	r.rows = []map[string]any{}
	r.truncated = false
	r.columns = make([]string, len(fields))
	seen := map[string]int{}
	for i, f := range fields {
		name := f.Name
		if n := seen[f.Name]; n > 0 {
			name = f.Name + "_" + strconv.Itoa(n+1)
		}
		seen[f.Name]++
		r.columns[i] = name
	}
}

func (r *sqlResult) add(raw [][]byte) error {
	if len(r.rows) >= r.maxRows {
		r.truncated = true
		return nil
	}
	row := make(map[string]any, len(raw))
	for i, b := range raw {
		v, err := pgkit.Value(r.types, r.fields[i].DataTypeOID, r.fields[i].Format, b)
		if err != nil {
			return fmt.Errorf("column %s: %w", r.columns[i], err)
		}
		row[r.columns[i]] = v
	}
	r.rows = append(r.rows, row)
	return nil
}

func (r *sqlResult) output() *SqlOutput {
	out := &SqlOutput{
		Rows: r.rows, Columns: r.columns, Truncated: r.truncated, Statements: r.statements,
		Command: r.tag.String(), RowsAffected: r.tag.RowsAffected(),
	}
	if out.Rows == nil {
		out.Rows = []map[string]any{}
	}
	if out.Columns == nil {
		out.Columns = []string{}
	}
	return out
}
