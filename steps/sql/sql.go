package sql

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// SqlArgs are the arguments of sql.
type SqlArgs struct {
	Database    *pgkit.Database `hcl:"database" doc:"The database to run the SQL on."`
	Query       string          `hcl:"query,optional" doc:"One SQL statement, which may use $1, $2, ... bound to params. Give one of query, script or file."`
	Params      cty.Value       `hcl:"params,optional" doc:"Values for $1, $2, ... in query: strings, numbers, booleans, nulls, lists (sent as arrays) or objects (sent as JSON)."`
	Script      string          `hcl:"script,optional" doc:"Several SQL statements separated by semicolons; the output describes the last one."`
	File        string          `hcl:"file,optional" doc:"A file of SQL statements, relative to the plan's directory, run like script."`
	Transaction *bool           `hcl:"transaction,optional" doc:"Run script or file in one transaction (default true); false runs each statement on its own, as CREATE INDEX CONCURRENTLY and VACUUM need."`
	MaxRows     *int            `hcl:"max_rows,optional" doc:"Keep at most this many rows in the output (default 10000); output.truncated says when there were more."`
}

// SqlOutput is the output of sql.
type SqlOutput struct {
	Rows         []map[string]any `json:"rows" doc:"The rows returned, each a map from column name to value (numbers, strings, booleans, lists, JSON values, null; times as ISO 8601 strings)."`
	Columns      []string         `json:"columns" doc:"The column names, in order; a repeated name gets a _2, _3 ... suffix."`
	RowsAffected int64            `json:"rows_affected" doc:"Rows returned, inserted, updated or deleted, from the command tag."`
	Command      string           `json:"command" doc:"The command tag, such as \"SELECT 3\" or \"UPDATE 0\"."`
	Truncated    bool             `json:"truncated" doc:"True when more than max_rows rows were returned and the rest were dropped."`
	Statements   int              `json:"statements" doc:"How many statements ran."`
}

const sqlDefaultMaxRows = 10000

var Type = steptype.Def[SqlArgs, SqlOutput]{
	Summary:    "Runs SQL (one statement with parameters, a script or a .sql file) on a database and returns its rows; in a check it runs in a read-only transaction.",
	IsReadOnly: true,
	Fn:         runSQL,
}

func runSQL(ctx context.Context, env *steptype.Env, a *SqlArgs) (*SqlOutput, error) {
	params, err := sqlParams(a)
	if err != nil {
		return nil, fmt.Errorf("sql: %w", err)
	}
	script, isScript, err := sqlText(env, a)
	if err != nil {
		return nil, fmt.Errorf("sql: %w", err)
	}
	maxRows := sqlDefaultMaxRows
	if a.MaxRows != nil {
		if *a.MaxRows < 0 {
			return nil, errors.New("sql: max_rows must not be negative")
		}
		maxRows = *a.MaxRows
	}
	conn, err := pgkit.Connect(ctx, env, a.Database, env.ReadOnly)
	if err != nil {
		return nil, steptype.Refused(fmt.Errorf("sql: %w", err))
	}
	defer conn.Close(ctx)

	res := &sqlResult{maxRows: maxRows, types: conn.TypeMap()}
	switch {
	case env.ReadOnly:
		err = sqlReadOnly(ctx, conn, func() error {
			if isScript {
				return res.runScript(ctx, conn, script)
			}
			return res.runQuery(ctx, conn, script, params)
		}, script, isScript)
	case !isScript:
		err = res.runQuery(ctx, conn, script, params) // one statement commits on its own
	case a.Transaction == nil || *a.Transaction:
		err = sqlInTx(ctx, conn, func() error { return res.runScript(ctx, conn, script) })
	default:
		err = res.runEach(ctx, conn, script)
	}
	if err != nil {
		return nil, fmt.Errorf("sql %s: %w", a.Database.Name, err)
	}
	return res.output(), nil
}

// sqlText returns the SQL to run and whether it is a script.
func sqlText(env *steptype.Env, a *SqlArgs) (string, bool, error) {
	given := 0
	for _, s := range []string{a.Query, a.Script, a.File} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return "", false, errors.New("give exactly one of query, script or file")
	}
	if a.Transaction != nil && a.Query != "" {
		return "", false, errors.New("transaction applies to script and file; a query runs on its own")
	}
	switch {
	case a.Query != "":
		return a.Query, false, nil
	case a.Script != "":
		return a.Script, true, nil
	}
	path := a.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.PlanDir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("file: %w", err)
	}
	return string(b), true, nil
}

// sqlParams converts params to values pgx can send.
func sqlParams(a *SqlArgs) ([]any, error) {
	if a.Params.Type() == cty.NilType || a.Params.IsNull() {
		return nil, nil
	}
	if a.Query == "" {
		return nil, errors.New("params go with query ($1, $2, ...), not with script or file")
	}
	v, _ := a.Params.UnmarkDeep()
	if !v.Type().IsListType() && !v.Type().IsTupleType() {
		return nil, fmt.Errorf("params must be a list, not %s", v.Type().FriendlyName())
	}
	var out []any
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		p, err := sqlParam(e)
		if err != nil {
			return nil, fmt.Errorf("params[%d]: %w", len(out), err)
		}
		out = append(out, p)
	}
	return out, nil
}

func sqlParam(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsKnown() {
		return nil, errors.New("value is not known")
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString(), nil
	case ty == cty.Bool:
		return v.True(), nil
	case ty == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == big.Exact {
			return i, nil
		}
		// Text keeps every digit; PostgreSQL parses it as the parameter's type.
		return bf.Text('g', -1), nil
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		var out []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			p, err := sqlParam(e)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	case ty.IsObjectType() || ty.IsMapType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			p, err := sqlParam(e)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot send a %s as a parameter", ty.FriendlyName())
}

// sqlInTx runs fn in a transaction and commits it if fn succeeded.
func sqlInTx(ctx context.Context, conn *pgx.Conn, fn func() error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Rollback after Commit is a no-op; on error it releases the transaction.
	defer tx.Rollback(ctx)
	if err := fn(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// sqlReadOnly runs a check's SQL so that it cannot change anything by
// mistake: the session is read-only (connect), and the SQL runs inside one
// READ ONLY transaction that is rolled back. Two holes are closed: a script
// may not end that transaction (COMMIT; BEGIN READ WRITE; ...), and a
// snapshot is taken first, after which PostgreSQL refuses
// SET transaction_read_only = off.
func sqlReadOnly(ctx context.Context, conn *pgx.Conn, fn func() error, script string, isScript bool) error {
	if isScript {
		for i, st := range splitSQL(script) {
			if sqlEndsTransaction(st.words) {
				return fmt.Errorf("statement %d (line %d): a check runs in one read-only transaction, which %s would end",
					i+1, st.line, strings.ToUpper(st.words[0]))
			}
		}
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return fn()
}

// sqlEndsTransaction reports whether a statement (its words) ends the
// current transaction; ROLLBACK TO a savepoint does not.
func sqlEndsTransaction(w []string) bool {
	word := func(i int) string {
		if i < len(w) {
			return w[i]
		}
		return ""
	}
	switch word(0) {
	case "commit", "end", "abort":
		return true
	case "rollback":
		return word(1) != "to" && word(2) != "to"
	case "prepare":
		return word(1) == "transaction"
	}
	return false
}
