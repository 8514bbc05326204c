package pgdump

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/steptest"
)

// pg_dump reaches a server as RDS is reached: sslmode=verify-full against
// a CA bundle, as a role with a password that needs encoding or quoting.
// Every parameter of the user's string must reach libpq; before, only
// host, port, user, dbname and sslmode did, and libpq looked for the CA in
// ~/.postgresql/root.crt instead.
func TestPgDumpVerifyFull(t *testing.T) {
	server, caFile := steptest.TLSServer(t)
	admin := server.FreshDB(t)
	steptest.MustSQL(t, admin, "CREATE TABLE things (id int PRIMARY KEY); INSERT INTO things SELECT generate_series(1, 10)")
	roleURL := steptest.Role(t, server, admin, "GRANT SELECT ON things TO %s")
	u, err := url.Parse(roleURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	u.Host = fmt.Sprintf("localhost:%d", server.Port)
	u.RawQuery = "sslmode=verify-full&sslrootcert=" + url.QueryEscape(caFile) + "&application_name=mover"
	dbname := strings.TrimPrefix(u.Path, "/")
	keyword := fmt.Sprintf("host=localhost port=%d dbname=%s user=%s password='%s' sslmode=verify-full sslrootcert='%s'",
		server.Port, dbname, u.User.Username(), strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password), caFile)
	for name, conn := range map[string]string{"url": u.String(), "keyword": keyword} {
		t.Run(name, func(t *testing.T) {
			env, secrets := steptest.SecretsEnv()
			env.PlanDir = t.TempDir()
			out, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(conn), Path: "dump.sql", Format: "plain"})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(env.PlanDir, "dump.sql"))
			if err != nil || !strings.Contains(string(raw), "CREATE TABLE public.things") {
				t.Fatalf("dump (%+v): %v\n%.300s", out, err, raw)
			}
			if got := strings.Join(secrets(), "\n"); !strings.Contains(got, password) {
				t.Errorf("the password was not registered: %q", got)
			}
		})
	}
	// The same string without the CA bundle fails: the test would pass
	// without sslrootcert reaching libpq otherwise.
	u.RawQuery = "sslmode=verify-full&sslrootcert=" + url.QueryEscape(filepath.Join(t.TempDir(), "none.pem"))
	env := steptest.Env(t)
	if _, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(u.String()), Path: "x.sql", Format: "plain"}); err == nil {
		t.Fatal("a missing CA bundle did not fail")
	}
}
