package replicate

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/compare"
)

// replSchema is created on both sides: a table with a serial key, a
// partitioned table (its partitions are published one by one), a table
// without a key but with REPLICA IDENTITY FULL, and what logical
// replication leaves out: an unlogged table and a materialized view.
const replSchema = `
CREATE SCHEMA app;
CREATE TABLE app.users (id serial PRIMARY KEY, name text NOT NULL, score int);
CREATE TABLE app.events (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, body text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.tags (name text NOT NULL, n int);
ALTER TABLE app.tags REPLICA IDENTITY FULL;
CREATE UNLOGGED TABLE app.cache (k text PRIMARY KEY);
CREATE MATERIALIZED VIEW app.user_count AS SELECT count(*) FROM app.users;
`

const replSeed = `
INSERT INTO app.users (name, score) SELECT 'u' || g, g FROM generate_series(1, 200) g;
INSERT INTO app.events (at, body) SELECT date '2024-06-01' + (g % 400), 'e' || g FROM generate_series(1, 300) g;
INSERT INTO app.tags VALUES ('a', 1), ('b', 2), ('b', 2);
`

// replPair returns fresh source and target databases with schema on both
// and seed on the source, and stops any replication between them when the
// test ends (before the databases are dropped: a live subscription keeps a
// sender and a slot on the source).
func replPair(t *testing.T, schema, seed string) (src, dst *pgkit.Database) {
	t.Helper()
	replPrepare(t)
	srcURL, dstURL := Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustSQL(t, srcURL, schema+seed)
	steptest.MustSQL(t, dstURL, schema)
	src, dst = &pgkit.Database{Name: "old", URL: srcURL}, &pgkit.Database{Name: "new", URL: dstURL}
	t.Cleanup(func() { replCleanup(t, dstURL) })
	return src, dst
}

// replPrepare runs before a test that starts subscriptions.
func replPrepare(t testing.TB) {
	t.Helper()
	// One test at a time starts subscriptions: the Target server has 4
	// logical replication workers (an apply worker and up to 2 table-sync
	// workers per subscription); more at once wait 5s for a free one.
	replMu.Lock()
	t.Cleanup(replMu.Unlock)
	replFastLauncher.Do(func() {
		// PostgreSQL 15's launcher starts apply workers at most once per
		// wal_retrieve_retry_interval (5s) for the whole server, so each
		// test's subscription would wait 5s after the previous test's.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := steptest.ExecContext(ctx, Target.URL("postgres"), "ALTER SYSTEM SET wal_retrieve_retry_interval = '100ms'"); err != nil {
			t.Fatal(err)
		}
		if err := steptest.ExecContext(ctx, Target.URL("postgres"), "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	})
}

var (
	replMu           sync.Mutex
	replFastLauncher sync.Once
)

// replCleanup drops every subscription of a target database (and with it
// its slot on the source).
func replCleanup(t *testing.T, dstURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sub := range steptest.Query(t, dstURL, `SELECT subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()`) {
		if err := steptest.ExecContext(ctx, dstURL, "DROP SUBSCRIPTION "+pgkit.QuoteIdent(sub)); err != nil {
			t.Errorf("cleanup: drop subscription %s: %v", sub, err)
		}
	}
}

// replSlot is a slot name of the test's own: slots are shared by the whole
// Source server, and tests run in parallel.
func replSlot(t *testing.T, what string) string {
	return defaultSlotName(what, t.Name(), fmt.Sprint(time.Now().UnixNano()))
}

func replArgs(src, dst *pgkit.Database, action, slot string) *ReplicateArgs {
	return &ReplicateArgs{Source: src, Target: dst, Action: action, Slot: slot, MaxWait: "45s"}
}

func replRun(t *testing.T, a *ReplicateArgs) *ReplicateOutput {
	t.Helper()
	env := steptest.Env(t)
	t0 := time.Now()
	env.Log = func(f string, args ...any) {
		t.Logf("%6dms "+f, append([]any{time.Since(t0).Milliseconds()}, args...)...)
	}
	out, err := runReplicate(steptest.Ctx(t), env, a)
	if err != nil {
		t.Fatalf("replicate %s: %v", a.Action, err)
	}
	return out
}

// replTables renders every replicated table of a database, row by row, so
// that two databases can be compared exactly.
func replTables(t *testing.T, url string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"app.users", "app.events", "app.events_2024", "app.events_2025", "app.tags"} {
		out[table] = steptest.Query(t, url, "SELECT t::text FROM "+table+" t ORDER BY t::text")
	}
	return out
}

func replAssertSame(t *testing.T, what string, src, dst *pgkit.Database) {
	t.Helper()
	want, got := replTables(t, src.URL), replTables(t, dst.URL)
	for table, rows := range want {
		if strings.Join(rows, "\n") != strings.Join(got[table], "\n") {
			t.Errorf("%s: %s differs: %d rows on the source, %d on the target", what, table, len(rows), len(got[table]))
		}
	}
}

// replCatalog counts what replication left on each side.
func replCatalog(t *testing.T, src, dst *pgkit.Database, slot string) (pubs, subs, slots int) {
	t.Helper()
	count := func(url, sql string, args ...any) int {
		var n int
		fmt.Sscan(steptest.Query(t, url, sql, args...)[0], &n)
		return n
	}
	pubs = count(src.URL, "SELECT count(*) FROM pg_publication")
	subs = count(dst.URL, "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()")
	slots = count(src.URL, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot)
	return pubs, subs, slots
}

func gapOf(out *ReplicateOutput, kind string) *ReplicateGap {
	for i := range out.NotReplicated {
		if out.NotReplicated[i].Kind == kind {
			return &out.NotReplicated[i]
		}
	}
	return nil
}

// TestReplicateStartCatchUp: start copies the rows; changes made on the
// source afterwards (inserts, updates, deletes, a row moving between
// partitions, a truncate) are on the target once catch_up returns, every
// time, with no sleep in between: catch_up is a reliable barrier.
func TestReplicateStartCatchUp(t *testing.T) {
	t.Parallel()
	src, dst := replPair(t, replSchema, replSeed)
	slot := replSlot(t, "start")
	out := replRun(t, replArgs(src, dst, "", slot))

	if out.Action != "start" || out.Publication != "planrun" || out.Subscription != "planrun" || out.Slot != slot {
		t.Errorf("names: %+v", out)
	}
	if out.Tables != 4 { // users, events_2024, events_2025, tags
		t.Errorf("tables = %d, want 4", out.Tables)
	}
	if out.CaughtUpLSN == "" || out.LagBytes < 0 {
		t.Errorf("caught_up_lsn %q, lag_bytes %d", out.CaughtUpLSN, out.LagBytes)
	}
	if want := []string{"publication planrun", "subscription planrun", "slot " + slot}; strings.Join(out.Created, ",") != strings.Join(want, ",") {
		t.Errorf("created = %v, want %v", out.Created, want)
	}
	if g := gapOf(out, "unlogged_tables"); g == nil || strings.Join(g.Objects, ",") != "app.cache" {
		t.Errorf("unlogged tables: %+v", g)
	}
	if g := gapOf(out, "sequences"); g == nil || strings.Join(g.Objects, ",") != "app.events_id_seq,app.users_id_seq" {
		t.Errorf("sequences: %+v", g)
	}
	if g := gapOf(out, "materialized_views"); g == nil || g.Count != 1 {
		t.Errorf("materialized views: %+v", g)
	}
	if gapOf(out, "large_objects") != nil || gapOf(out, "schema_changes") == nil {
		t.Errorf("not_replicated: %+v", out.NotReplicated)
	}
	replAssertSame(t, "after start", src, dst)

	changes := []string{
		`INSERT INTO app.users (name, score) SELECT 'n' || g, g FROM generate_series(1, 50) g`,
		`UPDATE app.users SET score = score * 10 WHERE id % 3 = 0`,
		`DELETE FROM app.users WHERE id % 7 = 0`,
		`UPDATE app.events SET at = date '2025-03-01' WHERE id % 5 = 0 AND at < '2025-01-01'`, // moves rows to the other partition
		`INSERT INTO app.tags VALUES ('c', 3)`,
		`DELETE FROM app.tags WHERE name = 'a'`,
		`UPDATE app.tags SET n = 20 WHERE name = 'b'`, // both duplicate rows
		`INSERT INTO app.events (at, body) VALUES ('2025-12-31', 'last')`,
		`TRUNCATE app.tags`,
		`INSERT INTO app.tags VALUES ('d', 4)`,
	}
	for i, change := range changes {
		steptest.MustSQL(t, src.URL, change)
		got := replRun(t, replArgs(src, dst, "catch_up", slot))
		if got.CaughtUpLSN == "" || got.Tables != 4 || got.Slot != slot {
			t.Errorf("catch_up %d: %+v", i, got)
		}
		replAssertSame(t, fmt.Sprintf("after %q", change), src, dst)
	}

	// The compare step agrees, row by row.
	cmp, err := compare.Run(steptest.Ctx(t), steptest.Env(t), &compare.CompareArgs{Source: src, Target: dst, Data: strp("checksum"), ExcludeTables: []string{"app.cache"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Mismatched) != 0 {
		t.Errorf("compare: mismatched %v", cmp.Mismatched)
	}
}

func strp(s string) *string { return &s }

// TestReplicateRefusals: what start refuses, each time naming the culprit
// and leaving nothing behind on either side.
func TestReplicateRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		schema, seed     string
		targetSQL        string
		args             func(a *ReplicateArgs)
		want             []string
		pubsLeft         int
		wantCreateTables bool
	}{{
		name:   "no key",
		schema: `CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE logs (at timestamptz, line text); CREATE TABLE nothing (i int); ALTER TABLE nothing REPLICA IDENTITY NOTHING;`,
		want:   []string{"public.logs, public.nothing", "primary key", "REPLICA IDENTITY FULL", "tables = [...]", "nothing was created"},
	}, {
		name:      "table missing on the target",
		schema:    `CREATE TABLE users (id int PRIMARY KEY);`,
		targetSQL: `DROP TABLE users`,
		want:      []string{"target new lacks 1 published table(s): public.users", "schema"},
	}, {
		name:      "target not empty",
		schema:    `CREATE TABLE users (id int PRIMARY KEY);`,
		seed:      `INSERT INTO users VALUES (1)`,
		targetSQL: `INSERT INTO users VALUES (1)`,
		want:      []string{"public.users", "already hold rows", "copy_data = false"},
	}, {
		name:   "no such table",
		schema: `CREATE TABLE users (id int PRIMARY KEY);`,
		args:   func(a *ReplicateArgs) { a.Tables = []string{"users", "app.nope"} },
		want:   []string{"has no table app.nope"},
	}, {
		name:   "target cannot reach the source",
		schema: `CREATE TABLE users (id int PRIMARY KEY);`,
		args: func(a *ReplicateArgs) {
			a.SourceConninfo = "host=127.0.0.1 port=1 dbname=x user=u password='hunter2 s3cret' connect_timeout=2"
		},
		want: []string{"create subscription planrun", "could not connect"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst := replPair(t, c.schema, c.seed)
			if c.targetSQL != "" {
				steptest.MustSQL(t, dst.URL, c.targetSQL)
			}
			slot := replSlot(t, "refuse")
			a := replArgs(src, dst, "start", slot)
			if c.args != nil {
				c.args(a)
			}
			env, secrets := steptest.SecretsEnv()
			_, err := runReplicate(steptest.Ctx(t), env, a)
			if err == nil {
				t.Fatal("start succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if a.SourceConninfo != "" {
				if strings.Contains(err.Error(), "hunter2") || !strings.Contains(strings.Join(secrets(), "|"), "hunter2 s3cret") {
					t.Errorf("password: error %v, secrets %q", err, secrets())
				}
			}
			if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs != 0 || subs != 0 || slots != 0 {
				t.Errorf("left behind: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
			}
		})
	}
}

// TestReplicateTablesAndStop: a table without a key can be left out with
// tables; stop drops the subscription, its slot and the publication, and a
// second stop has nothing to do.
func TestReplicateTablesAndStop(t *testing.T) {
	t.Parallel()
	src, dst := replPair(t, `CREATE TABLE users (id int PRIMARY KEY, name text); CREATE TABLE logs (line text);`,
		`INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 20) g; INSERT INTO logs VALUES ('x')`)
	slot := replSlot(t, "stop")
	a := replArgs(src, dst, "start", slot)
	a.Tables = []string{"Users"} // resolved as PostgreSQL does: public.users
	out := replRun(t, a)
	if out.Tables != 1 || gapOf(out, "unlogged_tables") != nil {
		t.Errorf("start: %+v", out)
	}
	if got := steptest.Query(t, dst.URL, "SELECT count(*) FROM users"); got[0] != "20" {
		t.Errorf("target has %s users", got[0])
	}
	steptest.MustSQL(t, src.URL, "UPDATE logs SET line = 'y'") // not published: still allowed
	if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs != 1 || subs != 1 || slots != 1 {
		t.Fatalf("after start: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
	}

	stop := replRun(t, replArgs(src, dst, "stop", slot))
	if want := "subscription planrun,slot " + slot + ",publication planrun"; strings.Join(stop.Dropped, ",") != want {
		t.Errorf("dropped %v, want %s", stop.Dropped, want)
	}
	if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs != 0 || subs != 0 || slots != 0 {
		t.Errorf("after stop: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
	}
	if n := steptest.Query(t, src.URL, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'planrun'"); n[0] != "0" {
		t.Errorf("%s senders still run", n[0])
	}
	again := replRun(t, replArgs(src, dst, "stop", slot))
	if len(again.Dropped) != 0 {
		t.Errorf("second stop dropped %v", again.Dropped)
	}
	// catch_up without a subscription says what to do.
	if _, err := runReplicate(steptest.Ctx(t), steptest.Env(t), replArgs(src, dst, "catch_up", slot)); err == nil || !strings.Contains(err.Error(), `action = "start" first`) {
		t.Errorf("catch_up after stop: %v", err)
	}
}

// TestReplicateStartTwice: a second start reuses what the first made
// (also with the default slot name), and one asking for other settings is
// refused with the difference.
func TestReplicateStartTwice(t *testing.T) {
	t.Parallel()
	src, dst := replPair(t, replSchema, replSeed)
	first := replRun(t, replArgs(src, dst, "start", "")) // the default slot: derived from the target's database
	if !regexp.MustCompile(`^planrun_t_testreplicatestarttwice_[0-9a-z_]*_[0-9a-f]{8}$`).MatchString(first.Slot) || len(first.Slot) > 63 {
		t.Errorf("default slot %q", first.Slot)
	}
	steptest.MustSQL(t, src.URL, "INSERT INTO app.users (name) VALUES ('between')")
	second := replRun(t, replArgs(src, dst, "start", ""))
	if len(second.Created) != 0 || second.Slot != first.Slot || second.Tables != 4 {
		t.Errorf("second start: %+v", second)
	}
	if pubs, subs, slots := replCatalog(t, src, dst, first.Slot); pubs != 1 || subs != 1 || slots != 1 {
		t.Errorf("after two starts: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
	}
	replAssertSame(t, "after the second start", src, dst)

	// A disabled subscription is enabled again.
	steptest.MustSQL(t, dst.URL, "ALTER SUBSCRIPTION planrun DISABLE")
	steptest.MustSQL(t, src.URL, "INSERT INTO app.users (name) VALUES ('while disabled')")
	replRun(t, replArgs(src, dst, "start", ""))
	replAssertSame(t, "after enabling", src, dst)

	for _, c := range []struct {
		args func(a *ReplicateArgs)
		want string
	}{
		{func(a *ReplicateArgs) { a.Tables = []string{"app.users"} }, "already has a publication planrun with other settings: it is FOR ALL TABLES, not for the tables given"},
		{func(a *ReplicateArgs) { a.Slot = "other_slot" }, "already has a subscription planrun with other settings: its slot is " + first.Slot + ", not other_slot"},
		{func(a *ReplicateArgs) { a.Publication = "other" }, "it subscribes to publication(s) planrun, not other"},
	} {
		a := replArgs(src, dst, "start", "")
		c.args(a)
		_, err := runReplicate(steptest.Ctx(t), steptest.Env(t), a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	// The refused publication "other" was not left behind.
	if n := steptest.Query(t, src.URL, "SELECT count(*) FROM pg_publication"); n[0] != "1" {
		t.Errorf("%s publications", n[0])
	}
}

// TestReplicateCatchUpWhileWriting: catch_up while the source is written
// to still returns, at a position it reached, and once the writes stop
// one more catch_up leaves the target equal.
func TestReplicateCatchUpWhileWriting(t *testing.T) {
	t.Parallel()
	src, dst := replPair(t, replSchema, replSeed)
	slot := replSlot(t, "writing")
	replRun(t, replArgs(src, dst, "start", slot))

	ctx, stop := context.WithCancel(steptest.Ctx(t))
	var wg sync.WaitGroup
	wg.Add(1)
	var writes int
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := steptest.ExecContext(ctx, src.URL, `INSERT INTO app.users (name, score) VALUES ('w', 1); UPDATE app.users SET score = score + 1 WHERE id = 1`); err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			writes++
		}
	}()
	time.Sleep(200 * time.Millisecond)
	during := replRun(t, replArgs(src, dst, "catch_up", slot))
	stop()
	wg.Wait()
	if during.CaughtUpLSN == "" || writes == 0 {
		t.Errorf("catch_up during writes: %+v after %d writes", during, writes)
	}
	replRun(t, replArgs(src, dst, "catch_up", slot))
	replAssertSame(t, "after the writer stopped", src, dst)
}

func TestReplicateArgs(t *testing.T) {
	db := &pgkit.Database{Name: "x", URL: "postgres://u:p@h/a"}
	two, zero, yes := 2, 0, true
	for _, c := range []struct {
		a    ReplicateArgs
		want string
	}{
		{ReplicateArgs{Target: db}, "give source and target"},
		{ReplicateArgs{Source: db, Target: db, Action: "pause"}, `action: "pause" is not one of "start", "catch_up", "stop"`},
		{ReplicateArgs{Source: db, Target: db, MaxWait: "soon"}, `max_wait: "soon" is not a duration`},
		{ReplicateArgs{Source: db, Target: db, Slot: "Bad-Slot"}, "only lower-case letters"},
		{ReplicateArgs{Source: db, Target: db, Slot: strings.Repeat("s", 64)}, "1 to 63"},
		{ReplicateArgs{Source: db, Target: db, Subscription: strings.Repeat("s", 64)}, "longer than 63"},
		{ReplicateArgs{Source: db, Target: db, SourceConninfo: "host='open password=x"}, "unterminated quoted string"},
		{ReplicateArgs{Source: db, Target: db, InitialCopy: "dump"}, `initial_copy: "dump" is not one of "subscription", "copy"`},
		{ReplicateArgs{Source: db, Target: db, Jobs: &two, Clean: true}, `jobs, clean: only for initial_copy = "copy"`},
		{ReplicateArgs{Source: db, Target: db, InitialCopy: "copy", CopyData: &yes}, "copy_data = true contradicts"},
		{ReplicateArgs{Source: db, Target: db, InitialCopy: "copy", Jobs: &zero}, "jobs must be at least 1"},
		{ReplicateArgs{Source: db, Target: db, InitialCopy: "copy", SplitBytes: "big"}, "split_bytes"},
	} {
		_, err := runReplicate(context.Background(), steptest.Env(t), &c.a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.a, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "password=x") {
			t.Errorf("the error quotes the connection string: %v", err)
		}
	}

	a := defaultSlotName("planrun", "App-Prod", "db1.example.com:5432")
	b := defaultSlotName("planrun", "App-Prod", "db2.example.com:5432")
	if a == b || !strings.HasPrefix(a, "planrun_app_prod_") || checkSlotName(a) != nil {
		t.Errorf("slots %q and %q", a, b)
	}
	long := defaultSlotName(strings.Repeat("s", 63), strings.Repeat("d", 63), "h:1")
	if len(long) != 63 || checkSlotName(long) != nil {
		t.Errorf("long slot %q", long)
	}
}

// A row written on the target collides with one the source inserts later:
// the apply worker fails again and again, and catch_up says so (and where
// to look) instead of waiting out max_wait.
func TestReplicateCatchUpStopsOnApplyErrors(t *testing.T) {
	src, dst := replPair(t, replSchema, replSeed)
	slot := replSlot(t, "errors")
	replRun(t, replArgs(src, dst, "start", slot))
	steptest.MustSQL(t, dst.URL, "INSERT INTO app.users (id, name) VALUES (100001, 'on the target')")
	steptest.MustSQL(t, src.URL, "INSERT INTO app.users (id, name) VALUES (100001, 'on the source')")

	start := time.Now()
	_, err := runReplicate(steptest.Ctx(t), steptest.Env(t), replArgs(src, dst, "catch_up", slot))
	t.Logf("catch_up: %v", err)
	if err == nil || !strings.Contains(err.Error(), "workers on target new failed") || !strings.Contains(err.Error(), "the target server's log says why") {
		t.Fatalf("catch_up: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: max_wait, not the errors, ended it", d)
	}
	// stop still cleans up while the subscription is failing.
	out := replRun(t, replArgs(src, dst, "stop", slot))
	if len(out.Dropped) == 0 {
		t.Errorf("stop dropped nothing: %+v", out)
	}
	if n := steptest.Query(t, Source.URL("postgres"), fmt.Sprintf("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", slot)); n[0] != "0" {
		t.Errorf("slot %s left on the source", slot)
	}
}
