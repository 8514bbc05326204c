package pgdump

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// dumpFixture is a small database: serial and identity keys, a foreign
// key, a view, a function, a free-standing sequence.
const dumpFixture = `
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE books (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    author_id int NOT NULL REFERENCES authors, title text, meta jsonb);
CREATE SEQUENCE invoice_no START 1000;
CREATE VIEW book_titles AS SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id;
CREATE FUNCTION book_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM books $$;
INSERT INTO authors (name) SELECT 'author ' || g FROM generate_series(1, 20) g;
INSERT INTO books (author_id, title, meta) SELECT 1 + g % 20, 'book ' || g, jsonb_build_object('n', g) FROM generate_series(1, 100) g;
SELECT nextval('invoice_no');
`

// fixtureDB returns a fresh source database holding dumpFixture.
func fixtureDB(t *testing.T) string {
	url := Source.FreshDB(t)
	steptest.MustSQL(t, url, dumpFixture)
	return url
}

func intp(n int) *int { return &n }

func TestPgDumpFormats(t *testing.T) {
	url := fixtureDB(t)
	for _, c := range []struct {
		name string
		args PgDumpArgs
	}{
		{"directory", PgDumpArgs{Path: "dump", Jobs: intp(2)}},
		{"custom", PgDumpArgs{Path: "out/db.dump", Format: "custom", Compress: intp(5)}},
		{"plain", PgDumpArgs{Path: "db.sql", Format: "plain"}},
		{"plain", PgDumpArgs{Path: "db.sql.gz", Format: "plain", Compress: intp(6)}},
		{"directory", PgDumpArgs{Path: "schema", SchemaOnly: true, NoOwner: true, NoACL: true}},
		{"directory", PgDumpArgs{Path: "one", Tables: []string{"public.authors"}, ExtraArgs: []string{"--lock-wait-timeout=10s"}}},
	} {
		t.Run(c.args.Path, func(t *testing.T) {
			env := steptest.Env(t)
			a := c.args
			a.Database = steptest.DB(url)
			out, err := runPgDump(steptest.Ctx(t), env, &a)
			if err != nil {
				t.Fatal(err)
			}
			wantTables := 2
			switch {
			case a.SchemaOnly:
				wantTables = 0
			case len(a.Tables) > 0:
				wantTables = 1
			}
			if out.Path != filepath.Join(env.PlanDir, a.Path) || out.Format != c.name || out.Tables != wantTables ||
				out.Bytes <= 0 || out.PgDumpVersion == "" || out.Seconds <= 0 {
				t.Errorf("output = %+v, want %d tables", out, wantTables)
			}
			if size, err := diskSize(out.Path); err != nil || size != out.Bytes {
				t.Errorf("size on disk %d (%v), output says %d", size, err, out.Bytes)
			}
		})
	}
}

func TestPgDumpRefusesToOverwrite(t *testing.T) {
	url := fixtureDB(t)
	env := steptest.Env(t)
	a := &PgDumpArgs{Database: steptest.DB(url), Path: "dump"}
	if _, err := runPgDump(steptest.Ctx(t), env, a); err != nil {
		t.Fatal(err)
	}
	if _, err := runPgDump(steptest.Ctx(t), env, a); err == nil || !strings.Contains(err.Error(), "overwrite = true") {
		t.Fatalf("second dump: err = %v, want a refusal", err)
	}
	a.Overwrite = true
	if _, err := runPgDump(steptest.Ctx(t), env, a); err != nil {
		t.Fatalf("with overwrite: %v", err)
	}

	// Never deletes a directory that is not a dump, nor the plan's own.
	other := filepath.Join(env.PlanDir, "notes")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"notes", "."} {
		_, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: path, Overwrite: true})
		if err == nil || !strings.Contains(err.Error(), "will not delete") {
			t.Errorf("path %q: err = %v, want a refusal", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Errorf("a file outside any dump was deleted: %v", err)
	}
}

// The password is in the URL, but never in the output, the error, the logs
// or pg_dump's command line.
func TestPgDumpPasswordNeverShown(t *testing.T) {
	url := fixtureDB(t)
	if !strings.Contains(url, Source.Password) || Source.Password == "" {
		t.Fatalf("the test URL has no password: %s", url)
	}
	env := steptest.Env(t)
	var mu sync.Mutex
	var secrets, logs []string
	env.Secrets = func(s ...string) { mu.Lock(); secrets = append(secrets, s...); mu.Unlock() }
	env.Log = func(format string, args ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	out, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: "dump", Format: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), Source.Password) {
		t.Errorf("output shows the password: %s", raw)
	}
	_, err = runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: "fails", Tables: []string{"no_such_table"}})
	if err == nil || !strings.Contains(err.Error(), "no matching tables were found") {
		t.Fatalf("err = %v, want pg_dump's complaint", err)
	}
	if strings.Contains(err.Error(), Source.Password) {
		t.Errorf("error shows the password: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(env.PlanDir, "fails")); statErr == nil {
		t.Errorf("a failed dump left its output behind")
	}
	if strings.Contains(strings.Join(logs, "\n"), Source.Password) || len(logs) == 0 {
		t.Errorf("logs = %q", logs)
	}
	if !strings.Contains(strings.Join(secrets, " "), Source.Password) {
		t.Errorf("the password was not registered as a secret")
	}
	dsn, environ, err := pgkit.LibPQ(env, steptest.DB(url))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Join(pgDumpArgv(&PgDumpArgs{}, "directory", "/x", dsn), " ")
	if strings.Contains(argv, Source.Password) || !strings.Contains(strings.Join(environ, "\n"), "PGPASSWORD=") {
		t.Errorf("argv = %s", argv)
	}
}

func TestPgDumpArgumentErrors(t *testing.T) {
	db := &pgkit.Database{Name: "x", URL: "postgres://u:hunter2@127.0.0.1:1/x"}
	for _, c := range []struct {
		args PgDumpArgs
		want string
	}{
		{PgDumpArgs{Database: db, Path: "d", Format: "tar"}, "format is directory, custom or plain"},
		{PgDumpArgs{Database: db, Path: "d", Format: "custom", Jobs: intp(4)}, "jobs needs format"},
		{PgDumpArgs{Database: db, Path: "d", Jobs: intp(0)}, "at least 1"},
		{PgDumpArgs{Database: db, Path: "d", SchemaOnly: true, DataOnly: true}, "not both"},
		{PgDumpArgs{Database: db, Path: "d", Compress: intp(12)}, "0 to 9"},
		{PgDumpArgs{Database: db, Path: ""}, "path is empty"},
		{PgDumpArgs{Database: db, Path: "d"}, "connect to database x"},
	} {
		_, err := runPgDump(steptest.Ctx(t), steptest.Env(t), &c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "pg_dump x: ") {
			t.Errorf("err = %v, want %q", err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
