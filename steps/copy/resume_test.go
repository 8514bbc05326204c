package copy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/steptest"
)

// copyInterrupted runs the copy and cancels it when stop says so after a
// chunk is committed; the copy must then fail.
func copyInterrupted(t *testing.T, a *CopyArgs, stateDir string, stop func(table string, tableDone bool) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &copyHooks{afterChunk: func(table string, tableDone bool) {
		if stop(table, tableDone) {
			cancel()
		}
	}}
	if _, err := runCopyHooked(t, ctx, a, stateDir, h); err == nil {
		t.Fatal("the copy was not interrupted")
	}
}

// n_tup_ins counts every row ever inserted into a table, whatever
// TRUNCATE or a rollback did since: a table copied twice shows twice its
// rows. copyInserted waits for the statistics of closed sessions.
func copyInserted(t *testing.T, url string, tables []string, atLeast map[string]int64) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]int64{}
		for _, l := range steptest.Query(t, url, `SELECT schemaname || '.' || relname, n_tup_ins FROM pg_stat_user_tables WHERE schemaname || '.' || relname = ANY($1)`, tables) {
			name, n, _ := strings.Cut(l, "\t")
			got[name], _ = strconv.ParseInt(n, 10, 64)
		}
		ready := true
		for name, n := range atLeast {
			if got[name] < n {
				ready = false
			}
		}
		if ready || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A copy killed twice: first while a split table is half copied, then
// after a few tables are done. Each run goes on from where the last one
// stopped: the half-copied table is emptied and copied again, the tables
// done are never copied twice, and the target ends exact.
func TestCopyResumesWithoutCopyingTwice(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	state := t.TempDir()
	a := copyArgs(src, dst)

	// Run 1: stop once three chunks of public.big are in.
	var chunks atomic.Int32
	copyInterrupted(t, a, state, func(table string, _ bool) bool {
		return table == "public.big" && chunks.Add(1) == 3
	})
	raw, err := os.ReadFile(filepath.Join(state, copyStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var s1 copyState
	if err := json.Unmarshal(raw, &s1); err != nil || !s1.SchemaDone || s1.DataDone {
		t.Fatalf("state after run 1 (%v): %s", err, raw)
	}
	if _, done := s1.Tables["public.big"]; done {
		t.Fatalf("public.big recorded as done after 3 of its chunks: %s", raw)
	}
	if got := steptest.Query(t, dst, `SELECT count(*) > 0 AND count(*) < 40000 FROM public.big`); got[0] != "true" {
		t.Fatalf("public.big is not half copied after run 1: %v", got)
	}

	// Run 2: stop once five more tables are done.
	var tables atomic.Int32
	copyInterrupted(t, a, state, func(_ string, done bool) bool {
		return done && tables.Add(1) == 5
	})

	// Run 3 finishes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runCopyTest(t, ctx, a, state)
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)

	if !out.Resumed {
		t.Error("output.resumed is false")
	}
	var earlier []string
	rows := map[string]int64{}
	for _, tb := range out.Tables {
		name := tb.Schema + "." + tb.Name
		rows[name] = tb.Rows
		if tb.Earlier && name != "public.big" {
			earlier = append(earlier, name)
		}
	}
	if len(earlier) < 4 || len(earlier) >= len(out.Tables)-1 {
		t.Fatalf("tables copied by earlier runs: %v of %d", earlier, len(out.Tables))
	}
	if rows["public.big"] != 40000 {
		t.Errorf("public.big: %d rows in the output", rows["public.big"])
	}
	want := map[string]int64{}
	for _, name := range earlier {
		want[name] = rows[name]
	}
	got := copyInserted(t, dst, append(earlier, "public.big"), want)
	for _, name := range earlier {
		if got[name] != rows[name] {
			t.Errorf("%s: %d rows inserted for %d rows: copied again after it was done", name, got[name], rows[name])
		}
	}
	if got["public.big"] <= 40000 {
		t.Errorf("public.big: %d rows inserted; the run that was cut off inserted some too, so more than 40000 were expected", got["public.big"])
	}
	copyAssertInsertsWork(t, src, dst)

	// A fourth run has nothing to do.
	again, err := runCopyTest(t, ctx, a, state)
	if err != nil || !again.Resumed || len(again.Tables) != len(out.Tables) {
		t.Errorf("run 4: %v, %+v", err, again)
	}
}

// A post-data restore cut off half-way keeps what it built: the run after
// it builds only what is missing, and what exists (indexes attached to a
// partitioned index included) does not make it fail.
func TestCopyResumesPostData(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runCopyTest(t, ctx, copyArgs(src, dst), state); err != nil {
		t.Fatal(err)
	}
	// As if the run had died during post-data: some of it is missing.
	path := filepath.Join(state, copyStateFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s copyState
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	s.PostDataDone, s.AnalyzeDone, s.Indexes = false, false, nil
	if raw, err = json.Marshal(&s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	steptest.MustExec(t, dst, `
DROP INDEX app.orders_placed_idx;
ALTER TABLE app.orders DROP CONSTRAINT orders_customer_id_fkey;
REFRESH MATERIALIZED VIEW billing.monthly_revenue WITH NO DATA;`)

	out, err := runCopyTest(t, ctx, copyArgs(src, dst), state)
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)
	if len(out.Indexes) != 1 || out.Indexes[0].Name != "app.orders_placed_idx" {
		t.Errorf("indexes built: %+v; want only app.orders_placed_idx", out.Indexes)
	}
	if out.Phases.Data != 0 || out.Phases.Schema != 0 || out.Phases.PostData == 0 {
		t.Errorf("phases: %+v", out.Phases)
	}
}
