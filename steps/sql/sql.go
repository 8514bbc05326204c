package sql

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
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
		return nil, fmt.Errorf("sql: %w", err)
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

// sqlStatement is one statement of a script and the line it starts on.
type sqlStatement struct {
	text  string
	line  int
	words []string // its keywords and identifiers, lower case, without quotes or comments
}

// splitSQL splits a script at the semicolons that end statements, skipping
// those in quotes, dollar quotes, comments, parentheses and the
// BEGIN ATOMIC ... END body of a function, the way psql does.
func splitSQL(s string) []sqlStatement {
	var out []sqlStatement
	var (
		start, line, startLine = 0, 1, 0
		parens, begins         = 0, 0
		words                  []string // the statement's words, lower case
	)
	emit := func(end int) {
		if text := strings.TrimSpace(s[start:end]); startLine > 0 && text != "" {
			out = append(out, sqlStatement{text: text, line: startLine, words: words})
		}
		start, startLine, parens, begins, words = end+1, 0, 0, 0, nil
	}
	// skipTo advances i past the first occurrence of end, counting lines.
	skipTo := func(i int, end string) int {
		j := strings.Index(s[i:], end)
		if j < 0 {
			j = len(s) - i - len(end)
		}
		line += strings.Count(s[i:i+j+len(end)], "\n")
		return i + j + len(end)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\n' {
			line++
		}
		if startLine == 0 && !sqlSpace(c) && !(c == '-' && strings.HasPrefix(s[i:], "--")) && !(c == '/' && strings.HasPrefix(s[i:], "/*")) {
			startLine = line
		}
		switch {
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			i = skipTo(i, "\n")
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			i = sqlSkipComment(s, i, &line)
		case c == '\'':
			i = sqlSkipQuoted(s, i+1, '\'', false, &line)
		case c == '"':
			i = sqlSkipQuoted(s, i+1, '"', false, &line)
		case c == '$' && (i == 0 || !sqlIdentChar(s[i-1])):
			if tag, ok := sqlDollarTag(s[i:]); ok {
				i = skipTo(i+len(tag), tag)
			} else {
				i++
			}
		case c == '(':
			parens++
			i++
		case c == ')':
			parens--
			i++
		case c == ';' && parens <= 0 && begins == 0:
			emit(i)
			i++
		case sqlIdentStart(c):
			j := i
			for j < len(s) && sqlIdentChar(s[j]) {
				j++
			}
			word := strings.ToLower(s[i:j])
			if word == "e" && j < len(s) && s[j] == '\'' {
				i = sqlSkipQuoted(s, j+1, '\'', true, &line) // E'...' takes backslash escapes
				continue
			}
			words = append(words, word)
			if parens == 0 && sqlRoutineDef(words) {
				switch {
				case word == "begin":
					begins++
				case word == "case" && begins > 0:
					begins++ // CASE also ends with END
				case word == "end" && begins > 0:
					begins--
				}
			}
			i = j
		default:
			i++
		}
	}
	emit(len(s))
	return out
}

// sqlRoutineDef reports whether a statement starts with
// CREATE [OR REPLACE] FUNCTION|PROCEDURE, whose body may be BEGIN ATOMIC.
func sqlRoutineDef(w []string) bool {
	if len(w) < 2 || w[0] != "create" {
		return false
	}
	if w[1] == "function" || w[1] == "procedure" {
		return true
	}
	return len(w) >= 4 && w[1] == "or" && w[2] == "replace" && (w[3] == "function" || w[3] == "procedure")
}

// sqlSkipQuoted returns the index after the closing quote; a doubled quote is
// part of the text, and so is a backslash-escaped one in E'...' strings.
func sqlSkipQuoted(s string, i int, quote byte, backslash bool, line *int) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n':
			*line++
		case backslash && c == '\\':
			i++
			if i < len(s) && s[i] == '\n' {
				*line++
			}
		case c == quote:
			if i+1 < len(s) && s[i+1] == quote {
				i++
			} else {
				return i + 1
			}
		}
		i++
	}
	return i
}

// sqlSkipComment skips a /* */ comment, which nests in SQL.
func sqlSkipComment(s string, i int, line *int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			if s[i] == '\n' {
				*line++
			}
			i++
		}
	}
	return i
}

// sqlDollarTag returns the $tag$ at the start of s, if there is one ($1 is a
// parameter, not a tag).
func sqlDollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case sqlIdentStart(c) || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

func sqlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func sqlIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func sqlIdentChar(c byte) bool { return sqlIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
