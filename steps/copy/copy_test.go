package copy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// copyExtras adds to the sample app what copy must handle beyond it: a
// table big enough to be split into page ranges, a generated column,
// columns whose types binary COPY cannot carry between databases (an
// array of an enum, a regclass), a table with inheritance children, a
// table without columns, and names that need quoting.
const copyExtras = `
CREATE TABLE public.big (id int PRIMARY KEY, label text NOT NULL, doubled int GENERATED ALWAYS AS (id * 2) STORED, at timestamptz);
INSERT INTO public.big (id, label, at)
  SELECT g, repeat(md5(g::text), 3), timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, 40000) g;
CREATE INDEX big_label_idx ON public.big (label);
CREATE TABLE app.tagged (id serial PRIMARY KEY, states app.order_status[], rel regclass, note text);
INSERT INTO app.tagged (states, rel, note) VALUES
  ('{pending,paid}', 'app.orders', 'a'), (NULL, 'pg_catalog.pg_class', NULL), ('{}', NULL, E'tab\there\nnewline \\ backslash');
CREATE TABLE public.parent (id int, kind text);
CREATE TABLE public.child (extra text) INHERITS (public.parent);
INSERT INTO public.parent VALUES (1, 'parent');
INSERT INTO public.child VALUES (2, 'child', 'x');
CREATE TABLE public.nothing ();
INSERT INTO public.nothing DEFAULT VALUES;
INSERT INTO public.nothing DEFAULT VALUES;
CREATE TABLE "Mixed Case"."Odd ""Name""" (id int, "Value" text);
INSERT INTO "Mixed Case"."Odd ""Name""" VALUES (1, 'one'), (2, NULL);
ANALYZE;
`

// copyTemplate is a database on Source seeded once with the sample app and
// the extras; each test's source is a copy of it (CREATE DATABASE ...
// TEMPLATE copies files, much faster than seeding again).
var copyTemplate struct {
	once sync.Once
	name string
	err  error
}

// copySource returns a source database seeded with the sample app and
// the extras, and an empty target.
func copySource(t *testing.T) (src, dst string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	copyTemplate.once.Do(func() {
		name := fmt.Sprintf("copy_template_%d", time.Now().UnixNano())
		url, err := Source.CreateDatabase(ctx, name)
		if err == nil {
			err = sampleapp.Seed(ctx, url, sampleapp.Small)
		}
		if err == nil {
			err = steptest.ExecContext(ctx, url, `CREATE SCHEMA "Mixed Case";`+copyExtras)
		}
		copyTemplate.name, copyTemplate.err = name, err
	})
	if copyTemplate.err != nil {
		t.Fatal(copyTemplate.err)
	}
	src, dst = Source.FreshDB(t), Target.FreshDB(t)
	// FreshDB named it; replace it with a copy of the template.
	name := src[strings.LastIndex(src, "/")+1 : strings.Index(src, "?")]
	admin := Source.URL("postgres")
	steptest.MustExec(t, admin, "DROP DATABASE "+pgkit.QuoteIdent(name))
	steptest.MustExec(t, admin, "CREATE DATABASE "+pgkit.QuoteIdent(name)+" TEMPLATE "+pgkit.QuoteIdent(copyTemplate.name))
	return src, dst
}

// copyTestEnv is an Env that logs to the test.
func copyTestEnv(t *testing.T, stateDir string) *steptype.Env {
	return &steptype.Env{
		Addr: "step.copy", StateDir: stateDir,
		Log:      func(format string, args ...any) { t.Logf(format, args...) },
		Progress: func(event.Progress) {},
	}
}

func copyArgs(src, dst string) *CopyArgs {
	jobs := 3
	return &CopyArgs{Source: &pgkit.Database{Name: "src", URL: src}, Target: &pgkit.Database{Name: "dst", URL: dst}, Jobs: &jobs, SplitBytes: "1MB"}
}

func runCopyTest(t *testing.T, ctx context.Context, a *CopyArgs, stateDir string) (*CopyOutput, error) {
	t.Helper()
	return runCopy(ctx, copyTestEnv(t, stateDir), a)
}

// runCopyHooked runs a copy with test hooks.
func runCopyHooked(t *testing.T, ctx context.Context, a *CopyArgs, stateDir string, h *copyHooks) (*CopyOutput, error) {
	t.Helper()
	env := copyTestEnv(t, stateDir)
	copyTestHooks.Store(env, h)
	defer copyTestHooks.Delete(env)
	return runCopy(ctx, env, a)
}

// copyTableSums is every table's exact row count and a checksum of its
// rows in a stable order: equal sums mean equal rows, NULLs and all.
// Materialized views are in, so that their data is compared too.
func copyTableSums(t *testing.T, url string) []string {
	t.Helper()
	conn := steptest.Connect(t, url)
	names := steptest.QueryConn(t, conn, `
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 1`)
	var out []string
	for _, name := range names {
		rows := steptest.QueryConn(t, conn, fmt.Sprintf(
			`SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM ONLY %s r`, name))
		out = append(out, name+"\t"+rows[0])
	}
	return out
}

// copyCatalog describes a database's schema in ways that must match after
// a copy: columns (types, NOT NULL, defaults, identity, generation),
// persistence, indexes and their validity, constraints and whether they
// are validated, sequences, views and large objects.
var copyCatalog = map[string]string{
	"columns": `
SELECT format('%I.%I', n.nspname, c.relname), a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity, a.attgenerated, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, a.attnum`,
	"relations": `
SELECT format('%I.%I', n.nspname, c.relname), c.relkind, c.relpersistence, c.relispartition,
       coalesce(pg_get_expr(c.relpartbound, c.oid), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'I') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 1`,
	"indexes": `
SELECT format('%I.%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 1`,
	"constraints": `
SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated
FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
ORDER BY 1, 2`,
	"inheritance":   `SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits ORDER BY 1, 2`,
	"sequences":     `SELECT schemaname, sequencename, last_value, increment_by FROM pg_sequences ORDER BY 1, 2`,
	"matviews":      `SELECT schemaname, matviewname, ispopulated FROM pg_matviews ORDER BY 1, 2`,
	"views":         `SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
	"large objects": `SELECT oid::int8, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1`,
	"types": `SELECT typname, typtype, coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
                     FROM pg_type t WHERE typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND typtype IN ('e', 'd') ORDER BY 1`,
}

// copyAssertSame checks, with SQL of its own, that the target holds what
// the source does.
func copyAssertSame(t *testing.T, src, dst string) {
	t.Helper()
	copyAssertEqual(t, "rows", copyTableSums(t, src), copyTableSums(t, dst))
	s, d := steptest.Connect(t, src), steptest.Connect(t, dst)
	for what, q := range copyCatalog {
		copyAssertEqual(t, what, steptest.QueryConn(t, s, q), steptest.QueryConn(t, d, q))
	}
	if bad := steptest.QueryConn(t, d, `SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid OR NOT indisready`); len(bad) > 0 {
		t.Errorf("invalid indexes on the target: %v", bad)
	}
}

func copyAssertEqual(t *testing.T, what string, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
	}
	var diff []string
	for _, l := range want {
		if !g[l] {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range got {
		if !w[l] {
			diff = append(diff, "+ "+l)
		}
	}
	if len(diff) > 20 {
		diff = append(diff[:20], fmt.Sprintf("... %d more", len(diff)-20))
	}
	t.Errorf("%s differ (- source, + target):\n%s", what, strings.Join(diff, "\n"))
}

// copyAssertInsertsWork inserts without explicit keys on the target:
// serial, bigserial and identity columns must hand out new values.
func copyAssertInsertsWork(t *testing.T, src, dst string) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO app.customers (email, name, created_at) VALUES ('new@example.com', 'New', now()) RETURNING id = (SELECT max(id) FROM app.customers WHERE email <> 'new@example.com') + 1`,
		`INSERT INTO app.products (sku, title, price) VALUES ('NEW-1', 'New', 1) RETURNING id > (SELECT max(id) FROM app.products WHERE sku <> 'NEW-1')`,
		`INSERT INTO billing.invoices (order_id, number, issued_on, amount) VALUES (1, 'INV-' || nextval('billing.invoice_number_seq'), now(), 1) RETURNING id > (SELECT max(id) FROM billing.invoices WHERE amount <> 1 OR id < 0)`,
		`INSERT INTO audit.events (at, action) VALUES ('2025-02-01', 'login') RETURNING id > (SELECT max(id) FROM audit.events WHERE action <> 'login' OR at <> '2025-02-01')`,
		`INSERT INTO app.tagged (note) VALUES ('new') RETURNING id = 4`,
	} {
		if got := steptest.Query(t, dst, q); len(got) != 1 || got[0] != "true" {
			t.Errorf("%s: %v", q, got)
		}
	}
	if got := steptest.Query(t, dst, `SELECT last_value FROM billing.invoice_number_seq`); got[0] != fmt.Sprint(100000+sampleapp.Small.Orders/2) {
		t.Errorf("billing.invoice_number_seq = %v after one nextval", got)
	}
}

func TestCopySampleAppIsExact(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress []event.Progress
	env := copyTestEnv(t, t.TempDir())
	env.Progress = func(p event.Progress) { progress = append(progress, p) }
	out, err := runCopy(ctx, env, copyArgs(src, dst))
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)
	if got := steptest.Query(t, dst, `SELECT relpersistence FROM pg_class WHERE oid = 'app.sessions'::regclass`); got[0] != "117" { // 'u'
		t.Errorf("app.sessions is no longer unlogged: relpersistence %v", got)
	}
	if got := steptest.Query(t, dst, `SELECT convalidated FROM pg_constraint WHERE conname = 'invoices_amount_nonnegative'`); got[0] != "false" {
		t.Errorf("the NOT VALID constraint was validated: %v", got)
	}
	copyAssertInsertsWork(t, src, dst)

	// The output.
	byName := map[string]CopyTable{}
	var rows int64
	for _, tb := range out.Tables {
		byName[tb.Schema+"."+tb.Name] = tb
		rows += tb.Rows
	}
	if len(out.Tables) != 17 || rows != out.Rows || out.Bytes == 0 || out.BytesPerSecond <= 0 {
		t.Errorf("output: %d tables, rows %d (sum %d), bytes %d, %v B/s", len(out.Tables), out.Rows, rows, out.Bytes, out.BytesPerSecond)
	}
	if big := byName["public.big"]; big.Rows != 40000 || big.Chunks < 3 || big.Format != "binary" {
		t.Errorf("public.big: %+v; want 40000 rows in several binary chunks", big)
	}
	if tg := byName["app.tagged"]; tg.Format != "text" || tg.Rows != 3 {
		t.Errorf("app.tagged (an enum array and a regclass): %+v; want text", tg)
	}
	if _, ok := byName["audit.events"]; ok {
		t.Errorf("the partitioned table itself is listed; its partitions hold the rows")
	}
	if byName["audit.events_2025h1"].Rows != 1000 || byName["app.customers"].Rows != 500 {
		t.Errorf("rows: %+v %+v", byName["audit.events_2025h1"], byName["app.customers"])
	}
	if out.LargeObjects != 5 || out.Sequences != 8 || out.Resumed {
		t.Errorf("large objects %d, sequences %d, resumed %v", out.LargeObjects, out.Sequences, out.Resumed)
	}
	kinds := map[string]int{}
	for _, ix := range out.Indexes {
		kinds[ix.Kind]++
	}
	if kinds["index"] != 12 || kinds["constraint"] != 16 {
		t.Errorf("indexes: %v: %+v", kinds, out.Indexes)
	}
	if p := out.Phases; p.Schema <= 0 || p.Data <= 0 || p.PostData <= 0 || p.LargeObjects <= 0 || p.Sequences <= 0 || p.Analyze <= 0 {
		t.Errorf("phases: %+v", p)
	}
	if got := steptest.Query(t, dst, `SELECT count(*) FROM pg_stats WHERE schemaname = 'app' AND tablename = 'orders'`); got[0] == "0" {
		t.Errorf("app.orders was not analyzed")
	}
	_ = progress // the data phase is too quick here to report; TestCopyReportsProgress checks it
}

// A target that already has some of the tables is refused, naming them;
// clean = true drops them first, and a second clean copy over a full
// target (foreign keys, views and all) works too.
func TestCopyRefusesExistingTablesUnlessClean(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	steptest.MustExec(t, dst, `CREATE SCHEMA app; CREATE TABLE app.customers (id int); CREATE TABLE app.orders (id int); INSERT INTO app.orders VALUES (1);`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := copyArgs(src, dst)
	_, err := runCopyTest(t, ctx, a, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "already has 2 of the tables: app.customers, app.orders") || !strings.Contains(err.Error(), "clean = true") {
		t.Fatalf("err = %v", err)
	}
	a.Clean = true
	for run := 1; run <= 2; run++ {
		if _, err := runCopyTest(t, ctx, a, t.TempDir()); err != nil {
			t.Fatalf("clean run %d: %v", run, err)
		}
		copyAssertSame(t, src, dst)
	}
}

// exclude_tables leaves tables out with their sequences; a second copy
// with tables brings them, and the two together make the whole database.
func TestCopyTablesInTwoSteps(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := copyArgs(src, dst)
	a.ExcludeTables = []string{"audit.*", "big"}
	out, err := runCopyTest(t, ctx, a, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tables) != 12 {
		t.Errorf("first step copied %d tables: %+v", len(out.Tables), out.Tables)
	}
	if got := steptest.Query(t, dst, `SELECT count(*) FROM pg_class WHERE relname ~ '^(events|big)' AND relkind <> 'i'`); got[0] != "0" {
		t.Errorf("%s relations of the excluded tables exist on the target", got[0])
	}

	b := copyArgs(src, dst)
	b.Tables = []string{"audit.events", "public.big"}
	out, err = runCopyTest(t, ctx, b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tables) != 5 || out.LargeObjects != 0 {
		t.Errorf("second step: %d tables, %d large objects: %+v", len(out.Tables), out.LargeObjects, out.Tables)
	}
	copyAssertSame(t, src, dst)
	copyAssertInsertsWork(t, src, dst)

	c := copyArgs(src, dst)
	c.Tables = []string{"nosuch.*"}
	if _, err := runCopyTest(t, ctx, c, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no table of src matches tables = [nosuch.*]") {
		t.Errorf("err = %v", err)
	}
}

// An index the finisher cannot build on the target stops the copy at once,
// naming the index's table and the reason, instead of failing at
// post-data after every other row was copied.
func TestCopyStopsWhenAnIndexFails(t *testing.T) {
	t.Parallel()
	src, dst := Source.FreshDB(t), Target.FreshDB(t)
	// The index's function reads a setting of the source database, which
	// the target (like any fresh database) lacks.
	steptest.MustExec(t, src, `
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET planrun.flag = %L', current_database(), '1'); END $$;
SET planrun.flag = '1';
CREATE FUNCTION plus_flag(i int) RETURNS int LANGUAGE sql IMMUTABLE AS $f$ SELECT i + current_setting('planrun.flag')::int $f$;
CREATE TABLE bad (i int);    INSERT INTO bad SELECT generate_series(1, 20000);
CREATE INDEX bad_plus ON bad (plus_flag(i));
CREATE TABLE second (i int); INSERT INTO second SELECT generate_series(1, 5000);
CREATE TABLE third (i int);  INSERT INTO third SELECT generate_series(1, 1000);
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := copyArgs(src, dst)
	one := 1
	a.Jobs = &one // biggest first: bad, then second, then third
	// After second, wait long enough for the finisher to fail on bad's
	// index: the copy must then not go on to third.
	hooks := &copyHooks{afterChunk: func(table string, done bool) {
		if table == "public.second" {
			time.Sleep(2 * time.Second)
		}
	}}
	_, err := runCopyHooked(t, ctx, a, t.TempDir(), hooks)
	if err == nil || !strings.Contains(err.Error(), "build the indexes of public.bad") || !strings.Contains(err.Error(), "planrun.flag") {
		t.Fatalf("err = %v", err)
	}
	conn := steptest.Connect(t, dst)
	if got := steptest.QueryConn(t, conn, "SELECT count(*) FROM third"); got[0] != "0" {
		t.Errorf("third has %s rows on the target: the copy went on after the index failed", got[0])
	}
}
