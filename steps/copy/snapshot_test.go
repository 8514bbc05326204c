package copy

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// The application keeps writing while the copy runs: inserts, updates and
// deletes in plain, split and partitioned tables, a large object changed
// and one created. The target must be the source as of the snapshot, not
// a mix of before and after.
func TestCopySeesOneSnapshotWhileTheSourceChanges(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	before := copyTableSums(t, src)
	beforeLOs := steptest.Query(t, src, copyCatalog["large objects"])
	h := &copyHooks{afterSnapshot: func() {
		steptest.MustExec(t, src, `
INSERT INTO app.orders (customer_id, status, placed_at) SELECT 1, 'paid', now() FROM generate_series(1, 100);
UPDATE app.customers SET name = name || ' (renamed)' WHERE id % 2 = 0;
DELETE FROM app.order_items WHERE order_id % 3 = 0;
UPDATE public.big SET label = 'changed' WHERE id % 7 = 0;
INSERT INTO public.big (id, label) SELECT g, 'late' FROM generate_series(40001, 42000) g;
DELETE FROM public.big WHERE id < 1000;
INSERT INTO audit.events (at, action) VALUES ('2025-03-01', 'late');
SELECT lo_put((SELECT min(oid) FROM pg_largeobject_metadata), 0, '\x4348414e474544');
SELECT lo_from_bytea(0, '\x6e6577');
`)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runCopyHooked(t, ctx, copyArgs(src, dst), t.TempDir(), h); err != nil {
		t.Fatal(err)
	}
	if after := copyTableSums(t, src); strings.Join(after, "\n") == strings.Join(before, "\n") {
		t.Fatal("the writes did not change the source")
	}
	copyAssertEqual(t, "rows (source before the copy, target after)", before, copyTableSums(t, dst))
	copyAssertEqual(t, "large objects (source before the copy, target after)", beforeLOs, steptest.Query(t, dst, copyCatalog["large objects"]))
}

// copySlowTable is a table whose rows take 20ms each to load where the
// setting planrun_test.slow is on: its CHECK calls a function that sleeps
// then. A test turns it on for the target database only
// (copySlowDown), so that the seed is quick and the copy slow.
const copySlowTable = `
CREATE FUNCTION public.slow_ok(int) RETURNS boolean LANGUAGE sql AS
  $$ SELECT CASE WHEN current_setting('planrun_test.slow', true) = 'on' THEN (SELECT true FROM pg_sleep(0.02)) ELSE true END $$;
CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.slow_ok(id)), note text);
INSERT INTO public.slow SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
`

// copySlowDown turns the slow table's sleep on (or off) for new sessions
// on a database.
func copySlowDown(t *testing.T, url string, on bool) {
	t.Helper()
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	sql := "ALTER DATABASE " + pgkit.QuoteIdent(name) + " RESET planrun_test.slow"
	if on {
		sql = "ALTER DATABASE " + pgkit.QuoteIdent(name) + " SET planrun_test.slow = 'on'"
	}
	steptest.MustExec(t, url, sql)
}

// Cancelling stops every worker at once, reports progress until then, and
// leaves no goroutine behind.
func TestCopyCancelStopsPromptlyAndLeaksNothing(t *testing.T) {
	src, dst := copySource(t)
	steptest.MustExec(t, src, copySlowTable)
	copySlowDown(t, dst, true)
	baseline := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var seen []event.Progress
	slowInFlight := make(chan struct{})
	var once sync.Once
	env := copyTestEnv(t, t.TempDir())
	env.Progress = func(p event.Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
		for _, it := range p.Items {
			if it.Name == "public.slow" && it.Rows > 0 {
				once.Do(func() { close(slowInFlight) })
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := runCopy(ctx, env, copyArgs(src, dst))
		done <- err
	}()
	select {
	case <-slowInFlight:
	case err := <-done:
		t.Fatalf("the copy ended before the slow table was in flight: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no progress showed the slow table being copied")
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("err = %v, want a cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the copy did not stop within 10s of the cancellation")
	}
	if d := time.Since(cancelled); d > 3*time.Second {
		t.Errorf("the copy took %s to stop", d)
	}

	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	if last.Unit != "bytes" || last.Done <= 0 || last.Total < last.Done || !strings.HasPrefix(last.Message, "data: ") {
		t.Errorf("progress: %+v", last)
	}

	// Every goroutine the copy started has ended.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
	// And no session of it is still loading the slow table.
	deadline = time.Now().Add(3 * time.Second)
	for {
		got := steptest.Query(t, dst, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'planrun' AND datname = current_database()`)
		if got[0] == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s planrun sessions still on the target", got[0])
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
