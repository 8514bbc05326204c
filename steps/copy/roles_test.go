package copy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// roleName is the user a database URL connects as.
func roleName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.User.Username()
}

// TestCopyCarriesSettings copies, as Heroku's and RDS's kinds of roles, a
// database whose extensions live in heroku_ext and are found through the
// database's search_path: the target database gets that search_path, a
// new session there calls hstore unqualified, the target role's own
// setting is carried, and another role's (which the target lacks) is
// named as the statement to run.
func TestCopyCarriesSettings(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	srcAdmin, tgtAdmin := Source.FreshDB(t), Target.FreshDB(t)
	srcName, tgtName := steptest.DBName(t, srcAdmin), steptest.DBName(t, tgtAdmin)
	tgt := steptest.OwnerRole(t, Target, tgtAdmin, "ALTER ROLE %s CREATEDB; ALTER DATABASE "+tgtName+" OWNER TO %s")
	tgtRole := roleName(t, tgt)
	steptest.MustExec(t, srcAdmin, `
		CREATE SCHEMA heroku_ext;
		CREATE EXTENSION hstore SCHEMA heroku_ext;
		ALTER DATABASE `+srcName+` SET search_path = "$user", public, heroku_ext;
		CREATE TABLE kv (id int PRIMARY KEY, h heroku_ext.hstore);
		INSERT INTO kv VALUES (1, heroku_ext.hstore('a', '1')), (2, heroku_ext.hstore('b', '2'));
		CREATE TABLE accounts (id int PRIMARY KEY, tenant text);
		INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
		CREATE POLICY by_tenant ON accounts USING (tenant = current_user);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		CREATE ROLE `+tgtRole+`;
		ALTER ROLE `+tgtRole+` IN DATABASE `+srcName+` SET work_mem = '64MB';`)
	t.Cleanup(func() { steptest.MustExec(t, srcAdmin, "DROP ROLE "+tgtRole) })
	src := steptest.OwnerRole(t, Source, srcAdmin, "ALTER DATABASE "+srcName+" OWNER TO %s; ALTER TABLE kv OWNER TO %s; ALTER TABLE accounts OWNER TO %s; "+
		"ALTER ROLE %s IN DATABASE "+srcName+" SET statement_timeout = '30s'")
	srcRole := roleName(t, src)

	out, err := runCopyTest(t, ctx, copyArgs(src, tgt), "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 4 {
		t.Errorf("copied %d rows, want 4", out.Rows)
	}
	wantSet := []string{
		`ALTER DATABASE "` + tgtName + `" SET search_path = "$user", public, heroku_ext;`,
		`ALTER ROLE "` + tgtRole + `" IN DATABASE "` + tgtName + `" SET work_mem = '64MB';`,
	}
	wantLeft := []string{`ALTER ROLE "` + srcRole + `" IN DATABASE "` + tgtName + `" SET statement_timeout = '30s';`}
	if !slices.Equal(out.Settings, wantSet) || !slices.Equal(out.SettingsLeft, wantLeft) {
		t.Errorf("settings %q, left %q; want %q and %q", out.Settings, out.SettingsLeft, wantSet, wantLeft)
	}
	got := steptest.Query(t, tgtAdmin, `SELECT setconfig::text FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND setrole = 0`)
	if want := `{"search_path=\"$user\", public, heroku_ext"}`; len(got) != 1 || got[0] != want {
		t.Errorf("target database settings %q, want %s", got, want)
	}
	// The application's query, in a new session as the target role.
	if got := steptest.Query(t, tgt, "SELECT hstore('c', '3') -> 'c', (SELECT string_agg(h -> 'a', ',') FROM kv), current_setting('work_mem'), count(*) FROM accounts"); len(got) != 1 || got[0] != "3\t1\t64MB\t2" {
		t.Errorf("an unqualified hstore query on the target: %q", got)
	}
}

// TestCopyRefusesUnreadable: a table the source role may not read and one
// whose FORCE'd row-level security binds it are both found before the
// first write; the copy refuses, names each with its fix, and the target
// stays empty.
func TestCopyRefusesUnreadable(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	srcAdmin, tgtAdmin := Source.FreshDB(t), Target.FreshDB(t)
	tgtName := steptest.DBName(t, tgtAdmin)
	steptest.MustExec(t, srcAdmin, `
		CREATE TABLE big (id int PRIMARY KEY);
		INSERT INTO big SELECT generate_series(1, 1000);
		CREATE TABLE secret (id int PRIMARY KEY);
		CREATE TABLE accounts (id int PRIMARY KEY, tenant text);
		INSERT INTO accounts VALUES (1, 'a');
		CREATE POLICY by_tenant ON accounts USING (tenant = current_user);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		ALTER TABLE accounts FORCE ROW LEVEL SECURITY;`)
	src := steptest.OwnerRole(t, Source, srcAdmin, "ALTER TABLE big OWNER TO %s; ALTER TABLE accounts OWNER TO %s")
	tgt := steptest.OwnerRole(t, Target, tgtAdmin, "ALTER DATABASE "+tgtName+" OWNER TO %s")

	_, err := runCopyTest(t, ctx, copyArgs(src, tgt), "")
	if err == nil || !steptype.IsRefusal(err) {
		t.Fatalf("want a refusal, got %v", err)
	}
	for _, says := range []string{
		"nothing was written",
		"public.secret: role " + roleName(t, src) + " may not read it", "GRANT SELECT ON public.secret TO",
		"public.accounts: FORCE ROW LEVEL SECURITY", "ALTER TABLE public.accounts NO FORCE ROW LEVEL SECURITY;", "ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;",
	} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("the refusal does not say %q:\n%v", says, err)
		}
	}
	if got := steptest.Query(t, tgtAdmin, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`); got[0] != "0" {
		t.Errorf("the target holds %s relations", got[0])
	}
}

// TestCopyRefusesUncreatable: a target role that may create neither the
// source's schema nor tables in public is found before the first write.
func TestCopyRefusesUncreatable(t *testing.T) {
	t.Parallel()
	srcAdmin, tgtAdmin := Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustExec(t, srcAdmin, "CREATE SCHEMA app; CREATE TABLE app.a (id int); CREATE TABLE b (id int)")
	tgt := steptest.OwnerRole(t, Target, tgtAdmin, "") // since PostgreSQL 15, no CREATE in public
	_, err := runCopyTest(t, steptest.Ctx(t), copyArgs(srcAdmin, tgt), "")
	if err == nil || !steptype.IsRefusal(err) {
		t.Fatalf("want a refusal, got %v", err)
	}
	role := pgkit.QuoteIdent(roleName(t, tgt))
	for _, says := range []string{
		"nothing was written",
		"schema app: the target lacks it", "GRANT CREATE ON DATABASE",
		"schema public: role", `GRANT CREATE ON SCHEMA "public" TO ` + role + ";",
	} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("the refusal does not say %q:\n%v", says, err)
		}
	}
	if got := steptest.Query(t, tgtAdmin, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"); got[0] != "0" {
		t.Errorf("the target has schema app")
	}
}

// TestCopyWarnsForcedTarget: a table that FORCEs row-level security
// arrives whole, FORCE and all, on a target whose role owns it without
// BYPASSRLS; the copy says that this role reads it filtered, and how to
// fix it.
func TestCopyWarnsForcedTarget(t *testing.T) {
	t.Parallel()
	srcAdmin, tgtAdmin := Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustExec(t, srcAdmin, `
		CREATE TABLE accounts (id int PRIMARY KEY, tenant text);
		INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
		CREATE POLICY nobody ON accounts USING (false);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		ALTER TABLE accounts FORCE ROW LEVEL SECURITY;`)
	tgt := steptest.OwnerRole(t, Target, tgtAdmin, "ALTER DATABASE "+steptest.DBName(t, tgtAdmin)+" OWNER TO %s")
	env := copyTestEnv(t, "")
	var logged []string
	env.Log = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	out, err := runCopy(steptest.Ctx(t), env, copyArgs(srcAdmin, tgt))
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 2 {
		t.Errorf("copied %d rows", out.Rows)
	}
	if got := steptest.Query(t, tgtAdmin, "SELECT count(*) FROM accounts"); got[0] != "2" {
		t.Errorf("the target holds %s rows", got[0])
	}
	if got := steptest.Query(t, tgt, "SELECT count(*) FROM accounts"); got[0] != "0" {
		t.Errorf("the target role reads %s rows through FORCE: the trap is gone?", got[0])
	}
	log := strings.Join(logged, "\n")
	for _, says := range []string{"warning: public.accounts FORCEs row-level security on the target", "ALTER TABLE public.accounts NO FORCE ROW LEVEL SECURITY;", "ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;"} {
		if !strings.Contains(log, says) {
			t.Errorf("the log does not say %q:\n%s", says, log)
		}
	}
}
