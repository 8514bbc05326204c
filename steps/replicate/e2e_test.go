package replicate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/replicate"
)

const replE2ESchema = `
CREATE SCHEMA app;
CREATE TABLE app.users (id serial PRIMARY KEY, name text NOT NULL, score int NOT NULL DEFAULT 0);
CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id int NOT NULL, total numeric(10, 2));
CREATE TABLE app.done (at timestamptz PRIMARY KEY DEFAULT now());
`

// The zero-downtime runbook in small: replicate while the app writes, wait
// for the writes to stop (the maintenance window), catch up, set the
// sequences, verify every row, remove the replication.
const replE2EPlan = `
plan "zero" { on_failure = "rollback" }

variable "source_url" {
  type      = string
  sensitive = true
}
variable "target_url" {
  type      = string
  sensitive = true
}
variable "slot" { type = string }

database "old" { url = var.source_url }
database "new" { url = var.target_url }

step "replicate" {
  uses     = "replicate"
  source   = database.old
  target   = database.new
  slot     = var.slot
  max_wait = "20s"
  assert { that = "output.tables == 3 && output.caught_up_lsn != ''" }
  assert { that = "any(output.not_replicated, {.kind == 'sequences' && .count == 2})" }
  rollback {
    uses   = "replicate"
    action = "stop"
    source = database.old
    target = database.new
    slot   = var.slot
  }
}

step "writes_stopped" {
  uses       = "wait"
  depends_on = [step.replicate]
  interval   = "50ms"
  max_wait   = "20s"
  probe {
    uses     = "sql"
    database = database.old
    query    = "SELECT count(*) AS n FROM app.done"
  }
  until = "output.rows[0].n > 0"
}

step "catch_up" {
  uses       = "replicate"
  action     = "catch_up"
  source     = database.old
  target     = database.new
  depends_on = [step.writes_stopped]
  assert { that = "output.slot == var.slot" }
}

step "sequences" {
  uses       = "sequences"
  source     = database.old
  target     = database.new
  depends_on = [step.catch_up]
}

check "same" {
  uses       = "compare"
  source     = database.old
  target     = database.new
  data       = "checksum"
  depends_on = [step.sequences]
  assert {
    that    = "output.equal"
    message = "differs: {{ output.mismatched }} {{ output.sequences_behind }}"
  }
}

step "stop" {
  uses       = "replicate"
  action     = "stop"
  source     = database.old
  target     = database.new
  depends_on = [check.same]
  assert { that = "len(output.dropped) == 3" }
}
`

// replWriter is the application: it writes to the source (inserts,
// updates, deletes) until the subscription has existed for a while, then
// marks app.done and stops.
func replWriter(t *testing.T, ctx context.Context, src, dst string) (wait func() int) {
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, src)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer conn.Close(context.Background())
		watch, err := pgx.Connect(ctx, dst)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer watch.Close(context.Background())
		after := -1 // writes left once the subscription exists
		for i := 0; after != 0; i++ {
			if ctx.Err() != nil {
				return
			}
			_, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO app.users (name) VALUES ('w%[1]d');
				INSERT INTO app.orders (user_id, total) SELECT id, %[1]d %% 97 FROM app.users ORDER BY id DESC LIMIT 1;
				UPDATE app.users SET score = score + 1 WHERE id = 1 + %[1]d %% 50;
				DELETE FROM app.orders WHERE id = (SELECT min(id) FROM app.orders) AND %[1]d %% 4 = 0`, i))
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			writes++
			if after > 0 {
				after--
			} else if i%10 == 0 {
				var n int
				if err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_subscription").Scan(&n); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
				if n > 0 {
					after = 300
				}
			}
		}
		if _, err := conn.Exec(ctx, "INSERT INTO app.done DEFAULT VALUES"); err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	return func() int { wg.Wait(); return writes }
}

// replE2EPair returns a source with rows and a target, with the schema
// or empty.
func replE2EPair(t *testing.T, targetSchema bool) (src, dst string) {
	replicate.ReplPrepare(t)
	src, dst = replicate.Source.FreshDB(t), replicate.Target.FreshDB(t)
	steptest.MustExec(t, src, replE2ESchema+`INSERT INTO app.users (name) SELECT 'u' || g FROM generate_series(1, 100) g;
		INSERT INTO app.orders (user_id, total) SELECT g, g FROM generate_series(1, 100) g;`)
	if targetSchema {
		steptest.MustExec(t, dst, replE2ESchema)
	}
	t.Cleanup(func() { replicate.ReplCleanup(t, dst) })
	return src, dst
}

// replLeft counts the publications, subscriptions and the slot left.
func replLeft(t *testing.T, src, dst, slot string) string {
	one := func(url, sql string, args ...any) string { return steptest.Query(t, url, sql, args...)[0] }
	return fmt.Sprintf("%s publications, %s subscriptions, %s slots",
		one(src, "SELECT count(*) FROM pg_publication"),
		one(dst, "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()"),
		one(src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot))
}

func TestReplicateEndToEnd(t *testing.T) {
	t.Parallel()
	src, dst := replE2EPair(t, true)
	slot := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writes := replWriter(t, ctx, src, dst)

	res := e2etest.RunPlan(t, replE2EPlan, "source_url="+src, "target_url="+dst, "slot="+slot)
	n := writes()
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if n < 300 {
		t.Errorf("only %d writes", n)
	}
	start := e2etest.OutputOf(t, res, "step.replicate")
	if start["slot"] != slot || len(start["created"].([]any)) != 3 {
		t.Errorf("replicate: %v", start)
	}
	if cmp := e2etest.OutputOf(t, res, "check.same"); cmp["equal"] != true {
		t.Errorf("compare: %v", cmp)
	}
	if left := replLeft(t, src, dst, slot); left != "0 publications, 0 subscriptions, 0 slots" {
		t.Errorf("after stop: %s", left)
	}
	// The target works on its own: its sequences are past the copied keys.
	steptest.MustExec(t, dst, "INSERT INTO app.users (name) VALUES ('after'); INSERT INTO app.orders (user_id) VALUES (1)")
	t.Logf("%d writes while replicating; replicate %.2fs, catch_up %.2fs", n,
		e2etest.OutputOf(t, res, "step.replicate")["seconds"], e2etest.OutputOf(t, res, "step.catch_up")["seconds"])
}

// TestReplicateEndToEndRollback: a later step fails, and the rollback of
// start removes the replication.
func TestReplicateEndToEndRollback(t *testing.T) {
	t.Parallel()
	src, dst := replE2EPair(t, true)
	slot := fmt.Sprintf("e2e_rb_%d", time.Now().UnixNano())
	plan := replE2EPlan[:strings.Index(replE2EPlan, `step "writes_stopped"`)] + `
step "boom" {
  uses       = "sql"
  database   = database.new
  query      = "SELECT 1 / 0"
  depends_on = [step.replicate]
}
`
	res := e2etest.RunPlan(t, plan, "source_url="+src, "target_url="+dst, "slot="+slot)
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	sr := res.Steps["step.replicate"]
	if sr == nil || sr.Status != event.StatusSucceeded || sr.Rollback == nil || sr.Rollback.Status != event.StatusRolledBack {
		t.Fatalf("replicate: %v, rollback %+v", sr.Status, sr.Rollback)
	}
	if left := replLeft(t, src, dst, slot); left != "0 publications, 0 subscriptions, 0 slots" {
		t.Errorf("after the rollback: %s", left)
	}
}

// TestZeroDowntimeExample applies examples/zero-downtime/plan.hcl as
// written, with a fake platform API: turning maintenance on stops the
// application's writer, as a real maintenance mode would.
func TestZeroDowntimeExample(t *testing.T) {
	t.Parallel()
	src, dst := replE2EPair(t, false)
	plan, err := os.ReadFile("../../examples/zero-downtime/plan.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() { // the application
		defer wg.Done()
		conn, err := pgx.Connect(wctx, src)
		if err != nil {
			t.Errorf("writer: %v", err)
			return
		}
		defer conn.Close(context.Background())
		for i := 0; wctx.Err() == nil; i++ {
			_, err := conn.Exec(wctx, fmt.Sprintf(`INSERT INTO app.users (name) VALUES ('w%[1]d');
				INSERT INTO app.orders (user_id, total) VALUES (1 + %[1]d %% 100, %[1]d %% 97);
				UPDATE app.users SET score = score + 1 WHERE id = 1 + %[1]d %% 50`, i))
			if err != nil && wctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			writes++
		}
	}()
	var mu sync.Mutex
	var calls []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["maintenance"] == true {
			stopWriter()
			wg.Wait()
		}
		mu.Lock()
		calls = append(calls, fmt.Sprintf("%s %s %v", r.Method, r.URL.Path, body["maintenance"] != nil))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer api.Close()

	res, _ := e2etest.Apply(t, "plan.hcl", string(plan), engine.Options{AutoApprove: true},
		"source_url="+src, "target_url="+dst, "app_api="+api.URL+"/apps/shop", "app_token=tok", "jobs=2", "cutover_max_wait=20s")
	stopWriter()
	wg.Wait()
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if want := "PATCH /apps/shop true,PATCH /apps/shop/config false,PATCH /apps/shop true"; strings.Join(calls, ",") != want {
		t.Errorf("API calls %v, want %s", calls, want)
	}
	if cmp := e2etest.OutputOf(t, res, "check.verify"); cmp["equal"] != true {
		t.Errorf("verify: %v", cmp["mismatched"])
	}
	if left := replLeft(t, src, dst, fmt.Sprint(e2etest.OutputOf(t, res, "step.replicate")["slot"])); left != "0 publications, 0 subscriptions, 0 slots" {
		t.Errorf("after the run: %s", left)
	}
	t.Logf("%d writes; downtime (writes_off to writes_on) %s; catch_up %.2fs", writes,
		res.Steps["step.writes_on"].Finished.Sub(res.Steps["step.writes_off"].Started).Round(time.Millisecond),
		e2etest.OutputOf(t, res, "step.catch_up")["seconds"])
}
