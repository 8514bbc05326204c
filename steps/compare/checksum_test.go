package compare

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/sampleapp"
	"github.com/planrun/planrun/internal/steptest"
)

// cmpClone copies a database into an empty one with pg_dump and
// pg_restore, as a migration would: large objects keep their OIDs, which
// seeding both sides could not promise.
func cmpClone(t testing.TB, from, to *pgkit.Database) {
	t.Helper()
	ctx := steptest.Ctx(t)
	dump, _, err := pgkit.Tool(ctx, "pg_dump", 15)
	if err != nil {
		t.Fatal(err)
	}
	restore, _, err := pgkit.Tool(ctx, "pg_restore", 15)
	if err != nil {
		t.Fatal(err)
	}
	srcConn, srcEnv, err := pgkit.LibPQ(nil, from)
	if err != nil {
		t.Fatal(err)
	}
	tgtConn, tgtEnv, err := pgkit.LibPQ(nil, to)
	if err != nil {
		t.Fatal(err)
	}
	d := exec.CommandContext(ctx, dump, "-Fc", "--no-owner", "-d", srcConn)
	d.Env = srcEnv
	r := exec.CommandContext(ctx, restore, "--no-owner", "--exit-on-error", "-d", tgtConn)
	r.Env = tgtEnv
	if r.Stdin, err = d.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	d.Stderr, r.Stderr = &stderr, &stderr
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(); err != nil {
		_ = d.Wait()
		t.Fatalf("pg_restore: %v\n%s", err, stderr.String())
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.String())
	}
}

// cmpChecksumT compares with data = "checksum" and the given chunk_rows.
func cmpChecksumT(t *testing.T, src, tgt *pgkit.Database, chunkRows int) *CompareOutput {
	t.Helper()
	data, jobs := "checksum", 3
	return compareT(t, &CompareArgs{Source: src, Target: tgt, Data: &data, ChunkRows: &chunkRows, Jobs: &jobs})
}

func cmpChecksumOf(out *CompareOutput, key string) *CompareChecksum {
	for i, c := range out.Checksums {
		if c.Schema+"."+c.Name == key {
			return &out.Checksums[i]
		}
	}
	return nil
}

// TestCompareChecksumSampleApp: the sample app, restored from a dump on
// the other server, matches row for row, although the target's database
// prints values otherwise by default. Its columns cover the types whose
// text depends on session settings or whose hash would not tell values
// apart: timestamptz, date, interval, numeric, real and double precision
// (arrays of them too), bytea, jsonb, text[], uuid, an enum, oid, NULLs.
func TestCompareChecksumSampleApp(t *testing.T) {
	t.Parallel()
	src := &pgkit.Database{Name: "source", URL: Source.FreshDB(t)}
	tgt := &pgkit.Database{Name: "target", URL: Target.FreshDB(t)}
	if err := sampleapp.Seed(steptest.Ctx(t), src.URL, sampleapp.Small); err != nil {
		t.Fatal(err)
	}
	cmpClone(t, src, tgt)
	steptest.MustExec(t, tgt.URL, `DO $$
		DECLARE s text;
		BEGIN
			FOREACH s IN ARRAY ARRAY['TimeZone = ''Asia/Kolkata''', 'DateStyle = ''SQL, DMY''', 'IntervalStyle = sql_standard',
				'extra_float_digits = 0', 'bytea_output = escape', 'lc_monetary = ''C.UTF-8''']
			LOOP
				EXECUTE format('ALTER DATABASE %I SET %s', current_database(), s);
			END LOOP;
		END$$`)
	out := cmpChecksumT(t, src, tgt, 300)
	matched := !slices.ContainsFunc(out.Checksums, func(c CompareChecksum) bool { return !c.Match })
	if !matched || len(out.Mismatched) != 0 {
		t.Errorf("not equal: mismatched %v, checksums %+v", out.Mismatched, out.Checksums)
	}
	// The settings themselves differ, and compare says so.
	if out.Equal || len(out.Settings.Extra) != 6 {
		t.Errorf("equal %v, settings %+v: want the target's six settings listed", out.Equal, out.Settings)
	}
	if len(out.Checksums) != len(out.Tables) {
		t.Errorf("%d checksums for %d tables", len(out.Checksums), len(out.Tables))
	}
	for _, c := range out.Checksums {
		if !c.Match || c.SourceRows == nil || c.Chunks < 2 {
			t.Errorf("%s.%s: %+v", c.Schema, c.Name, c)
		}
	}
	// Each table matched whole: one checksum on each side.
	if c := cmpChecksumOf(out, "app.order_items"); c == nil || !slices.Equal(c.Key, []string{"order_id", "line"}) || c.Chunks != 2 {
		t.Errorf("order_items: %+v", c)
	}
	if c := cmpChecksumOf(out, "audit.events"); c == nil || !strings.Contains(c.Note, "partitioned") {
		t.Errorf("events: %+v", c)
	}
	for _, tb := range out.Tables {
		c := cmpChecksumOf(out, tb.Schema+"."+tb.Name)
		if c == nil || !reflect.DeepEqual(c.SourceRows, tb.SourceRows) || !reflect.DeepEqual(c.TargetRows, tb.TargetRows) {
			t.Errorf("%s.%s: counted %v/%v, checksummed %+v", tb.Schema, tb.Name, cmpRows(tb.SourceRows), cmpRows(tb.TargetRows), c)
		}
	}

	// The counts alone agree with the checksums' counts.
	counts := compareT(t, &CompareArgs{Source: src, Target: tgt})
	if !reflect.DeepEqual(counts.Tables, out.Tables) || len(counts.Checksums) != 0 {
		t.Errorf("counts %+v\nchecksums %+v", counts.Tables, out.Tables)
	}
}

// cmpDataSchema has keys of every kind narrowing handles: integer, composite,
// text and uuid; a table without a key; a partitioned table. With chunk_rows
// = 500, items is split into 40 key ranges of 500 keys, and words, of more
// than 20 chunks, at keys sampled from it.
const cmpDataSchema = `
CREATE TABLE items (id bigint PRIMARY KEY, note text, qty int NOT NULL, price numeric(10,2), at timestamptz);
INSERT INTO items SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END, i % 100, i * 1.25,
	timestamptz '2025-01-01' + i * interval '1 minute' FROM generate_series(1, 20000) i;
CREATE TABLE lines (order_id int, line int, qty int, PRIMARY KEY (order_id, line));
INSERT INTO lines SELECT o, l, o + l FROM generate_series(1, 3000) o, generate_series(1, 3) l;
CREATE TABLE words (word text PRIMARY KEY, n int);
INSERT INTO words SELECT md5(i::text), i FROM generate_series(1, 12000) i;
CREATE TABLE tokens (token uuid PRIMARY KEY, n int);
INSERT INTO tokens SELECT md5('t' || i)::uuid, i FROM generate_series(1, 5000) i;
CREATE TABLE logs (at timestamptz, msg text);
INSERT INTO logs SELECT timestamptz '2025-01-01' + i * interval '1 s', 'm' || i FROM generate_series(1, 3000) i;
CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT i, date '2024-06-01' + i % 400 FROM generate_series(1, 4000) i;
ANALYZE;
`

func TestCompareChecksumDifferences(t *testing.T) {
	t.Parallel()
	type key = CompareKey
	cases := []struct {
		name                   string
		sourceOnly, targetOnly string
		table                  string // the table that differs
		keys                   []CompareKey
		note                   string // in the table's note
		mismatched             []string
	}{{
		name:       "changed row, integer key",
		targetOnly: "UPDATE items SET qty = qty + 1 WHERE id = 12345",
		table:      "public.items",
		keys:       []CompareKey{{Key: "id=12345", Values: []string{"12345"}, Kind: "changed"}},
	}, {
		name:       "NULL became an empty string",
		targetOnly: "UPDATE items SET note = '' WHERE id = 7",
		table:      "public.items",
		keys:       []CompareKey{{Key: "id=7", Values: []string{"7"}, Kind: "changed"}},
	}, {
		name:       "row missing on the target",
		targetOnly: "DELETE FROM items WHERE id = 20000",
		table:      "public.items",
		keys:       []CompareKey{{Key: "id=20000", Values: []string{"20000"}, Kind: "missing"}},
	}, {
		name:       "extra row on the target",
		targetOnly: "INSERT INTO items VALUES (25000, 'new', 1, 1, now())",
		table:      "public.items",
		keys:       []CompareKey{{Key: "id=25000", Values: []string{"25000"}, Kind: "extra"}},
	}, {
		name:       "values swapped between two rows",
		targetOnly: "UPDATE items SET note = CASE id WHEN 101 THEN 'n102' ELSE 'n101' END WHERE id IN (101, 102)",
		table:      "public.items",
		keys:       []CompareKey{{Key: "id=101", Values: []string{"101"}, Kind: "changed"}, {Key: "id=102", Values: []string{"102"}, Kind: "changed"}},
	}, {
		name:       "more differences than named",
		targetOnly: "UPDATE items SET qty = -1 WHERE id % 1000 = 0",
		table:      "public.items",
		keys: func() (keys []CompareKey) {
			for i := 1000; i <= 10000; i += 1000 {
				v := itoa(i)
				keys = append(keys, key{Key: "id=" + v, Values: []string{v}, Kind: "changed"})
			}
			return keys
		}(),
		note: "more rows differ than the 10 named",
	}, {
		name:       "composite key",
		targetOnly: "UPDATE lines SET qty = 0 WHERE order_id = 1500 AND line = 2",
		table:      "public.lines",
		keys:       []CompareKey{{Key: "order_id=1500, line=2", Values: []string{"1500", "2"}, Kind: "changed"}},
	}, {
		name:       "text key",
		targetOnly: "DELETE FROM words WHERE word = md5('4321'); INSERT INTO words VALUES ('zzz', 0)",
		table:      "public.words",
		keys: []CompareKey{
			{Key: "word=" + md5hex("4321"), Values: []string{md5hex("4321")}, Kind: "missing"},
			{Key: "word=zzz", Values: []string{"zzz"}, Kind: "extra"},
		},
	}, {
		name:       "uuid key",
		targetOnly: "UPDATE tokens SET n = -1 WHERE token = md5('t77')::uuid",
		table:      "public.tokens",
		keys:       []CompareKey{{Key: "token=" + uuidOf(md5hex("t77")), Values: []string{uuidOf(md5hex("t77"))}, Kind: "changed"}},
	}, {
		name:       "no key: a changed row is missing and extra, named by its columns",
		targetOnly: "UPDATE logs SET msg = 'x' WHERE msg = 'm5'",
		table:      "public.logs",
		keys: []CompareKey{
			{Key: "at=2025-01-01 00:00:05+00, msg=m5", Values: []string{"2025-01-01 00:00:05+00", "m5"}, Kind: "missing"},
			{Key: "at=2025-01-01 00:00:05+00, msg=x", Values: []string{"2025-01-01 00:00:05+00", "x"}, Kind: "extra"},
		},
		note: "no primary key or unique key on NOT NULL columns: the rows that differ are named by all their columns",
	}, {
		name:       "no key: a duplicate row",
		sourceOnly: "INSERT INTO logs SELECT * FROM logs WHERE msg = 'm7'",
		targetOnly: "INSERT INTO logs SELECT * FROM logs WHERE msg = 'm7'; INSERT INTO logs SELECT * FROM logs WHERE msg = 'm7'; INSERT INTO logs VALUES (NULL, repeat('long', 40))",
		table:      "public.logs",
		keys: []CompareKey{
			{Key: "at=2025-01-01 00:00:07+00, msg=m7", Values: []string{"2025-01-01 00:00:07+00", "m7"}, Kind: "extra"},
			{Key: "at=2025-01-01 00:00:07+00, msg=m7", Values: []string{"2025-01-01 00:00:07+00", "m7"}, Kind: "extra"},
			{Key: "at=NULL, msg=" + strings.Repeat("long", 24) + "l…", Values: []string{"NULL", strings.Repeat("long", 24) + "l…"}, Kind: "extra"},
		},
	}, {
		name:       "row deleted in a partition",
		targetOnly: "DELETE FROM events WHERE id = 10",
		table:      "public.events_a",
		keys:       []CompareKey{{Key: "id=10, at=2024-06-11", Values: []string{"10", "2024-06-11"}, Kind: "missing"}},
		mismatched: []string{"public.events", "public.events_a"},
	}, {
		name:       "partitioned on one side only",
		sourceOnly: "CREATE TABLE flat (id int PRIMARY KEY) PARTITION BY RANGE (id); CREATE TABLE flat_1 PARTITION OF flat FOR VALUES FROM (0) TO (100); INSERT INTO flat VALUES (1), (2)",
		targetOnly: "CREATE TABLE flat (id int PRIMARY KEY); INSERT INTO flat VALUES (1), (2)",
		table:      "public.flat",
		keys:       []CompareKey{},
		note:       "partitioned on one side only: its rows are counted, not compared",
		mismatched: []string{"public.flat", "public.flat_1"},
	}, {
		name:       "NULL key on a side without NOT NULL",
		sourceOnly: "CREATE TABLE codes (code text NOT NULL UNIQUE, n int); INSERT INTO codes VALUES ('a', 1)",
		targetOnly: "CREATE TABLE codes (code text UNIQUE, n int); INSERT INTO codes VALUES ('a', 1), (NULL, 2)",
		table:      "public.codes",
		keys:       []CompareKey{{Key: "code=NULL", Values: []string{"NULL"}, Kind: "extra"}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src, tgt := steptest.Pair(t, Source, Target, cmpDataSchema, c.sourceOnly, c.targetOnly)
			out := cmpChecksumT(t, src, tgt, 500)
			if out.Equal {
				t.Error("equal despite the difference")
			}
			want := c.mismatched
			if want == nil {
				want = []string{c.table}
			}
			if !slices.Equal(out.Mismatched, want) {
				t.Errorf("mismatched %v, want %v", out.Mismatched, want)
			}
			got := cmpChecksumOf(out, c.table)
			if got == nil {
				t.Fatalf("no checksum of %s", c.table)
			}
			t.Logf("%s: rows %v/%v, chunks %d, ranges %q, note %q", c.table, cmpRows(got.SourceRows), cmpRows(got.TargetRows), got.Chunks, got.MismatchedRanges, got.Note)
			if got.Match || !reflect.DeepEqual(got.DifferingKeys, c.keys) || !strings.Contains(got.Note, c.note) {
				t.Errorf("%s: match %v, keys %+v, note %q\nwant keys %+v, note %q", c.table, got.Match, got.DifferingKeys, got.Note, c.keys, c.note)
			}
			if keyed := len(got.Key) > 0; keyed && len(c.keys) > 0 && (len(got.MismatchedRanges) == 0 || len(got.MismatchedRanges) > len(c.keys)) {
				t.Errorf("ranges %v", got.MismatchedRanges)
			}
			for _, other := range out.Checksums {
				if k := other.Schema + "." + other.Name; !slices.Contains(want, k) && !other.Match {
					t.Errorf("%s does not match: %+v", k, other)
				}
			}
		})
	}
}

// TestCompareChecksumRanges: the range named holds the key, and is small;
// progress is reported for both phases.
func TestCompareChecksumRanges(t *testing.T) {
	t.Parallel()
	src, tgt := steptest.Pair(t, Source, Target, cmpDataSchema, "", "UPDATE items SET qty = 0 WHERE id = 12345")
	var mu sync.Mutex
	var events []event.Progress
	env := steptest.ReadOnlyEnv(t)
	env.Progress = func(p event.Progress) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, p)
	}
	data, rows := "checksum", 500
	out, err := Run(steptest.Ctx(t), env, &CompareArgs{Source: src, Target: tgt, Data: &data, ChunkRows: &rows})
	if err != nil {
		t.Fatal(err)
	}
	var finished []string
	for _, p := range events {
		if p.Done == p.Total && len(p.Items) == 0 {
			finished = append(finished, fmt.Sprintf("%s: %d %s", p.Message, p.Done, p.Unit))
		}
	}
	if n := len(finished); n < 2 || !strings.HasPrefix(finished[n-2], "checksums on both sides, 14 of 14 tables: ") || finished[n-1] != "narrowing differences, 1 of 1 table: 1 tables" {
		t.Errorf("progress %q", finished)
	}
	c := cmpChecksumOf(out, "public.items")
	var lo, hi int
	if len(c.MismatchedRanges) != 1 || !scanRange(c.MismatchedRanges[0], &lo, &hi) || lo > 12345 || hi < 12345 || hi-lo >= cmpLeafRows {
		t.Errorf("ranges %v", c.MismatchedRanges)
	}
	// The whole table, then 40 key ranges of 500 keys, then the range
	// diffed row by row, each on both sides.
	if c.Chunks != 2+40*2+2 {
		t.Errorf("chunks %d", c.Chunks)
	}
}

// TestCompareChecksumColumnOrder: the same rows in tables whose columns
// are declared in another order, one of them widened to bigint, match.
func TestCompareChecksumColumnOrder(t *testing.T) {
	t.Parallel()
	rows := "INSERT INTO wide (a, b, c, d) SELECT i, 'b' || i, i * 3, CASE WHEN i % 3 = 0 THEN NULL ELSE now() END FROM generate_series(1, 2000) i"
	src, tgt := steptest.Pair(t, Source, Target, "",
		"CREATE TABLE wide (a int PRIMARY KEY, b text, c int, d timestamptz); "+rows,
		"CREATE TABLE wide (d timestamptz, c bigint, b varchar(20), a int PRIMARY KEY); "+rows)
	// now() differs between the two inserts: make d the same on both sides.
	steptest.MustExec(t, src.URL, "UPDATE wide SET d = '2025-05-05 05:05:05+02' WHERE d IS NOT NULL")
	steptest.MustExec(t, tgt.URL, "UPDATE wide SET d = '2025-05-05 03:05:05+00' WHERE d IS NOT NULL")
	out := cmpChecksumT(t, src, tgt, 500)
	if c := cmpChecksumOf(out, "public.wide"); c == nil || !c.Match || c.Note != "" {
		t.Errorf("wide: %+v", c)
	}
	if len(out.Columns.TypeChanged) != 2 || len(out.Mismatched) != 0 {
		t.Errorf("type changes %v, mismatched %v", out.Columns.TypeChanged, out.Mismatched)
	}

	// A column on one side only is left out, and said so.
	steptest.MustExec(t, tgt.URL, "ALTER TABLE wide ADD COLUMN e int DEFAULT 1")
	out = cmpChecksumT(t, src, tgt, 500)
	if c := cmpChecksumOf(out, "public.wide"); c == nil || !c.Match || c.Note != "columns on one side only, not checksummed: e" || out.Equal {
		t.Errorf("wide: %+v", c)
	}
}

func TestCompareChecksumArguments(t *testing.T) {
	t.Parallel()
	src, tgt := &pgkit.Database{Name: "s", URL: "postgres://x@127.0.0.1:1/x"}, &pgkit.Database{Name: "t", URL: "postgres://x@127.0.0.1:1/x"}
	bad, checksum, no, zero := "rows", "checksum", false, 0
	for _, a := range []*CompareArgs{
		{Source: src, Target: tgt, Data: &bad},
		{Source: src, Target: tgt, Data: &checksum, Counts: &no},
		{Source: src, Target: tgt, Data: &checksum, ChunkRows: &zero},
	} {
		if _, err := newCompareOptions(a); err == nil {
			t.Errorf("accepted %+v", a)
		}
	}
}

func TestCompareChecksumCancelled(t *testing.T) {
	t.Parallel()
	src, tgt := steptest.Pair(t, Source, Target, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 20000) i", "", "")
	ctx, cancel := context.WithCancel(steptest.Ctx(t))
	defer cancel()
	var events atomic.Int64
	env := steptest.ReadOnlyEnv(t)
	env.Progress = func(event.Progress) {
		if events.Add(1) == 1 {
			cancel() // in the middle of the first pass
		}
	}
	data, rows := "checksum", 1000
	_, err := Run(ctx, env, &CompareArgs{Source: src, Target: tgt, Data: &data, ChunkRows: &rows})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if events.Load() == 0 {
		t.Error("no progress reported")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func uuidOf(h string) string {
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// scanRange reads "id LO..HI".
func scanRange(s string, lo, hi *int) bool {
	_, err := fmt.Sscanf(s, "id %d..%d", lo, hi)
	return err == nil
}

// TestCompareChecksumColumnHashes: two values hash alike exactly when their
// texts are the same, whatever way a type is hashed, including the values
// PostgreSQL's own hash functions equate.
func TestCompareChecksumColumnHashes(t *testing.T) {
	t.Parallel()
	ctx := steptest.Ctx(t)
	db := &pgkit.Database{Name: "db", URL: Source.FreshDB(t)}
	conn, err := pgkit.Connect(ctx, steptest.ReadOnlyEnv(t), db, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pgkit.Close(ctx, conn)
	cases := []struct {
		a, b  string // typed literals
		equal bool
	}{
		{"-1::int8", "4294967295::int8", false}, // PostgreSQL folds int8 to 32 bits
		{"0::int8", "4294967297::int8", false},
		{"(-9223372036854775808)::int8", "9223372036854775807::int8", false},
		{"42::int4", "42::int8", true},
		{"-7::int2", "-7::int8", true},
		{"-7::int2", "-7::int4", true},
		{"5::numeric", "-5::numeric", false}, // numeric's hash ignores the sign
		{"1.0::numeric", "1.00::numeric", false},
		{"1.50::numeric(12,2)", "1.50::numeric(14,2)", true},
		{"'-0'::float8", "'0'::float8", false},
		{"'-0'::float4", "'0'::float4", false},
		{"'NaN'::float8", "'NaN'::float8", true},
		{"0.1::float8", "0.1::float8", true},
		{"'1e-300'::float8", "'2e-300'::float8", false},
		{"'infinity'::date", "'-infinity'::date", false},
		{"'2000-01-01'::date", "'2000-01-02'::date", false},
		{"'294277-01-01'::date", "'294277-01-02'::date", false}, // beyond timestamp's range
		{"'4713-01-01 BC'::date", "'4713-01-01 BC'::date", true},
		{"'2020-01-01 00:00:00+00'::timestamptz", "'2020-01-01 00:00:00.000001+00'::timestamptz", false},
		{"'2020-01-01 01:00:00+01'::timestamptz", "'2020-01-01 00:00:00+00'::timestamptz", true},
		{"'infinity'::timestamptz", "'-infinity'::timestamptz", false},
		{"'[[1],2]'::jsonb", "'[[1,2]]'::jsonb", false}, // jsonb's hash ignores where arrays end
		{"'1.0'::jsonb", "'1.00'::jsonb", false},
		{"'1 day'::interval", "'24 hours'::interval", false},
		{"'ab'::char(3)", "'ab'::text", true},
		{"'ab'::varchar", "'ab'::text", true},
		{"'ab'::char(3)", "'ab '::text", false},
		{"'A'::text", "'a'::text", false},
		{"true", "false", false},
		{"'\\x00'::bytea", "'\\x0000'::bytea", false},
	}
	for _, c := range cases {
		var equal bool
		sql := "CREATE TEMP TABLE h AS SELECT " + c.a + " AS a, " + c.b + " AS b"
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS h; "+sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var cols [2]cmpColumn
		for i, name := range []string{"a", "b"} {
			cols[i].name = name
			if err := conn.QueryRow(ctx, "SELECT atttypid FROM pg_attribute WHERE attrelid = 'h'::regclass AND attname = $1", name).Scan(&cols[i].typid); err != nil {
				t.Fatal(err)
			}
		}
		q := fmt.Sprintf("SELECT %s = %s FROM h", cmpColumnHash(cols[0], cols[1], 3), cmpColumnHash(cols[1], cols[0], 3))
		if err := conn.QueryRow(ctx, q).Scan(&equal); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if equal != c.equal {
			t.Errorf("%s and %s hash alike: %v, want %v\n%s", c.a, c.b, equal, c.equal, q)
		}
	}
}

// TestCompareKeylessDuplicatesAreBounded: a table without a key that
// misses many copies of one row names only as many as the report holds,
// and holds no more than that in memory (it kept one entry per missing
// copy before cutting the list: a million copies, a million entries).
func TestCompareKeylessDuplicatesAreBounded(t *testing.T) {
	const copies = 300000
	src, tgt := steptest.Pair(t, Source, Target, "CREATE TABLE dup (a int, b text)",
		fmt.Sprintf("INSERT INTO dup SELECT 1, 'the same row' FROM generate_series(1, %d)", copies), "INSERT INTO dup VALUES (1, 'the same row')")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out := cmpChecksumT(t, src, tgt, 500)
	runtime.ReadMemStats(&after)
	got := cmpChecksumOf(out, "public.dup")
	if got == nil || got.Match || len(got.DifferingKeys) != cmpMaxKeys || !strings.Contains(got.Note, "more rows differ") {
		t.Fatalf("dup: %+v", got)
	}
	for _, k := range got.DifferingKeys {
		if k.Kind != "missing" || k.Key != "a=1, b=the same row" {
			t.Fatalf("key %+v", k)
		}
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 20<<20 {
		t.Errorf("the compare allocated %d MiB for %d missing copies of one row", alloc>>20, copies-1)
	}
}
