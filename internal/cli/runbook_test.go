package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/examples"
	"github.com/planrun/planrun/internal/cli"
	"github.com/planrun/planrun/internal/herokufake"
	"github.com/planrun/planrun/internal/pgtest"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/internal/steptest"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

const (
	herokuToken = "hk-token-7Yq2x9"
	appSecret   = "sk-live-app-secret-Qw3" // a config var of the app: never recorded
)

// runbookSetup makes what the runbook moves between: a source database
// seeded by a role that owns it and is not superuser (as Heroku's), an
// empty target owned by another such role (as RDS's master user), both
// with URL-hostile passwords; and a fake Platform API with app "shop"
// whose Heroku Postgres add-on holds the source, attached as DATABASE and
// HEROKU_POSTGRESQL_COBALT. It returns the role URLs, the API, its server's
// URL and the plan file.
func runbookSetup(t *testing.T, size sampleapp.Size) (srcURL, dstURL string, api *herokufake.API, apiURL, planPath string) {
	t.Helper()
	srcURL, dstURL = ownedDB(t, Source), ownedDB(t, Target)
	if err := sampleapp.Seed(context.Background(), srcURL, size); err != nil {
		t.Fatal(err)
	}
	api = herokufake.New(herokuToken)
	api.AddApp("shop", map[string]string{"RAILS_ENV": "production", "SECRET_KEY_BASE": appSecret})
	api.ProvisionPostgres("shop", "COBALT", srcURL)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	planPath = filepath.Join(t.TempDir(), "plan.hcl")
	if err := os.WriteFile(planPath, examples.HerokuToRDS, 0o644); err != nil {
		t.Fatal(err)
	}
	return srcURL, dstURL, api, srv.URL, planPath
}

// ownedDB is a fresh database on server, owned by a role of its own
// without superuser; the URL logs in as that role.
func ownedDB(t *testing.T, server *pgtest.Server) string {
	t.Helper()
	admin := server.FreshDB(t)
	db := strings.TrimPrefix(mustParseURL(t, admin).Path, "/")
	u := steptest.Role(t, server, admin, "ALTER DATABASE "+db+" OWNER TO %s")
	// Before the role is dropped (cleanups run last first): it owns the database.
	t.Cleanup(func() { steptest.MustExec(t, admin, "ALTER DATABASE "+db+" OWNER TO "+pgtest.SuperUser) })
	return u
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func applyRunbook(t *testing.T, planPath, srcURL, dstURL, apiURL string) (int, string, string) {
	t.Helper()
	return runCLI(t, "apply", "--auto-approve", planPath,
		"-var", "source_url="+srcURL, "-var", "target_url="+dstURL, "-var", "jobs=2",
		"-var", "heroku_app=shop", "-var", "heroku_api="+apiURL, "-var", "heroku_api_token="+herokuToken)
}

func assertNoSecrets(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(text, url.QueryEscape(s)) {
			t.Fatalf("a secret was printed:\n%s", text)
		}
	}
}

// jsonText is v as encoding/json writes it (go-cty's JSON escapes & < > too).
func jsonText(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// assertNotRecorded reads every file under dir (the run records) for the secrets.
func assertNotRecorded(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, ".planrun"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Errorf("%s holds a secret", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHerokuToRDSRunbook(t *testing.T) {
	srcURL, dstURL, api, apiURL, planPath := runbookSetup(t, sampleapp.Default)
	// Heroku's traps, as its roles meet them: extensions a superuser put in
	// schema heroku_ext, the database's search_path set to reach them, and
	// a table whose row-level security its owner is subject to (FORCE),
	// with no BYPASSRLS to be had.
	srcDB := strings.TrimPrefix(mustParseURL(t, srcURL).Path, "/")
	steptest.MustExec(t, Source.URL(srcDB), "CREATE SCHEMA heroku_ext; CREATE EXTENSION hstore SCHEMA heroku_ext")
	steptest.MustExec(t, srcURL, `ALTER DATABASE `+srcDB+` SET search_path = "$user", public, heroku_ext;
CREATE TABLE tenant_notes (id int PRIMARY KEY, tenant text NOT NULL, note text);
INSERT INTO tenant_notes SELECT g, 't' || (g % 3), 'note ' || g FROM generate_series(1, 30) g;
ALTER TABLE tenant_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY own_tenant ON tenant_notes USING (tenant = current_setting('app.tenant', true))`)
	// The first "maintenance off" meets a 503: retried, the run succeeds.
	api.Fail("PATCH /apps/{app}", 2, http.StatusServiceUnavailable)
	code, out, errOut := applyRunbook(t, planPath, srcURL, dstURL, apiURL)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s\ncalls:\n%s", code, out, errOut, strings.Join(api.Calls(), "\n"))
	}
	assertNoSecrets(t, out+errOut, appSecret, herokuToken, password(t, srcURL), password(t, dstURL))
	if !regexp.MustCompile(`Downtime \(start of step.maintenance_on to end of step.maintenance_off\): \d`).MatchString(out) {
		t.Errorf("the downtime window is reported:\n%s", out)
	}
	// The old database stays attached (as its color); DATABASE_URL is the
	// target, a plain config var now; the other vars are untouched.
	cfg := api.Config("shop")
	if cfg["DATABASE_URL"] != dstURL || cfg["HEROKU_POSTGRESQL_COBALT_URL"] != srcURL || cfg["RAILS_ENV"] != "production" || api.Maintenance("shop") {
		t.Errorf("after the run: config %v, maintenance %v", cfg, api.Maintenance("shop"))
	}
	if got := api.Attachments("shop"); len(got) != 1 || !strings.HasPrefix(got[0], "HEROKU_POSTGRESQL_COBALT=") {
		t.Errorf("attachments: %v", got)
	}
	calls := api.Calls()
	want := []string{
		`GET /apps/shop/addon-attachments/DATABASE`,
		`PATCH /apps/shop {"maintenance":true}`,
		`GET /apps/shop/addon-attachments`,
		`DELETE /addon-attachments/attachment-0002`,
		`PATCH /apps/shop/config-vars {"DATABASE_URL":` + jsonText(t, dstURL) + `}`,
		`PATCH /apps/shop {"maintenance":false}`,
		`PATCH /apps/shop {"maintenance":false}`,
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("platform calls:\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	assertSameData(t, srcURL, dstURL)
	assertSequencesWork(t, dstURL)
	// Every row of the FORCE'd table arrived (read as the superuser, whom
	// no policy filters), FORCE is on again on both sides, and the target
	// database reaches heroku_ext unqualified, as the app will.
	dstDB := strings.TrimPrefix(mustParseURL(t, dstURL).Path, "/")
	if got := steptest.Query(t, Target.URL(dstDB), "SELECT count(*) FROM tenant_notes"); got[0] != "30" {
		t.Errorf("tenant_notes on the target: %v rows", got)
	}
	for side, u := range map[string]string{"source": Source.URL(srcDB), "target": Target.URL(dstDB)} {
		if got := steptest.Query(t, u, "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'tenant_notes'"); got[0] != "true" {
			t.Errorf("%s: FORCE ROW LEVEL SECURITY is off", side)
		}
	}
	if got := steptest.Query(t, dstURL, "SELECT (hstore('a', 'b') -> 'a')"); got[0] != "b" {
		t.Errorf("hstore unqualified on the target: %v", got)
	}

	assertNotRecorded(t, filepath.Dir(planPath), appSecret, herokuToken, password(t, srcURL), password(t, dstURL))

	// Reading the record needs none of the plan's variables.
	for _, args := range [][]string{{"status", planPath}, {"history", planPath}, {"report", planPath}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || strings.Contains(out, "changed since") || !strings.Contains(out, "succeeded") {
			t.Errorf("%s without -var: exit %d\n%s\n%s", args[0], code, out, errOut)
		}
		assertNoSecrets(t, out+errOut, appSecret, herokuToken, password(t, srcURL), password(t, dstURL))
	}
	// Rollback runs hooks: it still wants them.
	if code, _, errOut := runCLI(t, "rollback", "--auto-approve", planPath); code != 2 || !strings.Contains(errOut, "No value for required variable") {
		t.Errorf("rollback without -var: exit %d\n%s", code, errOut)
	}
}

// A failure after the switch (maintenance off refused) rolls back: the
// plain DATABASE_URL goes, the Heroku database is attached as DATABASE
// again, and maintenance ends even though its first attempt meets a 503.
func TestHerokuToRDSRunbookRollsBackTheSwitch(t *testing.T) {
	srcURL, dstURL, api, apiURL, planPath := runbookSetup(t, sampleapp.Small)
	// Only DATABASE holds the add-on: the runbook must attach it under a
	// second name before it detaches DATABASE.
	req, _ := http.NewRequest("DELETE", apiURL+"/addon-attachments/attachment-0003", nil)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Authorization", "Bearer "+herokuToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("detach the color: %v %v", resp, err)
	}
	api.Fail("PATCH /apps/{app}", 2, http.StatusUnprocessableEntity) // maintenance_off
	api.Fail("PATCH /apps/{app}", 3, http.StatusServiceUnavailable)  // the rollback's first try
	code, out, errOut := applyRunbook(t, planPath, srcURL, dstURL, apiURL)
	if code != 1 {
		t.Fatalf("apply: exit %d, want 1\n%s\n%s\ncalls:\n%s", code, out, errOut, strings.Join(api.Calls(), "\n"))
	}
	if !strings.Contains(out+errOut, "status 422: Injected failure. (invalid_params)") {
		t.Errorf("the API's message is shown:\n%s\n%s", out, errOut)
	}
	cfg := api.Config("shop")
	if cfg["DATABASE_URL"] != srcURL || api.Maintenance("shop") {
		t.Errorf("after the rollback: config %v, maintenance %v", cfg, api.Maintenance("shop"))
	}
	// The second name made to keep the old database stays: harmless, and
	// a later run finds it.
	if got := api.Attachments("shop"); len(got) != 2 || !strings.HasPrefix(got[0], "DATABASE=addon-0001") || !strings.HasPrefix(got[1], "OLD_DATABASE=addon-0001") {
		t.Errorf("attachments: %v", got)
	}
	calls := strings.Join(api.Calls()[1:], "\n") // after the test's own DELETE
	want := strings.Join([]string{
		`GET /apps/shop/addon-attachments/DATABASE`,
		`PATCH /apps/shop {"maintenance":true}`,
		`GET /apps/shop/addon-attachments`,
		`POST /addon-attachments {"addon":"addon-0001","app":"shop","name":"OLD_DATABASE"}`,
		`DELETE /addon-attachments/attachment-0002`,
		`PATCH /apps/shop/config-vars {"DATABASE_URL":` + jsonText(t, dstURL) + `}`,
		`PATCH /apps/shop {"maintenance":false}`,
		// The rollbacks, newest first.
		`PATCH /apps/shop/config-vars {"DATABASE_URL":null}`,
		`POST /addon-attachments {"addon":"addon-0001","app":"shop","name":"DATABASE"}`,
		`PATCH /apps/shop {"maintenance":false}`,
		`PATCH /apps/shop {"maintenance":false}`,
	}, "\n")
	if calls != want {
		t.Fatalf("platform calls:\n%s\nwant\n%s", calls, want)
	}
	// The window closed when the rollback ended maintenance: measured.
	if !regexp.MustCompile(`Downtime \(start of step.maintenance_on to end of the rollback of step.maintenance_on\): \d`).MatchString(out) {
		t.Errorf("the downtime window of the failed run:\n%s", out)
	}
	code, rep, errOut := runCLI(t, "report", planPath)
	if code != 0 || !regexp.MustCompile(`\| Downtime \| \*\*[0-9.]+m?s\*\* \(from the start of step.maintenance\\_on to the end of the rollback of step.maintenance\\_on \(step.maintenance\\_off did not complete\), as the run measured it\) \|`).MatchString(rep) {
		t.Errorf("report without -var: exit %d\n%s\n%s", code, rep, errOut)
	}
}

// assertSameData compares the two databases with its own queries: every
// table's row count and an ordered checksum of its rows, the large objects
// and the materialized view.
func assertSameData(t *testing.T, srcURL, dstURL string) {
	t.Helper()
	ctx := context.Background()
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	// Text renderings must not depend on session settings.
	for _, c := range []*pgx.Conn{src, dst} {
		if _, err := c.Exec(ctx, "SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET DateStyle = 'ISO'"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := src.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('app', 'billing', 'audit') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	total := int64(0)
	for _, table := range tables {
		q := fmt.Sprintf("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t", table)
		var n1, n2 int64
		var h1, h2 string
		if err := src.QueryRow(ctx, q).Scan(&n1, &h1); err != nil {
			t.Fatalf("%s on the source: %v", table, err)
		}
		if err := dst.QueryRow(ctx, q).Scan(&n2, &h2); err != nil {
			t.Fatalf("%s on the target: %v", table, err)
		}
		if n1 != n2 || h1 != h2 {
			t.Errorf("%s differs: %d rows (%s) on the source, %d (%s) on the target", table, n1, h1, n2, h2)
		}
		if n1 == 0 {
			t.Errorf("%s is empty on the source: the check proves nothing", table)
		}
		total += n1
	}
	if total < 200000 {
		t.Errorf("the sample holds %d rows; the runbook should move at least 200,000", total)
	}
	lo := `SELECT count(*), coalesce(md5(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid)), '') FROM pg_largeobject_metadata`
	var l1, l2 int64
	var m1, m2 string
	if err := src.QueryRow(ctx, lo).Scan(&l1, &m1); err != nil {
		t.Fatal(err)
	}
	if err := dst.QueryRow(ctx, lo).Scan(&l2, &m2); err != nil {
		t.Fatal(err)
	}
	if l1 == 0 || l1 != l2 || m1 != m2 {
		t.Errorf("large objects: %d (%s) vs %d (%s)", l1, m1, l2, m2)
	}
	var notValid int
	if err := dst.QueryRow(ctx, "SELECT count(*) FROM pg_constraint WHERE NOT convalidated").Scan(&notValid); err != nil || notValid != 1 {
		t.Errorf("the NOT VALID constraint must stay NOT VALID: %d %v", notValid, err)
	}
}

// assertSequencesWork inserts without explicit ids on the target: serial,
// bigserial and both kinds of identity columns must hand out fresh keys.
func assertSequencesWork(t *testing.T, dstURL string) {
	t.Helper()
	ctx := context.Background()
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	inserts := []string{
		`INSERT INTO app.customers (email, name, created_at) VALUES ('new@example.com', 'New', now()) RETURNING id::bigint`,
		`INSERT INTO app.products (sku, title, price) VALUES ('SKU-NEW', 'New', 1) RETURNING id`,
		`INSERT INTO app.orders (customer_id, status, placed_at) VALUES (1, 'pending', now()) RETURNING id`,
		`INSERT INTO billing.invoices (order_id, number, issued_on, amount) VALUES (1, 'INV-NEW', now(), 1) RETURNING id`,
	}
	for _, q := range inserts {
		var id int64
		if err := dst.QueryRow(ctx, q).Scan(&id); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}
