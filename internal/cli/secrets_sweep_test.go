package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/steptest"
)

// sweepPlan takes secrets through every path that shows or records
// something: outputs echoing a connection string (URL and key=value), a
// sensitive value longer than every cut, an assertion that reads it, SQL,
// pg_dump and pg_restore on roles with URL-hostile passwords, an HTTP
// error whose body echoes the secrets.
const sweepPlan = `
plan "sweep" {}
variable "src_url" { type = string }
variable "tgt_conn" { type = string }
variable "hook" { type = string }
variable "long" {
  type      = string
  sensitive = true
}
database "src" { url = var.src_url }
database "tgt" { url = var.tgt_conn }
step "show" {
  uses    = "exec"
  command = ["echo", database.src.url, database.tgt.url]
}
step "long" {
  uses    = "exec"
  command = ["echo", "long:", var.long]
  assert {
    that     = "output.stdout == 'never'"
    severity = "warn"
    message  = "it said {{ output.stdout }}"
  }
}
step "query" {
  uses     = "sql"
  database = database.tgt
  query    = "SELECT current_user AS who"
}
step "dump" {
  uses     = "pg_dump"
  database = database.src
  path     = "dump"
}
step "restore" {
  uses       = "pg_restore"
  database   = database.tgt
  path       = step.dump.output.path
  no_owner   = true
}
step "hook" {
  uses       = "http"
  url        = var.hook
  headers    = { "X-Token" = var.long, "X-Db" = database.src.url, "X-Tgt" = database.tgt.url }
  depends_on = [step.restore, step.query, step.long, step.show]
}
`

// sweepBadPlans fail in pgx and in pg_dump, on a database that does not
// exist, reached with a real password.
const sweepBadSQL = `
plan "sweep-sql" {}
variable "bad_url" { type = string }
database "bad" { url = var.bad_url }
step "q" {
  uses     = "sql"
  database = database.bad
  query    = "SELECT 1"
}
`

const sweepBadDump = `
plan "sweep-dump" {}
variable "bad_url" { type = string }
database "bad" { url = var.bad_url }
step "d" {
  uses     = "pg_dump"
  database = database.bad
  path     = "d"
}
`

func TestNoSecretInAnyOutput(t *testing.T) {
	for _, store := range []string{"file", "postgres"} {
		t.Run(store, func(t *testing.T) { sweepSecrets(t, store) })
	}
}

func sweepSecrets(t *testing.T, store string) {
	srcAdmin := Source.FreshDB(t)
	steptest.MustSQL(t, srcAdmin, "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g")
	srcURL := steptest.Role(t, Source, srcAdmin, "GRANT SELECT ON items TO %s")
	tgtAdmin := Target.FreshDB(t)
	tgtURL := steptest.Role(t, Target, tgtAdmin, "GRANT CREATE ON SCHEMA public TO %s")
	tgtConn := keywordForm(t, tgtURL)
	bad, err := url.Parse(srcURL)
	if err != nil {
		t.Fatal(err)
	}
	bad.Path = "/no_such_database"
	b := make([]byte, 1300)
	_, _ = rand.Read(b)
	long := "LONG-" + hex.EncodeToString(b) // longer than every cut (200, 300, 2000 bytes)

	secrets := []string{password(t, srcURL), password(t, tgtURL), long}
	var state []string
	if store == "postgres" {
		stateAdmin := Source.FreshDB(t)
		stateURL := steptest.Role(t, Source, stateAdmin, "GRANT CREATE ON DATABASE "+dbOf(t, stateAdmin)+" TO %s")
		state = []string{"--state-url", stateURL}
		secrets = append(secrets, password(t, stateURL))
	}

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		// As a PHP API answers: JSON with "/" escaped and non-ASCII as \u
		// escapes; the secrets must be hidden in that form too.
		raw, _ := json.Marshal(map[string]string{"token": r.Header.Get("X-Token"), "db": r.Header.Get("X-Db"), "tgt": r.Header.Get("X-Tgt")})
		body := strings.ReplaceAll(string(raw), "/", `\/`)
		var ascii strings.Builder
		for _, c := range body {
			if c > 127 {
				fmt.Fprintf(&ascii, `\u%04x`, c)
			} else {
				ascii.WriteRune(c)
			}
		}
		fmt.Fprintf(w, "denied: %s", ascii.String())
	}))
	defer hook.Close()

	dir := t.TempDir()
	varDir := t.TempDir() // the inputs hold the secrets: kept out of the swept directory
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	plans := map[string]string{"main": sweepPlan, "sql": sweepBadSQL, "dump": sweepBadDump}
	for name, text := range plans {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(dir, name, "plan.hcl"), text)
	}
	vars := filepath.Join(varDir, "vars.json")
	write(vars, fmt.Sprintf(`{"src_url": %q, "tgt_conn": %q, "hook": %q, "long": %q}`, srcURL, tgtConn, hook.URL, long))
	badVars := filepath.Join(varDir, "bad.json")
	write(badVars, fmt.Sprintf(`{"bad_url": %q}`, bad.String()))

	var shown strings.Builder
	run := func(planDir string, wantOK bool, args ...string) string {
		t.Helper()
		if args[0] != "validate" {
			args = append(args[:1], append(append([]string{}, state...), args[1:]...)...)
		}
		code, stdout, stderr := runPlanrun(t, filepath.Join(dir, planDir), args...)
		shown.WriteString(stdout + stderr)
		if wantOK != (code == 0) {
			t.Fatalf("planrun %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout + stderr
	}
	run("main", true, "validate", "-var-file", vars, "plan.hcl")
	run("main", true, "plan", "-var-file", vars, "plan.hcl")
	run("main", false, "apply", "-var-file", vars, "plan.hcl") // the confirmation, refused: no terminal
	out := run("main", false, "apply", "--auto-approve", "-var-file", vars, "plan.hcl")
	if !strings.Contains(out, "403") || !strings.Contains(out, redact.Mask) {
		t.Fatalf("the run did not get to the hook, or shows nothing redacted:\n%s", out)
	}
	run("main", false, "apply", "--auto-approve", "--json", "--restart", "-var-file", vars, "plan.hcl")
	for _, args := range [][]string{{"report"}, {"report", "--format", "json"}, {"report", "-o", "report.md"}, {"report", "--format", "html", "-o", "report.html"}, {"status"}, {"history"}} {
		run("main", true, append(args, append([]string{"-var-file", vars}, "plan.hcl")...)...)
	}
	run("sql", false, "apply", "--auto-approve", "-var-file", badVars, "plan.hcl")
	run("dump", false, "apply", "--auto-approve", "-var-file", badVars, "plan.hcl")
	if got := steptest.Query(t, tgtAdmin, "SELECT count(*) FROM public.items"); got[0] != "50" {
		t.Fatalf("the restore did not run: %v", got)
	}

	// Every byte written: the terminal, every file beside the plans, the
	// Postgres store's every row.
	everything := []string{shown.String()}
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || filepath.Base(path) == "plan.hcl" {
			return err
		}
		raw, err := os.ReadFile(path)
		everything = append(everything, path+":\n"+string(raw))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if store == "postgres" {
		everything = append(everything, stateRows(t, state[1])...)
	}
	var forms []string
	for _, s := range secrets {
		forms = append(forms, redact.Forms(s)...)
	}
	for i := 0; i+24 <= len(long); i += 97 { // any piece of the long one, wherever a cut fell
		forms = append(forms, long[i:i+24])
	}
	for _, text := range everything {
		for _, f := range forms {
			if i := strings.Index(text, f); i >= 0 {
				head, _, _ := strings.Cut(text, "\n")
				t.Errorf("a secret (form %q) shows in %s: ...%s...", f, head, text[max(0, i-80):min(len(text), i+len(f)+40)])
			}
		}
	}
}

// keywordForm writes a URL as a key=value string, the password quoted.
func keywordForm(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return fmt.Sprintf("host=%s port=%s dbname=%s user=%s password='%s' sslmode=disable", u.Hostname(), u.Port(),
		strings.TrimPrefix(u.Path, "/"), u.User.Username(), strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw))
}

func password(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return pw
}

func dbOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// stateRows reads every row of the Postgres store's tables as text (the
// event lines decoded).
func stateRows(t *testing.T, stateURL string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables := steptest.QueryConn(t, conn, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'planrun'")
	if len(tables) == 0 {
		t.Fatal("the Postgres store has no tables")
	}
	var out []string
	for _, table := range tables {
		cols := steptest.QueryConn(t, conn, `SELECT CASE WHEN atttypid = 'bytea'::regtype AND attname = 'line' THEN format('convert_from(%I, ''UTF8'')', attname)
			WHEN atttypid = 'bytea'::regtype THEN format('encode(%I, ''escape'')', attname) ELSE format('%I::text', attname) END
			FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table)
		rows := steptest.QueryConn(t, conn, "SELECT concat_ws(' ', "+strings.Join(cols, ", ")+") FROM "+table)
		out = append(out, table+":\n"+strings.Join(rows, "\n"))
	}
	return out
}
