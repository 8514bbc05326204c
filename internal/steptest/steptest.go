// Package steptest holds what the step types' tests share: contexts and
// environments for running a type directly, fresh database pairs and roles
// on the package's throwaway servers, and SQL for setting up and checking
// (through pgx, so that no type's test depends on the sql type).
package steptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/steps/steptype"
)

// Env is an environment for running a type directly in a test.
func Env(t *testing.T) *steptype.Env {
	return &steptype.Env{PlanDir: t.TempDir(), Secrets: func(...string) {}}
}

// DB names a database URL as a database argument.
func DB(url string) *pgkit.Database { return &pgkit.Database{Name: "src", URL: url} }

// Result is what SQL read: the rows of the script's last statement.
type Result struct {
	Rows []map[string]any
}

// SQL runs a script (several statements are fine) on a database as a
// test's setup or check, and returns the last statement's rows.
func SQL(ctx context.Context, dbURL, script string) (*Result, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	results, err := conn.PgConn().Exec(ctx, script).ReadAll()
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []map[string]any{}}
	if len(results) == 0 {
		return res, nil
	}
	last := results[len(results)-1]
	for _, raw := range last.Rows {
		row := map[string]any{}
		for i, f := range last.FieldDescriptions {
			v, err := pgkit.Value(conn.TypeMap(), f.DataTypeOID, f.Format, raw[i])
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", f.Name, err)
			}
			row[f.Name] = v
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// MustSQL is SQL that fails the test on an error.
func MustSQL(t testing.TB, dbURL, script string) *Result {
	t.Helper()
	out, err := SQL(Ctx(t), dbURL, script)
	if err != nil {
		t.Fatalf("setup SQL: %v\n%s", err, script)
	}
	return out
}

func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Exec runs SQL (several statements are fine) on a database as the superuser.
func Exec(t testing.TB, dbURL, sql string) error {
	t.Helper()
	ctx := Ctx(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func MustExec(t testing.TB, dbURL, sql string) {
	t.Helper()
	if err := Exec(t, dbURL, sql); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

// Pair makes a fresh database on each server, runs common on both and
// the other statements on one side, and returns them as arguments.
func Pair(t *testing.T, source, target *pgtest.Server, common, sourceOnly, targetOnly string) (src, tgt *pgkit.Database) {
	t.Helper()
	src = &pgkit.Database{Name: "source", URL: source.FreshDB(t)}
	tgt = &pgkit.Database{Name: "target", URL: target.FreshDB(t)}
	for _, s := range []struct {
		db  *pgkit.Database
		sql string
	}{{src, common}, {tgt, common}, {src, sourceOnly}, {tgt, targetOnly}} {
		if s.sql != "" {
			MustExec(t, s.db.URL, s.sql)
		}
	}
	return src, tgt
}

func ReadOnlyEnv(t *testing.T) *steptype.Env {
	return &steptype.Env{PlanDir: t.TempDir(), Secrets: func(...string) {}, ReadOnly: true, Log: t.Logf}
}

// HostilePassword is a password made of every character that a
// connection string must encode or quote — as production passwords are —
// around unique, so that a test can grep for it.
func HostilePassword(unique string) string {
	return `p@ss:/w%rd#?&=' \"é` + unique
}

// Role creates a login role with a password on server, runs grant
// (with %s for the role's name) in the database, and returns the
// database's URL as that role. The role is dropped after the test.
func Role(t *testing.T, server *pgtest.Server, dbURL, grant string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name, password := "planrun_role_"+hex.EncodeToString(b), HostilePassword(hex.EncodeToString(b))
	MustExec(t, dbURL, "CREATE ROLE "+name+" LOGIN PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"'; "+strings.ReplaceAll(grant, "%s", name))
	t.Cleanup(func() {
		// Privileges in the database would keep the role alive: drop them first.
		if err := Exec(t, dbURL, "DROP OWNED BY "+name+"; DROP ROLE "+name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

func SecretsEnv() (*steptype.Env, func() []string) {
	var mu sync.Mutex
	var secrets []string
	env := &steptype.Env{Addr: "step.test", Secrets: func(s ...string) {
		mu.Lock()
		secrets = append(secrets, s...)
		mu.Unlock()
	}}
	return env, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), secrets...)
	}
}

// HangingHTTP never answers until the client goes away.
func HangingHTTP(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Pgbench loads pgbench's tables at a scale into a database.
func Pgbench(ctx context.Context, b testing.TB, db *pgkit.Database, scale int) {
	bin, _, err := pgkit.Tool(ctx, "pgbench", 0)
	if err != nil {
		b.Fatal(err)
	}
	conn, environ, err := pgkit.LibPQ(nil, db)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "-i", "-q", "-s", fmt.Sprint(scale), conn)
	cmd.Env = environ
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
}

// pgbenchTPS reads the TPS line of pgbench's report.
var pgbenchTPS = regexp.MustCompile(`tps = ([0-9.]+)`)

// PgbenchRun runs pgbench's TPC-B-like script (-n: no vacuum first) with
// args against db and returns its TPS. It returns an error rather than
// failing the test: benchmarks run it on goroutines of their own too.
func PgbenchRun(ctx context.Context, db *pgkit.Database, args ...string) (float64, error) {
	bin, _, err := pgkit.Tool(ctx, "pgbench", 0)
	if err != nil {
		return 0, err
	}
	conn, environ, err := pgkit.LibPQ(nil, db)
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, bin, append(append([]string{"-n"}, args...), conn)...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := pgbenchTPS.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no tps in\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// PgbenchKeyed loads pgbench's tables at a scale into db, pgbench_history
// given a key (capture needs one, so the cost benchmarks of capture and
// replicate run one workload), and vacuums them.
func PgbenchKeyed(ctx context.Context, b testing.TB, db *pgkit.Database, scale int) {
	Pgbench(ctx, b, db, scale)
	MustExec(b, db.URL, "ALTER TABLE pgbench_history ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
	MustExec(b, db.URL, "VACUUM ANALYZE")
}

// MustPgbenchRun is PgbenchRun failing b on an error: only on b's own
// goroutine.
func MustPgbenchRun(ctx context.Context, b testing.TB, db *pgkit.Database, args ...string) float64 {
	b.Helper()
	tps, err := PgbenchRun(ctx, db, args...)
	if err != nil {
		b.Fatal(err)
	}
	return tps
}
