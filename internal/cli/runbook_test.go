package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/examples"
	"github.com/planrun/planrun/internal/cli"
	"github.com/planrun/planrun/internal/sampleapp"
)

// fakeHeroku is the Heroku Platform API as far as the runbook uses it.
type fakeHeroku struct {
	mu    sync.Mutex
	calls []string
	token string
}

func (f *fakeHeroku) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token || !strings.Contains(r.Header.Get("Accept"), "version=3") {
		http.Error(w, `{"id":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+string(body))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	if m, ok := in["maintenance"]; ok {
		fmt.Fprintf(w, `{"name":"shop","maintenance":%v}`, m)
		return
	}
	w.Write([]byte(`{}`))
}

func (f *fakeHeroku) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHerokuToRDSRunbook(t *testing.T) {
	ctx := context.Background()
	srcURL, dstURL := Source.FreshDB(t), Target.FreshDB(t)
	if err := sampleapp.Seed(ctx, srcURL, sampleapp.Default); err != nil {
		t.Fatal(err)
	}
	api := &fakeHeroku{token: "hk-token-7Yq2"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planPath, examples.HerokuToRDS, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "apply", "--auto-approve", planPath,
		"-var", "source_url="+srcURL, "-var", "target_url="+dstURL, "-var", "jobs=2",
		"-var", "heroku_app=shop", "-var", "heroku_api="+srv.URL, "-var", "heroku_api_token="+api.token)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, secret := range []string{api.token, Source.Password, Target.Password} {
		if strings.Contains(out+errOut, secret) {
			t.Fatalf("a secret was printed:\n%s%s", out, errOut)
		}
	}
	if !strings.Contains(out, "Downtime (start of step.maintenance_on to end of step.maintenance_off):") {
		t.Errorf("the downtime window is reported:\n%s", out)
	}
	calls := api.list()
	want := []string{
		`PATCH /apps/shop {"maintenance":true}`,
		`PATCH /apps/shop/config-vars {"DATABASE_URL":"` + dstURL + `"}`,
		`PATCH /apps/shop {"maintenance":false}`,
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("platform calls:\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	assertSameData(t, srcURL, dstURL)
	assertSequencesWork(t, dstURL)
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
