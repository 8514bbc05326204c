package preflight

import (
	"fmt"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// TestPreflightHerokuRoles runs preflight as Heroku and RDS roles meet a
// move: a source role that owns its tables and database without BYPASSRLS,
// extensions in heroku_ext found through the database's search_path, a
// FORCE'd RLS table and a role-in-database setting; a target role that
// owns its database with CREATEDB only. Each trap is named with a fix
// those roles can run, and the log says every finding whole, one a line.
func TestPreflightHerokuRoles(t *testing.T) {
	t.Parallel()
	srcAdmin, tgtAdmin := Source.FreshDB(t), Target.FreshDB(t)
	srcName, tgtName := steptest.DBName(t, srcAdmin), steptest.DBName(t, tgtAdmin)
	steptest.MustExec(t, srcAdmin, `
		CREATE SCHEMA heroku_ext;
		CREATE EXTENSION hstore SCHEMA heroku_ext;
		ALTER DATABASE `+srcName+` SET search_path = "$user", public, heroku_ext;
		CREATE TABLE accounts (id int PRIMARY KEY, tenant text);
		INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
		CREATE POLICY by_tenant ON accounts USING (tenant = current_user);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		ALTER TABLE accounts FORCE ROW LEVEL SECURITY;`)
	src := &pgkit.Database{Name: "heroku", URL: steptest.OwnerRole(t, Source, srcAdmin,
		"ALTER DATABASE "+srcName+" OWNER TO %s; ALTER TABLE accounts OWNER TO %s; ALTER ROLE %s IN DATABASE "+srcName+" SET statement_timeout = '30s'")}
	tgt := &pgkit.Database{Name: "rds", URL: steptest.OwnerRole(t, Target, tgtAdmin, "ALTER ROLE %s CREATEDB; ALTER DATABASE "+tgtName+" OWNER TO %s")}

	env := steptest.ReadOnlyEnv(t)
	var logged []string
	env.Log = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	out, err := runPreflight(steptest.Ctx(t), env, &PreflightArgs{Source: src, Target: tgt})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		check, severity, object string
		says                    []string
	}{
		{"row_level_security", "error", "public.accounts", []string{
			"ALTER TABLE public.accounts NO FORCE ROW LEVEL SECURITY;", "ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;",
			"on the source and on the target", "must be superuser to change bypassrls attribute"}},
		{"target_row_level_security", "warning", "public.accounts", []string{
			"ALTER TABLE public.accounts NO FORCE ROW LEVEL SECURITY;", "ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;",
			"compare fails"}},
		{"database_settings", "warning", "search_path", []string{
			`the source database sets search_path = "$user", public, heroku_ext`, "pg_dump/pg_restore do not carry it",
			`ALTER DATABASE "` + tgtName + `" SET search_path = "$user", public, heroku_ext;`}},
		{"extension_schema", "warning", "hstore", []string{"creates schema heroku_ext on the target", "search_path"}},
	} {
		f := pfFinding(out, w.check, w.object)
		if f == nil {
			t.Errorf("no %s finding for %q in %+v", w.check, w.object, out.Findings)
			continue
		}
		if f.Severity != w.severity {
			t.Errorf("%s %q is %s, want %s", w.check, w.object, f.Severity, w.severity)
		}
		for _, says := range w.says {
			if !strings.Contains(f.Message+" "+f.Fix, says) {
				t.Errorf("%s %q does not say %q:\n%s\nfix: %s", w.check, w.object, says, f.Message, f.Fix)
			}
		}
	}
	var role *PreflightFinding
	for i, f := range out.Findings {
		if f.Check == "role_settings" {
			role = &out.Findings[i]
		}
	}
	if role == nil || !strings.Contains(role.Message, "statement_timeout = '30s'") || !strings.Contains(role.Message, "the target has no role") ||
		!strings.Contains(role.Fix, `IN DATABASE "`+tgtName+`" SET statement_timeout = '30s';`) {
		t.Errorf("role setting: %+v", role)
	}
	// Every error and warning is said whole on one line of the log, fix
	// included, however long.
	for _, f := range out.Findings {
		if f.Severity == "info" {
			continue
		}
		want := fmt.Sprintf("%s: %s: %s (fix: %s)", f.Severity, f.Object, f.Message, f.Fix)
		found := false
		for _, l := range logged {
			found = found || l == want
		}
		if !found {
			t.Errorf("the log does not say, whole:\n%s\nlog:\n%s", want, strings.Join(logged, "\n"))
		}
	}
}
