package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

func preflightT(t *testing.T, a *PreflightArgs) *PreflightOutput {
	t.Helper()
	out, err := runPreflight(steptest.Ctx(t), steptest.ReadOnlyEnv(t), a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pfFinding returns the finding of check about object, or nil.
func pfFinding(out *PreflightOutput, check, object string) *PreflightFinding {
	for i, f := range out.Findings {
		if f.Check == check && f.Object == object {
			return &out.Findings[i]
		}
	}
	return nil
}

func TestPreflightCleanPair(t *testing.T) {
	t.Parallel()
	src, tgt := steptest.Pair(t, Source, Target, "", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", "")
	out := preflightT(t, &PreflightArgs{Source: src, Target: tgt})
	if !out.OK || out.Errors != 0 || out.Warnings != 0 {
		t.Errorf("clean pair: %+v", out.Findings)
	}
	if !strings.HasPrefix(out.SourceVersion, "15") || out.TargetVersion != out.SourceVersion || out.PgDumpVersion == "" || out.PgRestoreVersion == "" || out.SourceBytes == 0 {
		t.Errorf("versions and size: %+v", out)
	}
	if pfFinding(out, "statistics", "") == nil {
		t.Errorf("no reminder to ANALYZE: %+v", out.Findings)
	}
}

// TestPreflightFindings puts one of each problem in a source read by a
// plain role, and a target with another collation, a table already, and a
// plain role too.
func TestPreflightFindings(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(t)}
	steptest.MustExec(t, src.URL, `
		CREATE SCHEMA heroku_ext;
		CREATE EXTENSION citext SCHEMA heroku_ext;
		CREATE TABLE logs (at timestamptz, line text);
		CREATE TABLE accounts (id int PRIMARY KEY, owner text);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		CREATE UNLOGGED TABLE cache (k text PRIMARY KEY);
		CREATE TABLE dupes (id int PRIMARY KEY, v int);
		INSERT INTO dupes VALUES (1, 1), (2, 1);
		CREATE TABLE secret (id int PRIMARY KEY);
		SELECT lo_create(0);`)
	// The duplicates make the concurrent build fail and leave the index invalid.
	if err := steptest.Exec(t, src.URL, "CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v)"); err == nil {
		t.Fatal("the unique index was built")
	}
	src.URL = steptest.Role(t, Source, src.URL, "GRANT SELECT ON accounts, logs, cache, dupes TO %s")

	// The server was initialised with the C locale; C.UTF-8 is the other one
	// every glibc has.
	name := fmt.Sprintf("t_preflight_utf8_%d", time.Now().UnixNano())
	admin, err := Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Target.DropDatabase(steptest.Ctx(t), name); err != nil {
			t.Error(err)
		}
	})
	steptest.MustExec(t, Target.URL(name), "CREATE TABLE leftover (i int)")
	// A plain role: since PostgreSQL 15 it may not create in schema public.
	tgt := &pgkit.Database{Name: "target", URL: steptest.Role(t, Target, Target.URL(name), "")}

	env := steptest.ReadOnlyEnv(t)
	var logged []string
	env.Log = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	out, err := runPreflight(steptest.Ctx(t), env, &PreflightArgs{Source: src, Target: tgt})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range out.Findings {
		t.Logf("%s %s %q: %s; fix: %s", f.Severity, f.Check, f.Object, f.Message, f.Fix)
	}
	// Errors and warnings are said on the terminal too, not only recorded.
	log := strings.Join(logged, "\n")
	if !strings.Contains(log, "warning: the target already holds 1 table (") || !strings.Contains(log, "error: public.accounts: ") {
		t.Errorf("the log does not say the findings:\n%s", log)
	}
	for _, w := range []struct{ check, severity, object, says string }{
		{"row_level_security", "error", "public.accounts", "BYPASSRLS"},
		{"privileges", "error", "public.secret", "permission denied"},
		{"extension_schema", "warning", "citext", "creates schema heroku_ext"},
		{"primary_key", "warning", "public.logs", "REPLICA IDENTITY FULL"},
		{"large_objects", "warning", "", "1 large object(s)"},
		{"invalid_index", "warning", "public.dupes_v_key on public.dupes", "leaves invalid indexes out"},
		{"unlogged", "info", "public.cache", "logical replication"},
		{"locale", "warning", "LC_COLLATE", `"C" on the source, "C.UTF-8" on the target`},
		{"locale", "warning", "LC_CTYPE", "C.UTF-8"},
		{"target_privileges", "warning", "public", "GRANT CREATE ON SCHEMA public"},
		{"target_privileges", "warning", "database", "GRANT CREATE ON DATABASE"},
		{"target_not_empty", "warning", "", "public.leftover"},
	} {
		f := pfFinding(out, w.check, w.object)
		if f == nil {
			t.Errorf("no %s finding for %q", w.check, w.object)
			continue
		}
		if f.Severity != w.severity || !strings.Contains(f.Message+" "+f.Fix, w.says) || f.Fix == "" {
			t.Errorf("%s %q: %+v; want severity %s and %q", w.check, w.object, f, w.severity, w.says)
		}
	}
	for _, f := range out.Findings {
		if f.Object == "public.accounts" && f.Check != "row_level_security" {
			t.Errorf("unexpected finding %+v", f) // it has a key and the role may read it
		}
	}
	if out.OK || out.Errors != 2 || out.Findings[0].Severity != "error" {
		t.Errorf("ok %v, %d errors, first %+v", out.OK, out.Errors, out.Findings[0])
	}
}

// TestPreflightOldPgDump: a pg_dump older than the source server is an error.
func TestPreflightOldPgDump(t *testing.T) {
	t.Parallel()
	old := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(t)}
	out := preflightT(t, &PreflightArgs{Source: src, PgDumpPath: old})
	f := pfFinding(out, "pg_dump", old)
	if f == nil || f.Severity != "error" || !strings.Contains(f.Message, "9.6.24") || out.OK {
		t.Errorf("findings %+v", out.Findings)
	}
	if out.PgDumpVersion != "9.6.24" || out.PgRestoreVersion == "" || out.TargetVersion != "" {
		t.Errorf("versions: %+v", out)
	}
}
