package sql

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

func TestSQLQueryValues(t *testing.T) {
	url := Source.FreshDB(t)
	steptest.MustSQL(t, url, `CREATE TYPE mood AS ENUM ('happy', 'sad')`)
	out, err := runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url), Query: `
		SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8,
		       1.5::float8 AS f8, 0.1::float4 AS f4, 'NaN'::float8 AS nan,
		       12.34::numeric AS num, 12345678901234567890.123::numeric AS bignum, 7::numeric AS intnum,
		       'hi'::text AS t, true AS b, NULL::int AS nothing,
		       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
		       '10.0.0.1'::inet AS ip, '10.0.0.0/8'::cidr AS net,
		       '2024-02-03 04:05:06.789+02'::timestamptz AS tstz,
		       '2024-02-03 04:05:06'::timestamp AS ts, '2024-02-03'::date AS d,
		       'infinity'::date AS dinf,
		       '{"a": [1, 2.5, 12345678901234567890], "b": null}'::jsonb AS jb,
		       '[1, "x"]'::json AS j,
		       '\xdeadbeef'::bytea AS bin,
		       ARRAY[1, 2, NULL]::int[] AS arr, ARRAY['x', 'y'] AS tarr,
		       ARRAY['2024-01-01'::date] AS darr,
		       '1 day 02:00:00'::interval AS iv, '12:34:56'::time AS tm,
		       'happy'::mood AS m, 1 AS dup, 2 AS dup`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"i2": int64(1), "i4": int64(2), "i8": int64(9007199254740993),
		"f8": 1.5, "f4": 0.1, "nan": "NaN",
		"num": 12.34, "bignum": "12345678901234567890.123", "intnum": int64(7),
		"t": "hi", "b": true, "nothing": nil,
		"u":  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"ip": "10.0.0.1", "net": "10.0.0.0/8",
		"tstz": "2024-02-03T02:05:06.789Z", "ts": "2024-02-03T04:05:06", "d": "2024-02-03",
		"dinf": "infinity",
		"jb":   map[string]any{"a": []any{int64(1), 2.5, "12345678901234567890"}, "b": nil},
		"j":    []any{int64(1), "x"},
		"bin":  `\xdeadbeef`,
		"arr":  []any{int64(1), int64(2), nil}, "tarr": []any{"x", "y"},
		"darr": []any{"2024-01-01"},
		"iv":   "1 day 02:00:00", "tm": "12:34:56",
		"m": "happy", "dup": int64(1), "dup_2": int64(2),
	}
	if len(out.Rows) != 1 {
		t.Fatalf("rows = %v", out.Rows)
	}
	for k, w := range want {
		if g := out.Rows[0][k]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", k, g, g, w, w)
		}
	}
	if len(out.Rows[0]) != len(want) {
		t.Errorf("row has %d columns, want %d: %v", len(out.Rows[0]), len(want), out.Columns)
	}
	if out.Command != "SELECT 1" || out.RowsAffected != 1 || out.Columns[len(out.Columns)-1] != "dup_2" {
		t.Errorf("command %q, rows_affected %d, columns %v", out.Command, out.RowsAffected, out.Columns)
	}
}

// The same values come out of the simple protocol (text) as out of the
// extended one (mostly binary).
func TestSQLScriptValuesMatchQuery(t *testing.T) {
	url := Source.FreshDB(t)
	q := `SELECT 1::int8 AS i, 0.25::float8 AS f, 3.5::numeric AS n, '2024-02-03 04:05:06+00'::timestamptz AS ts,
	      '{"k": 1}'::jsonb AS j, '\x00ff'::bytea AS b, ARRAY[1.5, 2]::numeric[] AS a, '192.168.0.1/32'::inet AS ip`
	ctx, env := steptest.Ctx(t), steptest.Env(t)
	fromQuery, err := runSQL(ctx, env, &SqlArgs{Database: steptest.DB(url), Query: q})
	if err != nil {
		t.Fatal(err)
	}
	fromScript, err := runSQL(ctx, env, &SqlArgs{Database: steptest.DB(url), Script: q})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromQuery.Rows, fromScript.Rows) {
		t.Errorf("query rows %v\nscript rows %v", fromQuery.Rows, fromScript.Rows)
	}
}

func TestSQLParams(t *testing.T) {
	url := Source.FreshDB(t)
	steptest.MustSQL(t, url, `CREATE TABLE t (id int PRIMARY KEY, name text, price numeric, doc jsonb);
		INSERT INTO t VALUES (1, 'a', 1.5, '{}'), (2, 'b', 2.5, '{}'), (3, 'c', 3.5, '{}')`)
	params := cty.TupleVal([]cty.Value{
		cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(3)}),
		cty.StringVal("c"),
		cty.NumberFloatVal(3.5),
	})
	out, err := runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url),
		Query: `SELECT id, $2::text AS echo FROM t WHERE id = ANY($1) AND (name = $2 OR price < $3) ORDER BY id`, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(1), "echo": "c"}, {"id": int64(3), "echo": "c"}}
	if !reflect.DeepEqual(out.Rows, want) {
		t.Errorf("rows = %v, want %v", out.Rows, want)
	}

	// An object goes as JSON; null as NULL; a bare number into an untyped $n.
	out, err = runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url),
		Query: `UPDATE t SET doc = $1, name = $2 WHERE id = $3`,
		Params: cty.TupleVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{"k": cty.NumberIntVal(5), "tags": cty.TupleVal([]cty.Value{cty.StringVal("x")})}),
			cty.NullVal(cty.String), cty.NumberIntVal(2),
		})})
	if err != nil {
		t.Fatal(err)
	}
	if out.Command != "UPDATE 1" || out.RowsAffected != 1 {
		t.Errorf("command %q rows_affected %d", out.Command, out.RowsAffected)
	}
	out = sqlT(t, url, `SELECT doc, name FROM t WHERE id = 2`)
	if got := out.Rows[0]; !reflect.DeepEqual(got, map[string]any{"doc": map[string]any{"k": int64(5), "tags": []any{"x"}}, "name": nil}) {
		t.Errorf("row = %v", got)
	}
}

func TestSQLScriptTransaction(t *testing.T) {
	url := Source.FreshDB(t)
	steptest.MustSQL(t, url, `CREATE TABLE t (id int PRIMARY KEY)`)
	// The second INSERT fails: the first is rolled back with it.
	_, err := runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url), Script: "INSERT INTO t VALUES (1);\n\nINSERT INTO t VALUES (1);"})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("err = %v, want a unique violation", err)
	}
	if !strings.Contains(err.Error(), "statement 2 (line 3)") {
		t.Errorf("err = %v, want it to name statement 2 on line 3", err)
	}
	if n := steptest.MustSQL(t, url, `SELECT count(*) AS n FROM t`).Rows[0]["n"]; n != int64(0) {
		t.Errorf("rows after a failed script = %v, want 0", n)
	}

	// transaction = false: each statement commits on its own, and
	// CREATE INDEX CONCURRENTLY works.
	no := false
	_, err = runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url), Transaction: &no,
		Script: "INSERT INTO t VALUES (1);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\nINSERT INTO t VALUES (1);"})
	if err == nil || !strings.Contains(err.Error(), "statement 3 (line 3)") {
		t.Fatalf("err = %v, want statement 3 to fail", err)
	}
	out := sqlT(t, url, `SELECT count(*) AS n FROM t; SELECT count(*) AS idx FROM pg_indexes WHERE indexname = 't_idx'`)
	if out.Rows[0]["idx"] != int64(1) || out.Statements != 2 {
		t.Errorf("output = %+v, want the index made and 2 statements", out)
	}
	if n := steptest.MustSQL(t, url, `SELECT count(*) AS n FROM t`).Rows[0]["n"]; n != int64(1) {
		t.Errorf("rows = %v, want the first INSERT kept", n)
	}
}

func TestSQLFileAndLastStatement(t *testing.T) {
	url := Source.FreshDB(t)
	env := steptest.Env(t)
	script := "CREATE TABLE t (id serial, v text);\nINSERT INTO t (v) SELECT 'x' FROM generate_series(1, 5);\nSELECT id FROM t ORDER BY id;\n"
	if err := os.WriteFile(filepath.Join(env.PlanDir, "fix.sql"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	two := 2
	out, err := runSQL(steptest.Ctx(t), env, &SqlArgs{Database: steptest.DB(url), File: "fix.sql", MaxRows: &two})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rows) != 2 || !out.Truncated || out.RowsAffected != 5 || out.Command != "SELECT 5" || out.Statements != 3 {
		t.Errorf("output = %+v", out)
	}
	if !reflect.DeepEqual(out.Columns, []string{"id"}) {
		t.Errorf("columns = %v", out.Columns)
	}

	// A script ending with a statement that returns no rows describes that one.
	out = sqlT(t, url, `SELECT 1; UPDATE t SET v = 'y'`)
	if len(out.Rows) != 0 || len(out.Columns) != 0 || out.Rows == nil || out.Columns == nil || out.RowsAffected != 5 {
		t.Errorf("output = %+v", out)
	}
}

// A check's SQL runs read-only: an INSERT fails and nothing changes.
func TestSQLReadOnlyInCheck(t *testing.T) {
	url := Source.FreshDB(t)
	steptest.MustSQL(t, url, `CREATE TABLE t (id int)`)
	env := steptest.Env(t)
	env.ReadOnly = true
	no := false
	for _, c := range []struct {
		args *SqlArgs
		want string // a SQLSTATE, or a text the error must contain
	}{
		{&SqlArgs{Database: steptest.DB(url), Query: `INSERT INTO t VALUES (1)`}, "25006"}, // read_only_sql_transaction
		{&SqlArgs{Database: steptest.DB(url), Script: `INSERT INTO t VALUES (1)`}, "25006"},
		{&SqlArgs{Database: steptest.DB(url), Script: `INSERT INTO t VALUES (1)`, Transaction: &no}, "25006"},
		{&SqlArgs{Database: steptest.DB(url), Query: `WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM x`}, "25006"},
		// Ways out of the read-only transaction are closed too.
		{&SqlArgs{Database: steptest.DB(url), Script: `SET transaction_read_only = off; INSERT INTO t VALUES (1)`}, "25001"},
		{&SqlArgs{Database: steptest.DB(url), Script: `SELECT 1; COMMIT; SET default_transaction_read_only = off; INSERT INTO t VALUES (1)`}, "statement 2 (line 1): a check runs in one read-only transaction, which COMMIT would end"},
		{&SqlArgs{Database: steptest.DB(url), Script: "SELECT 1;\n/* x */ end; BEGIN READ WRITE; INSERT INTO t VALUES (1)"}, "which END would end"},
	} {
		_, err := runSQL(steptest.Ctx(t), env, c.args)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == c.want || err != nil && strings.Contains(err.Error(), c.want) {
			continue
		}
		t.Errorf("%q: err = %v, want %s", c.args.Query+c.args.Script, err, c.want)
	}
	// ROLLBACK TO a savepoint stays inside the transaction: allowed.
	if _, err := runSQL(steptest.Ctx(t), env, &SqlArgs{Database: steptest.DB(url), Script: `SAVEPOINT a; SELECT 1; ROLLBACK TO a; SELECT 2`}); err != nil {
		t.Errorf("savepoints in a check: %v", err)
	}
	if n := steptest.MustSQL(t, url, `SELECT count(*) AS n FROM t`).Rows[0]["n"]; n != int64(0) {
		t.Errorf("rows = %v, want 0", n)
	}
	// Reading works.
	out, err := runSQL(steptest.Ctx(t), env, &SqlArgs{Database: steptest.DB(url), Query: `SELECT count(*) AS n FROM t`})
	if err != nil || out.Rows[0]["n"] != int64(0) {
		t.Errorf("read in a check: %v, %v", out, err)
	}
}

func TestSQLArgumentErrors(t *testing.T) {
	env := steptest.Env(t)
	db := &pgkit.Database{Name: "x", URL: "postgres://u:hunter2@127.0.0.1:1/x"}
	no := false
	neg := -1
	for _, c := range []struct {
		args *SqlArgs
		want string
	}{
		{&SqlArgs{Database: db}, "exactly one of query, script or file"},
		{&SqlArgs{Database: db, Query: "SELECT 1", Script: "SELECT 1"}, "exactly one"},
		{&SqlArgs{Database: db, Script: "SELECT 1", Params: cty.TupleVal([]cty.Value{cty.True})}, "params go with query"},
		{&SqlArgs{Database: db, Query: "SELECT $1", Params: cty.StringVal("x")}, "params must be a list"},
		{&SqlArgs{Database: db, Query: "SELECT 1", Transaction: &no}, "transaction applies to script"},
		{&SqlArgs{Database: db, Query: "SELECT 1", MaxRows: &neg}, "max_rows"},
		{&SqlArgs{Database: db, File: "missing.sql"}, "missing.sql"},
		{&SqlArgs{Database: db, Query: "SELECT 1"}, "connect to database x"},
	} {
		_, err := runSQL(steptest.Ctx(t), env, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestSplitSQL(t *testing.T) {
	script := `-- a comment; not a statement
SELECT 'a;b', "c;d", E'it\'s;', $$x;y$$, $f$ $$; $f$ FROM t; /* c; /* nested; */ still; */
INSERT INTO t VALUES ($1);

CREATE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN true THEN 1 ELSE 2 END;
  SELECT 2;
END;
SELECT (1;2)
;
-- trailing comment`
	got := splitSQL(script)
	var lines []int
	for _, s := range got {
		lines = append(lines, s.line)
	}
	if len(got) != 4 || !reflect.DeepEqual(lines, []int{2, 3, 5, 10}) {
		t.Fatalf("split into %d statements on lines %v: %+v", len(got), lines, got)
	}
	if !strings.HasSuffix(got[0].text, "FROM t") || !strings.HasSuffix(got[2].text, "END") {
		t.Errorf("statements = %+v", got)
	}
}

// Types without a JSON form keep the server's text, in arrays too.
func TestSQLTextForms(t *testing.T) {
	url := Source.FreshDB(t)
	q := `SELECT '12:34:56'::time AS tm, '1 mon 2 days -03:04:05.5'::interval AS iv,
	      ARRAY['1 day'::interval, NULL] AS ivs, '[1,5)'::int4range AS r, '(1,2)'::point AS p,
	      ARRAY['{"a": 1}'::jsonb] AS js, '-infinity'::timestamptz AS ninf, '0044-03-15 BC'::date AS bc,
	      ARRAY[ARRAY[1, 2], ARRAY[3, 4]] AS grid`
	want := map[string]any{
		"tm": "12:34:56", "iv": "1 mon 2 days -03:04:05.5", "ivs": []any{"1 day", nil},
		"r": "[1,5)", "p": "(1,2)", "js": []any{map[string]any{"a": int64(1)}}, "ninf": "-infinity",
		"bc": "0044-03-15 BC", "grid": []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}},
	}
	for _, a := range []*SqlArgs{{Database: steptest.DB(url), Query: q}, {Database: steptest.DB(url), Script: q}} {
		out, err := runSQL(steptest.Ctx(t), steptest.Env(t), a)
		if err != nil {
			t.Fatal(err)
		}
		row := out.Rows[0]
		for k, w := range want {
			if g := row[k]; !reflect.DeepEqual(g, w) {
				t.Errorf("%s = %#v, want %#v", k, g, w)
			}
		}
	}
}

// sqlT runs a script through the sql type itself, failing the test on an error.
func sqlT(t *testing.T, url, script string) *SqlOutput {
	t.Helper()
	out, err := runSQL(steptest.Ctx(t), steptest.Env(t), &SqlArgs{Database: steptest.DB(url), Script: script})
	if err != nil {
		t.Fatalf("setup SQL: %v", err)
	}
	return out
}
