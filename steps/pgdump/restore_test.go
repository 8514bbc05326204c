package pgdump

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// dumpOf dumps a database into a fresh plan directory.
func dumpOf(t *testing.T, a PgDumpArgs) (*steptype.Env, *PgDumpOutput) {
	t.Helper()
	env := steptest.Env(t)
	out, err := runPgDump(steptest.Ctx(t), env, &a)
	if err != nil {
		t.Fatal(err)
	}
	return env, out
}

// rowCounts counts the rows of the fixture's tables.
func rowCounts(t *testing.T, url string) map[string]any {
	t.Helper()
	return steptest.MustSQL(t, url, `SELECT (SELECT count(*) FROM authors) AS authors, (SELECT count(*) FROM books) AS books,
		(SELECT count(*) FROM book_titles) AS titles, book_count() AS fn`).Rows[0]
}

func TestPgRestoreRoundTrip(t *testing.T) {
	src := fixtureDB(t)
	for _, format := range []string{"directory", "custom"} {
		t.Run(format, func(t *testing.T) {
			env, dump := dumpOf(t, PgDumpArgs{Database: steptest.DB(src), Path: "dump", Format: format})
			dst := Target.FreshDB(t)
			out, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: &pgkit.Database{Name: "rds", URL: dst}, Path: dump.Path,
				Jobs: intp(2), Clean: true, IfExists: true, NoOwner: true, NoACL: true})
			if err != nil {
				t.Fatal(err)
			}
			if out.Errors != 0 || out.Warnings != 0 || out.ExitCode != 0 || len(out.Messages) != 0 || out.Seconds <= 0 {
				t.Errorf("output = %+v", out)
			}
			if got, want := rowCounts(t, dst), rowCounts(t, src); !reflect.DeepEqual(got, want) {
				t.Errorf("target counts %v, source %v", got, want)
			}
		})
	}
}

// A data-only dump into a database without the tables: real errors.
func TestPgRestoreRealErrorFails(t *testing.T) {
	env, dump := dumpOf(t, PgDumpArgs{Database: steptest.DB(fixtureDB(t)), Path: "data", DataOnly: true})
	out, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: &pgkit.Database{Name: "rds", URL: Target.FreshDB(t)}, Path: "data", DataOnly: true})
	if err == nil || !strings.Contains(err.Error(), `relation "public.authors" does not exist`) || !strings.HasPrefix(err.Error(), "pg_restore rds: ") {
		t.Fatalf("err = %v, want the missing table named", err)
	}
	if out == nil || out.Errors == 0 || out.ExitCode != 1 || out.Messages[0].Level != "error" {
		t.Errorf("output = %+v", out)
	}
	_ = dump
}

// An existing table with other columns: the CREATE and the COPY fail.
func TestPgRestoreConflictingTableFails(t *testing.T) {
	env, _ := dumpOf(t, PgDumpArgs{Database: steptest.DB(fixtureDB(t)), Path: "dump"})
	dst := Target.FreshDB(t)
	steptest.MustSQL(t, dst, `CREATE TABLE authors (id int, nickname text)`)
	out, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(dst), Path: "dump", NoOwner: true})
	if err == nil || !strings.Contains(err.Error(), `relation "authors" already exists`) {
		t.Fatalf("err = %v, want the conflict", err)
	}
	if out.Errors < 2 {
		t.Errorf("errors = %d, want the CREATE and the COPY at least: %+v", out.Errors, out.Messages)
	}
}

// clean without if_exists on an empty database: every DROP fails, harmlessly.
func TestPgRestoreIgnorableWarnings(t *testing.T) {
	env, _ := dumpOf(t, PgDumpArgs{Database: steptest.DB(fixtureDB(t)), Path: "dump"})
	dst := Target.FreshDB(t)
	out, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(dst), Path: "dump", Clean: true, NoOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.Errors != 0 || out.Warnings < 5 || out.ExitCode != 1 || out.Messages[0].Level != "warning" ||
		!strings.Contains(out.Messages[0].Reason, "if_exists") || !strings.Contains(out.Messages[0].Text, "does not exist") {
		t.Errorf("output = %+v", out)
	}
	if got := rowCounts(t, dst); got["books"] != int64(100) {
		t.Errorf("counts = %v", got)
	}

	// The same restore with fail_on_warnings fails.
	_, err = runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(Target.FreshDB(t)), Path: "dump", Clean: true, FailOnWarnings: true})
	if err == nil || !strings.Contains(err.Error(), "fail_on_warnings") {
		t.Errorf("fail_on_warnings: err = %v", err)
	}
	// And exit_on_error stops at the first one, so the restore is incomplete.
	_, err = runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(Target.FreshDB(t)), Path: "dump", Clean: true, ExitOnError: true})
	if err == nil || !strings.Contains(err.Error(), "was not restored") {
		t.Errorf("exit_on_error: err = %v", err)
	}
	// In one transaction, the first one rolls everything back.
	empty := Target.FreshDB(t)
	_, err = runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(empty), Path: "dump", Clean: true, SingleTransaction: true})
	if err == nil || !strings.Contains(err.Error(), "nothing was restored") {
		t.Errorf("single_transaction: err = %v", err)
	}
	if n := steptest.MustSQL(t, empty, `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`).Rows[0]["n"]; n != int64(0) {
		t.Errorf("single_transaction left %v tables", n)
	}
}

// Owners and grants name a role the target's cluster lacks.
func TestPgRestoreMissingRoleIsAWarning(t *testing.T) {
	src := fixtureDB(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	role := "planrun_owner_" + hex.EncodeToString(suffix)
	steptest.MustSQL(t, src, `CREATE ROLE `+role+`; ALTER TABLE authors OWNER TO `+role+`; GRANT SELECT ON books TO `+role)
	t.Cleanup(func() {
		// The role is the whole server's: drop it once the database is gone too.
		_, _ = steptest.SQL(steptest.Ctx(t), src, `DROP OWNED BY `+role+`; DROP ROLE `+role)
	})
	env, _ := dumpOf(t, PgDumpArgs{Database: steptest.DB(src), Path: "dump"})
	dst := Target.FreshDB(t)
	out, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(dst), Path: "dump"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, m := range out.Messages {
		reasons[m.Reason] = true
	}
	if out.Errors != 0 || out.Warnings != 3 || len(reasons) != 2 { // the table, its sequence, the grant
		t.Errorf("output = %+v", out)
	}
	if got := rowCounts(t, dst); got["authors"] != int64(20) {
		t.Errorf("counts = %v", got)
	}
}

func TestPgRestoreArgumentErrors(t *testing.T) {
	db := &pgkit.Database{Name: "x", URL: "postgres://u:hunter2@127.0.0.1:1/x"}
	for _, c := range []struct {
		args PgRestoreArgs
		want string
	}{
		{PgRestoreArgs{Database: db, Path: "d", IfExists: true}, "if_exists goes with clean"},
		{PgRestoreArgs{Database: db, Path: "d", Clean: true, DataOnly: true}, "give one of them"},
		{PgRestoreArgs{Database: db, Path: "d", SchemaOnly: true, DataOnly: true}, "not both"},
		{PgRestoreArgs{Database: db, Path: "d", SingleTransaction: true, Jobs: intp(4)}, "leave jobs out"},
		{PgRestoreArgs{Database: db, Path: "d", Jobs: intp(0)}, "at least 1"},
		{PgRestoreArgs{Database: db, Path: "no/such/dump"}, "no dump to restore"},
	} {
		_, err := runPgRestore(steptest.Ctx(t), steptest.Env(t), &c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "pg_restore x: ") {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

// What managed services and newer pg_dumps make pg_restore say.
func TestPgRestoreClassifiesMessages(t *testing.T) {
	stderr := `pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 4375; 0 0 COMMENT EXTENSION plpgsql
pg_restore: error: could not execute query: ERROR:  must be owner of extension plpgsql
Command was: COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';


pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter "transaction_timeout"
Command was: SET transaction_timeout = 0;

pg_restore: from TOC entry 6; 2615 2200 SCHEMA public u7f
pg_restore: error: could not execute query: ERROR:  schema "public" already exists
Command was: CREATE SCHEMA public;

pg_restore: from TOC entry 215; 1259 16390 TABLE orders u7f
pg_restore: error: could not execute query: ERROR:  role "u7f" does not exist
Command was: ALTER TABLE public.orders OWNER TO u7f;

pg_restore: from TOC entry 300; 0 0 ACL TABLE orders u7f
pg_restore: error: could not execute query: ERROR:  role "analyst" does not exist
Command was: GRANT SELECT ON TABLE public.orders TO analyst;

pg_restore: creating TABLE "public.items"
pg_restore: from TOC entry 216; 1259 16391 TABLE items u7f
pg_restore: error: could not execute query: ERROR:  type "public.hstore" does not exist
LINE 3:     attrs public.hstore
                  ^
Command was: CREATE TABLE public.items (
    id integer NOT NULL,
    attrs public.hstore
);

pg_restore: from TOC entry 7; 2615 2200 EXTENSION citext
pg_restore: error: could not execute query: ERROR:  permission denied to create extension "citext"
HINT:  Must be superuser to create this extension.
Command was: CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;

pg_restore: warning: errors ignored on restore: 7
`
	p := &pgkit.RestoreLog{}
	// Written in uneven pieces, as a pipe delivers it.
	for i := 0; i < len(stderr); i += 37 {
		_, _ = p.Write([]byte(stderr[i:min(i+37, len(stderr))]))
	}
	p.Flush()
	out, _ := p.Result(nil)
	var levels []string
	for _, m := range out.Messages {
		levels = append(levels, m.Level)
	}
	want := []string{"warning", "warning", "warning", "warning", "warning", "error", "error"}
	if !reflect.DeepEqual(levels, want) || out.Errors != 2 || out.Warnings != 5 {
		t.Fatalf("levels = %v (errors %d, warnings %d), want %v", levels, out.Errors, out.Warnings, want)
	}
	if m := out.Messages[5]; !strings.Contains(m.Text, "attrs public.hstore\n);") || !strings.HasSuffix(m.Text, "(from TOC entry 216; 1259 16391 TABLE items u7f)") {
		t.Errorf("message = %q", m.Text)
	}
	if m := out.Messages[1]; strings.Contains(m.Text, "TOC entry") {
		t.Errorf("an entry named before progress lines was attached to a later message: %q", m.Text)
	}
	err := p.Verdict(out)
	if err == nil || !strings.Contains(err.Error(), `type "public.hstore" does not exist`) || !strings.Contains(err.Error(), "2 errors (5 ignorable)") {
		t.Errorf("verdict = %v", err)
	}

	// "does not exist" is harmless only for the drops of clean.
	for _, c := range []struct {
		text  string
		clean bool
		want  bool
	}{
		{"could not execute query: ERROR:  table \"t\" does not exist\nCommand was: DROP TABLE public.t;", true, true},
		{"could not execute query: ERROR:  relation \"public.t\" does not exist\nCommand was: ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;", true, true},
		{"could not execute query: ERROR:  table \"t\" does not exist\nCommand was: DROP TABLE public.t;", false, false},
		{"could not execute query: ERROR:  relation \"public.t\" does not exist\nCommand was: COPY public.t (id) FROM stdin;", true, false},
		{"could not execute query: ERROR:  must be owner of extension plpgsql\nCommand was: CREATE EXTENSION plpgsql;", false, false},
	} {
		if _, got := pgkit.IgnorableRestoreError(c.text, pgkit.RestoreOptions{Clean: c.clean}); got != c.want {
			t.Errorf("ignorable(%q, clean=%v) = %v", c.text, c.clean, got)
		}
	}
}

// pg_restore that could not start — no dump, no connection — restored
// nothing: a refusal, so the step's rollback does not run.
func TestPgRestoreRefusalsBeforeStarting(t *testing.T) {
	env := steptest.Env(t)
	url := Target.FreshDB(t)
	if _, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(url), Path: "no-such-dump"}); err == nil || !steptype.IsRefusal(err) {
		t.Errorf("no dump: %v", err)
	}
	dump := filepath.Join(env.PlanDir, "d")
	if err := os.Mkdir(dump, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(url, ":"+Target.Password+"@", ":wrong-pw@", 1)
	if _, err := runPgRestore(steptest.Ctx(t), env, &PgRestoreArgs{Database: steptest.DB(bad), Path: "d"}); err == nil || !steptype.IsRefusal(err) {
		t.Errorf("no connection: %v", err)
	}
}
