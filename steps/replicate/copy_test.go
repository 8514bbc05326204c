package replicate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/compare"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/sequences"
)

// replCopyPair returns a seeded source and an empty target (the copy
// creates the schema), and stops any replication between them when the
// test ends.
func replCopyPair(t *testing.T, schema, seed string) (src, dst *pgkit.Database) {
	t.Helper()
	replPrepare(t)
	srcURL, dstURL := Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustSQL(t, srcURL, schema+seed)
	src, dst = &pgkit.Database{Name: "old", URL: srcURL}, &pgkit.Database{Name: "new", URL: dstURL}
	t.Cleanup(func() { replCleanup(t, dstURL) })
	return src, dst
}

func replCopyArgs(src, dst *pgkit.Database, slot string) *ReplicateArgs {
	a := replArgs(src, dst, "start", slot)
	a.InitialCopy = "copy"
	jobs := 2
	a.Jobs = &jobs
	return a
}

// TestReplicateInitialCopy: start with initial_copy = "copy" while the
// application writes throughout, before the slot exists, while the copy
// runs and after it. Once the writer stops and catch_up returns, the
// target equals the source row for row (a table without a key included:
// a row applied twice would show), the rows written during the copy are
// there, and stop removes subscription, slot and publication.
func TestReplicateInitialCopy(t *testing.T) {
	t.Parallel()
	src, dst := replCopyPair(t, replSchema, replSeed+`INSERT INTO app.cache VALUES ('k1'), ('k2');`)
	slot := replSlot(t, "copy")

	ctx, stop := context.WithCancel(steptest.Ctx(t))
	defer stop()
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			err := steptest.ExecContext(ctx, src.URL, fmt.Sprintf(`INSERT INTO app.users (name, score) VALUES ('w%[1]d', %[1]d);
				UPDATE app.users SET score = score + 1 WHERE id = 1 + %[1]d %% 150;
				DELETE FROM app.users WHERE id = 10 + %[1]d AND %[1]d %% 5 = 0;
				INSERT INTO app.events (at, body) VALUES (date '2024-06-01' + %[1]d %% 400, 'w%[1]d');
				INSERT INTO app.tags VALUES ('w', %[1]d %% 3)`, i))
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("writer: %v", err)
				}
				return
			}
			writes.Add(1)
		}
	})
	// Writes before the slot exists are in the snapshot.
	for writes.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	env := steptest.Env(t)
	t0 := time.Now()
	env.Log = func(f string, args ...any) {
		t.Logf("%6dms "+f, append([]any{time.Since(t0).Milliseconds()}, args...)...)
	}
	var atSnapshot, duringCopy int64
	t.Cleanup(copystep.HookAfterSnapshot(env, func() {
		// The copy holds its snapshot: what the writer commits now must
		// come through the slot.
		atSnapshot = writes.Load()
		for deadline := time.Now().Add(10 * time.Second); writes.Load() < atSnapshot+30 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		duringCopy = writes.Load() - atSnapshot
	}))
	out, err := runReplicate(steptest.Ctx(t), env, replCopyArgs(src, dst, slot))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a few more writes after the start
	stop()
	wg.Wait()
	if duringCopy < 30 {
		t.Errorf("only %d writes while the copy ran", duringCopy)
	}
	if out.InitialCopy != "copy" || out.Copy == nil || out.Copy.Rows == 0 || out.Tables != 4 {
		t.Errorf("start: initial_copy %q, tables %d, copy %+v", out.InitialCopy, out.Tables, out.Copy)
	}
	if want := "publication planrun,slot " + slot + ",subscription planrun"; strings.Join(out.Created, ",") != want {
		t.Errorf("created %v, want %s", out.Created, want)
	}
	if g := gapOf(out, "unlogged_tables"); g == nil || !strings.Contains(g.Note, "as of its snapshot") {
		t.Errorf("unlogged tables: %+v", g)
	}

	replRun(t, replArgs(src, dst, "catch_up", slot))
	replAssertSame(t, "after catch_up", src, dst)
	// Every write the application made is there, once (the writer may
	// have committed one more than it counted, cut off by stop()).
	q := "SELECT count(*) FROM app.tags WHERE name = 'w'"
	got, _ := strconv.ParseInt(steptest.Query(t, dst.URL, q)[0], 10, 64)
	want, _ := strconv.ParseInt(steptest.Query(t, src.URL, q)[0], 10, 64)
	if got != want || want < writes.Load() || want > writes.Load()+1 {
		t.Errorf("target has %d of the writer's tags, the source %d; the writer counted %d", got, want, writes.Load())
	}
	// The publication stays on the source: the copy does not bring it.
	if n := steptest.Query(t, dst.URL, "SELECT count(*) FROM pg_publication")[0]; n != "0" {
		t.Errorf("the target has %s publications", n)
	}
	if _, err := sequences.Run(steptest.Ctx(t), steptest.Env(t), &sequences.SequencesArgs{Source: src, Target: dst}); err != nil {
		t.Fatal(err)
	}
	cmp, err := compare.Run(steptest.Ctx(t), steptest.Env(t), &compare.CompareArgs{Source: src, Target: dst, Data: strp("checksum")})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal {
		t.Errorf("compare: mismatched %v, sequences behind %v, indexes %+v", cmp.Mismatched, cmp.SequencesBehind, cmp.Indexes)
	}
	t.Logf("%d writes, %d of them while the copy ran; start %.2fs (copy %.2fs)", writes.Load(), duringCopy, out.Seconds, out.Copy.Seconds)

	stopOut := replRun(t, replArgs(src, dst, "stop", slot))
	if want := "subscription planrun,slot " + slot + ",publication planrun"; strings.Join(stopOut.Dropped, ",") != want {
		t.Errorf("stop dropped %v, want %s", stopOut.Dropped, want)
	}
	if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs+subs+slots != 0 {
		t.Errorf("after stop: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
	}

	// A rehearsal again, into the full target: clean = true drops what
	// the copy brings first.
	steptest.MustSQL(t, src.URL, "INSERT INTO app.users (name) VALUES ('second run')")
	a := replCopyArgs(src, dst, slot)
	a.Clean = true
	again := replRun(t, a)
	if again.InitialCopy != "copy" || again.Copy == nil || again.Copy.Rows == 0 {
		t.Errorf("second start: %+v", again)
	}
	replAssertSame(t, "after a start with clean", src, dst)
}

// TestReplicateInitialCopyTables: with tables, the copy brings those
// tables (a partitioned one with its partitions) into a target that has
// their schema, and nothing else.
func TestReplicateInitialCopyTables(t *testing.T) {
	t.Parallel()
	src, dst := replCopyPair(t, replSchema, replSeed)
	steptest.MustSQL(t, dst.URL, "CREATE SCHEMA app")
	slot := replSlot(t, "copytables")
	a := replCopyArgs(src, dst, slot)
	a.Tables = []string{"app.users", "app.events"}
	out := replRun(t, a)
	if out.Tables != 3 || out.Copy == nil || len(out.Copy.Tables) != 3 {
		t.Errorf("start: tables %d, copy %+v", out.Tables, out.Copy)
	}
	steptest.MustSQL(t, src.URL, "INSERT INTO app.users (name) VALUES ('after'); UPDATE app.events SET body = 'x' WHERE id < 10")
	replRun(t, replArgs(src, dst, "catch_up", slot))
	for _, table := range []string{"app.users", "app.events"} {
		q := "SELECT t::text FROM " + table + " t ORDER BY 1"
		if strings.Join(steptest.Query(t, src.URL, q), "\n") != strings.Join(steptest.Query(t, dst.URL, q), "\n") {
			t.Errorf("%s differs", table)
		}
	}
	if got := steptest.Query(t, dst.URL, "SELECT to_regclass('app.tags') IS NULL"); got[0] != "true" {
		t.Errorf("app.tags was copied too")
	}
}

// TestReplicateInitialCopyRefusals: what start with initial_copy = "copy"
// refuses, or fails at once the slot exists, leaves no publication and no
// slot behind.
func TestReplicateInitialCopyRefusals(t *testing.T) {
	t.Parallel()
	const schema = `CREATE TABLE users (id int PRIMARY KEY, name text); CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';`
	cases := []struct {
		name      string
		targetSQL string
		args      func(a *ReplicateArgs)
		before    func(t *testing.T, src *pgkit.Database, slot string)
		want      []string
	}{{
		name:      "target not empty",
		targetSQL: `CREATE SCHEMA app; CREATE TABLE other (i int)`,
		want:      []string{"target new is not empty (schema app, table public.other)", "clean = true", "nothing was created"},
	}, {
		name:      "tables the target has",
		targetSQL: `CREATE TABLE users (i int)`,
		args:      func(a *ReplicateArgs) { a.Tables = []string{"users"} },
		want:      []string{"target new already has public.users", "nothing was created"},
	}, {
		name: "a slot left by a start cut off during its copy",
		before: func(t *testing.T, src *pgkit.Database, slot string) {
			steptest.MustSQL(t, src.URL, "SELECT pg_create_logical_replication_slot('"+slot+"', 'pgoutput')")
		},
		want: []string{"has a replication slot", "cannot go on", `action = "stop"`, "empty the target", "nothing was created"},
	}, {
		name: "the copy fails after the slot exists",
		// The target is empty but for a function the schema brings too:
		// the slot and publication exist when the copy's restore fails.
		targetSQL: `CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		want:      []string{"initial copy old to new", "answer", "the target holds part of the copy", "was dropped again"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst := replCopyPair(t, schema, `INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 50) g`)
			slot := replSlot(t, "copyrefuse")
			if c.targetSQL != "" {
				steptest.MustSQL(t, dst.URL, c.targetSQL)
			}
			if c.before != nil {
				c.before(t, src, slot)
			}
			a := replCopyArgs(src, dst, slot)
			if c.args != nil {
				c.args(a)
			}
			out, err := runReplicate(steptest.Ctx(t), steptest.Env(t), a)
			if err == nil {
				t.Fatal("start succeeded")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if out != nil && len(out.Created) != 0 {
				t.Errorf("created %v", out.Created)
			}
			wantSlots := 0
			if strings.Contains(c.name, "slot left") {
				wantSlots = 1 // someone's: start leaves it alone; stop drops it
			}
			if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs != 0 || subs != 0 || slots != wantSlots {
				t.Errorf("left behind: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
			}
			if wantSlots == 1 {
				stop := replRun(t, replArgs(src, dst, "stop", slot))
				if strings.Join(stop.Dropped, ",") != "slot "+slot {
					t.Errorf("stop dropped %v", stop.Dropped)
				}
				replRun(t, replCopyArgs(src, dst, slot)) // and start again works
			}
		})
	}
	// Cancelled during the copy (Ctrl-C, the step's timeout): the slot
	// and the publication go.
	t.Run("cancelled during the copy", func(t *testing.T) {
		src, dst := replCopyPair(t, schema, "")
		slot := replSlot(t, "copycancel")
		ctx, cancel := context.WithCancel(steptest.Ctx(t))
		defer cancel()
		env := steptest.Env(t)
		defer copystep.HookAfterSnapshot(env, cancel)()
		_, err := runReplicate(ctx, env, replCopyArgs(src, dst, slot))
		if err == nil || !strings.Contains(err.Error(), "canceled") || !strings.Contains(err.Error(), "was dropped again") {
			t.Errorf("error: %v", err)
		}
		if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs+subs+slots != 0 {
			t.Errorf("left behind: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
		}
	})
	// A schema missing on the target, with tables.
	t.Run("schema missing", func(t *testing.T) {
		src, dst := replCopyPair(t, replSchema, replSeed)
		slot := replSlot(t, "copyschema")
		a := replCopyArgs(src, dst, slot)
		a.Tables = []string{"app.users"}
		_, err := runReplicate(steptest.Ctx(t), steptest.Env(t), a)
		if err == nil || !strings.Contains(err.Error(), "lacks the schema of app.users") {
			t.Errorf("error: %v", err)
		}
		if pubs, subs, slots := replCatalog(t, src, dst, slot); pubs+subs+slots != 0 {
			t.Errorf("left behind: %d publications, %d subscriptions, %d slots", pubs, subs, slots)
		}
	})
}
