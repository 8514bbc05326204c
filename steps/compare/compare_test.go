package compare

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// cmpSchema is a small shop: plain, partitioned, unlogged tables, two
// schemas, serial and identity sequences, foreign keys (one cascading),
// a check constraint, a view and a materialized view.
const cmpSchema = `
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
	id serial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers,
	total numeric(10,2) NOT NULL CHECK (total >= 0),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (
	id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id int REFERENCES orders ON DELETE CASCADE
);
CREATE VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id;
CREATE MATERIALIZED VIEW daily AS SELECT created_at::date AS day, count(*) FROM orders GROUP BY 1;

INSERT INTO customers (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 5) i;
INSERT INTO orders (customer_id, total) SELECT 1 + i % 5, i FROM generate_series(1, 20) i;
INSERT INTO events SELECT i, date '2024-06-01' + i * 30 FROM generate_series(1, 12) i; -- 7 in 2024, 5 in 2025
INSERT INTO cache VALUES ('a', '1');
INSERT INTO billing.invoices (order_id) SELECT id FROM orders WHERE id <= 4;
`

func compareT(t *testing.T, a *CompareArgs) *CompareOutput {
	t.Helper()
	out, err := Run(steptest.Ctx(t), steptest.ReadOnlyEnv(t), a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cmpTable(out *CompareOutput, key string) *CompareTable {
	for i, tb := range out.Tables {
		if tb.Schema+"."+tb.Name == key {
			return &out.Tables[i]
		}
	}
	return nil
}

func cmpRows(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestCompareIdentical(t *testing.T) {
	t.Parallel()
	src, tgt := steptest.Pair(t, Source, Target, cmpSchema, "", "")
	jobs := 2
	out := compareT(t, &CompareArgs{Source: src, Target: tgt, Jobs: &jobs})
	if !out.Equal {
		t.Errorf("identical databases are not equal: %+v", out)
	}
	var names []string
	for _, tb := range out.Tables {
		names = append(names, tb.Schema+"."+tb.Name)
		if !tb.Match || tb.SourceRows == nil || *tb.SourceRows != *tb.TargetRows {
			t.Errorf("%s.%s: %v vs %v", tb.Schema, tb.Name, cmpRows(tb.SourceRows), cmpRows(tb.TargetRows))
		}
	}
	want := []string{"billing.invoices", "public.cache", "public.customers", "public.events", "public.events_2024", "public.events_2025", "public.orders"}
	if !slices.Equal(names, want) {
		t.Errorf("tables %v, want %v", names, want)
	}
	// A partitioned table counts its partitions' rows; theirs are their own.
	for key, n := range map[string]int64{"public.events": 12, "public.events_2024": 7, "public.orders": 20, "billing.invoices": 4} {
		if tb := cmpTable(out, key); tb == nil || cmpRows(tb.SourceRows) != n {
			t.Errorf("%s: %+v, want %d rows", key, tb, n)
		}
	}
	seqs := map[string]any{}
	for _, s := range out.Sequences {
		seqs[s.Schema+"."+s.Name] = cmpRows(s.TargetValue)
	}
	if seqs["public.orders_id_seq"] != int64(20) || seqs["billing.invoices_id_seq"] != int64(4) || len(seqs) != 3 {
		t.Errorf("sequences %v", seqs)
	}
}

func TestCompareDifferences(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                   string
		sourceOnly, targetOnly string
		after                  func(t *testing.T, tgtURL string) // more setup on the target
		got                    func(out *CompareOutput) any
		want                   any
	}{{
		name:       "row deleted",
		targetOnly: "DELETE FROM orders WHERE id = 20",
		got: func(o *CompareOutput) any {
			tb := cmpTable(o, "public.orders")
			return []any{o.Mismatched, cmpRows(tb.SourceRows), cmpRows(tb.TargetRows), tb.Match}
		},
		want: []any{[]string{"public.orders"}, int64(20), int64(19), false},
	}, {
		name:       "row deleted in a partition",
		targetOnly: "DELETE FROM events WHERE id = 1",
		got:        func(o *CompareOutput) any { return o.Mismatched },
		want:       []string{"public.events", "public.events_2024"},
	}, {
		name:       "table missing",
		targetOnly: "DROP TABLE cache",
		got: func(o *CompareOutput) any {
			return []any{o.MissingTables, o.Mismatched, cmpRows(cmpTable(o, "public.cache").TargetRows), o.Columns.Missing, o.Indexes.Missing}
		},
		want: []any{[]string{"public.cache"}, []string{"public.cache"}, nil, []string{}, []string{"public.cache_pkey on public.cache"}},
	}, {
		name:       "index dropped",
		targetOnly: "DROP INDEX orders_customer_id_idx",
		got:        func(o *CompareOutput) any { return o.Indexes },
		want:       CompareIndexes{Missing: []string{"public.orders_customer_id_idx on public.orders"}, Extra: []string{}, Changed: []string{}, Invalid: []string{}},
	}, {
		name:       "index changed",
		targetOnly: "DROP INDEX orders_customer_id_idx; CREATE INDEX orders_customer_id_idx ON orders USING hash (customer_id)",
		got:        func(o *CompareOutput) any { return o.Indexes.Changed },
		want:       []string{"public.orders_customer_id_idx on public.orders: USING btree (customer_id) on the source, USING hash (customer_id) on the target"},
	}, {
		name: "index invalid",
		after: func(t *testing.T, tgtURL string) {
			// customer_id repeats: the concurrent build fails and leaves the index invalid.
			if err := steptest.Exec(t, tgtURL, "CREATE UNIQUE INDEX CONCURRENTLY orders_customer_key ON orders (customer_id)"); err == nil {
				t.Fatal("the unique index was built")
			}
		},
		got:  func(o *CompareOutput) any { return []any{o.Indexes.Invalid, o.Indexes.Extra} },
		want: []any{[]string{"public.orders_customer_key on public.orders"}, []string{"public.orders_customer_key on public.orders"}},
	}, {
		name:       "foreign key dropped",
		targetOnly: "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey",
		got:        func(o *CompareOutput) any { return []any{o.ForeignKeys.Missing, o.Constraints.Missing} },
		want:       []any{[]string{"public.orders_customer_id_fkey on public.orders"}, []string{}},
	}, {
		name: "foreign key lost its cascade",
		targetOnly: `ALTER TABLE billing.invoices DROP CONSTRAINT invoices_order_id_fkey,
			ADD CONSTRAINT invoices_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders`,
		got: func(o *CompareOutput) any { return o.ForeignKeys.Changed },
		want: []string{"billing.invoices_order_id_fkey on billing.invoices: FOREIGN KEY (order_id) REFERENCES public.orders(id) ON DELETE CASCADE on the source, " +
			"FOREIGN KEY (order_id) REFERENCES public.orders(id) on the target"},
	}, {
		name: "constraint NOT VALID",
		targetOnly: `ALTER TABLE orders DROP CONSTRAINT orders_total_check;
			ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID`,
		got: func(o *CompareOutput) any { return []any{o.Constraints.NotValid, o.Constraints.Changed, o.Equal} },
		want: []any{
			[]string{"public.orders_total_check on public.orders"},
			[]string{"public.orders_total_check on public.orders: CHECK ((total >= (0)::numeric)) on the source, CHECK ((total >= (0)::numeric)) NOT VALID on the target"},
			false,
		},
	}, {
		name:       "sequence behind",
		targetOnly: "SELECT setval('orders_id_seq', 3)",
		got: func(o *CompareOutput) any {
			i := slices.IndexFunc(o.Sequences, func(s CompareSequence) bool { return s.Name == "orders_id_seq" })
			return []any{o.SequencesBehind, cmpRows(o.Sequences[i].SourceValue), cmpRows(o.Sequences[i].TargetValue)}
		},
		want: []any{[]string{"public.orders_id_seq: 3 on the target, 20 on the source"}, int64(20), int64(3)},
	}, {
		name:       "sequence never used on the target",
		targetOnly: "ALTER SEQUENCE orders_id_seq RESTART",
		got:        func(o *CompareOutput) any { return o.SequencesBehind },
		want:       []string{"public.orders_id_seq: 0 on the target, 20 on the source"},
	}, {
		name:       "extension missing",
		sourceOnly: "CREATE EXTENSION citext",
		got:        func(o *CompareOutput) any { return []any{o.Extensions.Missing, o.Equal, len(o.Tables)} },
		want:       []any{[]string{"citext"}, false, 7},
	}, {
		name:       "view missing",
		targetOnly: "DROP VIEW order_totals",
		got:        func(o *CompareOutput) any { return []any{o.Views.Missing, o.Views.Extra} },
		want:       []any{[]string{"public.order_totals"}, []string{}},
	}, {
		name:       "column type and default changed",
		targetOnly: "ALTER TABLE customers ALTER email TYPE varchar(200); ALTER TABLE orders ALTER created_at DROP DEFAULT",
		got:        func(o *CompareOutput) any { return []any{o.Columns.TypeChanged, o.Columns.DefaultChanged} },
		want: []any{
			[]string{"public.customers.email: text on the source, character varying(200) on the target"},
			[]string{"public.orders.created_at: now() on the source, no default on the target"},
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, tgt := steptest.Pair(t, Source, Target, cmpSchema, c.sourceOnly, c.targetOnly)
			if c.after != nil {
				c.after(t, tgt.URL)
			}
			out := compareT(t, &CompareArgs{Source: src, Target: tgt})
			if got := c.got(out); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %#v\nwant %#v", got, c.want)
			}
			if out.Equal {
				t.Error("equal despite the difference")
			}
		})
	}
}

func TestCompareFilters(t *testing.T) {
	t.Parallel()
	// Differences only in what the filters leave out.
	src, tgt := steptest.Pair(t, Source, Target, cmpSchema, "", "DELETE FROM billing.invoices; DELETE FROM cache; DROP INDEX orders_customer_id_idx")
	out := compareT(t, &CompareArgs{Source: src, Target: tgt, ExcludeSchemas: []string{"billing"}, Tables: []string{"public.c*", "events*"}, ExcludeTables: []string{"cache"}})
	var names []string
	for _, tb := range out.Tables {
		names = append(names, tb.Schema+"."+tb.Name)
	}
	if want := []string{"public.customers", "public.events", "public.events_2024", "public.events_2025"}; !slices.Equal(names, want) || !out.Equal {
		t.Errorf("tables %v (want %v), equal %v: %+v", names, want, out.Equal, out)
	}
	no := false
	out = compareT(t, &CompareArgs{Source: src, Target: tgt, Counts: &no, Schemas: []string{"billing"}})
	if len(out.Tables) != 1 || out.Tables[0].SourceRows != nil || !out.Tables[0].Match || !out.Equal {
		t.Errorf("schema only: %+v", out)
	}
	if _, err := Run(steptest.Ctx(t), steptest.ReadOnlyEnv(t), &CompareArgs{Source: src, Target: tgt, Tables: []string{"[bad"}}); err == nil {
		t.Error("a bad table pattern was accepted")
	}
}

// TestCompareReadOnlySession proves that the sessions compare opens, for
// the catalogs and for every count, cannot write.
func TestCompareReadOnlySession(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	src, _ := steptest.Pair(t, Source, Target, "CREATE TABLE t (i int)", "", "")
	conn, err := pgkit.Connect(ctx, steptest.ReadOnlyEnv(t), src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "INSERT INTO t VALUES (1)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
		t.Errorf("insert outside a transaction: %v", err)
	}
	tx, err := cmpBegin(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	// Even a session that turns the default off stays read-only inside.
	_, err = tx.Exec(ctx, "SET LOCAL default_transaction_read_only = off; CREATE TABLE u (i int)")
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("create table in the compare transaction: %v", err)
	}
}

// TestCompareRowSecurity: a role that row-level security filters gets an
// error naming the table, never a smaller count.
func TestCompareRowSecurity(t *testing.T) {
	t.Parallel()
	common := `CREATE TABLE accounts (id int PRIMARY KEY, owner text);
		INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
		CREATE POLICY mine ON accounts USING (owner = current_user)`
	src, tgt := steptest.Pair(t, Source, Target, common, "", "")
	src.URL = steptest.Role(t, Source, src.URL, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s")
	for _, data := range []string{"counts", "checksum"} {
		_, err := Run(steptest.Ctx(t), steptest.ReadOnlyEnv(t), &CompareArgs{Source: src, Target: tgt, Data: &data})
		if err == nil || !strings.Contains(err.Error(), "public.accounts") || !strings.Contains(err.Error(), "row-level security") {
			t.Errorf("%s: err = %v", data, err)
		}
	}
}

func TestCompareCancelled(t *testing.T) {
	t.Parallel()
	src, tgt := steptest.Pair(t, Source, Target, cmpSchema, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, steptest.ReadOnlyEnv(t), &CompareArgs{Source: src, Target: tgt}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// TestCompareSharedSnapshot: counting connections see the coordinator's
// snapshot, not rows committed after it was taken.
func TestCompareSharedSnapshot(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	src, _ := steptest.Pair(t, Source, Target, "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2)", "", "")
	conn, err := pgkit.Connect(ctx, steptest.ReadOnlyEnv(t), src, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := cmpBegin(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		t.Fatal(err)
	}
	steptest.MustExec(t, src.URL, "INSERT INTO t VALUES (3)")
	tables := []cmpRelation{{schema: "public", name: "t", kind: "r"}}
	got, err := cmpCount(ctx, steptest.ReadOnlyEnv(t), src, snapshot, tables, 2)
	if err != nil || got["public.t"] != 2 {
		t.Errorf("in the snapshot: %v, %v; want 2 rows", got, err)
	}
	if got, err = cmpCount(ctx, steptest.ReadOnlyEnv(t), src, "", tables, 1); err != nil || got["public.t"] != 3 {
		t.Errorf("without it: %v, %v; want 3 rows", got, err)
	}
}
