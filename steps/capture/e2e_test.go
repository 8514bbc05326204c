package capture_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/herokufake"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/capture"
)

// TestHerokuZeroDowntimeExample applies examples/heroku-zero-downtime as
// written, from a source whose role only owns the tables, while the
// application writes until the fence stops it; a fake platform API takes
// the switch. Every acknowledged write is on the target; the source is
// left as it was before the capture.
func TestHerokuZeroDowntimeExample(t *testing.T) {
	t.Parallel()
	src, dst, _ := capture.OwnerPair(t, capture.BankSchema)
	plan, err := os.ReadFile("../../examples/heroku-zero-downtime/plan.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait := capture.RunWriters(t, ctx, src, 3)
	api := herokufake.New("tok")
	api.AddApp("shop", map[string]string{"RAILS_ENV": "production"})
	api.ProvisionPostgres("shop", "COBALT", src)
	srv := httptest.NewServer(api)
	defer srv.Close()

	time.Sleep(200 * time.Millisecond) // the app writes before the capture exists
	res, _ := e2etest.Apply(t, "plan.hcl", string(plan), engine.Options{AutoApprove: true},
		"source_url="+src, "target_url="+dst, "heroku_app=shop", "heroku_api="+srv.URL, "heroku_api_token=tok", "jobs=2", "cutover_max_wait=30s")
	inserted, deleted, fenced := wait()
	if res.Status != event.StatusSucceeded {
		for addr, sr := range res.Steps {
			t.Logf("%s: %s %v", addr, sr.Status, sr.Err)
		}
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if fenced != 3 || inserted < 100 {
		t.Errorf("%d writers stopped by the fence, %d inserts", fenced, inserted)
	}
	// The switch as Heroku allows it: DATABASE_URL is now the target, the
	// old database is still attached (as HEROKU_POSTGRESQL_COBALT).
	if got := api.Config("shop")["DATABASE_URL"]; got != dst {
		t.Errorf("DATABASE_URL is %q, want the target", got)
	}
	if att := "," + strings.Join(api.Attachments("shop"), ","); !strings.Contains(att, ",HEROKU_POSTGRESQL_COBALT=") || strings.Contains(att, ",DATABASE=") {
		t.Errorf("attachments %s", att)
	}
	if got := steptest.Query(t, dst, "SELECT count(*) FROM app.events"); got[0] != fmt.Sprint(inserted-deleted) {
		t.Errorf("target has %s events; the source acknowledged %d inserts and %d deletes", got[0], inserted, deleted)
	}
	capture.Same(t, src, dst, "SELECT t::text FROM app.events t ORDER BY id")
	capture.Same(t, src, dst, "SELECT t::text FROM app.accounts t ORDER BY id")
	if v := e2etest.OutputOf(t, res, "step.verify"); fmt.Sprint(v["verified_rows"]) == "0" || len(v["differing"].([]any)) != 0 {
		t.Errorf("verify: %v rows, differing %v", v["verified_rows"], v["differing"])
	}
	if cut := e2etest.OutputOf(t, res, "step.cutover"); cut["verify"] != "changed" || len(cut["differing"].([]any)) != 0 {
		t.Errorf("cutover's check: %v, differing %v", cut["verify"], cut["differing"])
	}
	if cmp := e2etest.OutputOf(t, res, "check.objects"); len(cmp["mismatched"].([]any)) != 0 {
		t.Errorf("objects: %v", cmp["mismatched"])
	}
	if left := append(capture.LeftOn(t, src), capture.LeftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// The target works on its own: its sequence is past the copied keys.
	steptest.MustExec(t, dst, "INSERT INTO app.events (account, amount) VALUES (1, 1)")
	cut := e2etest.OutputOf(t, res, "step.cutover")
	t.Logf("%d inserts, %d deletes; sync applied %v; cutover drained %v changes and checked %v rows in %.3fs; window (cutover to switch) %s",
		inserted, deleted, e2etest.OutputOf(t, res, "step.sync")["applied"], cut["applied"], cut["verified_rows"], cut["fence_seconds"],
		res.Steps["step.switch"].Finished.Sub(res.Steps["step.cutover"].Started).Round(time.Millisecond))
}

// TestHerokuZeroDowntimeRollback: a DDL during the sync fails it loudly,
// and the rollback removes the capture from the source.
func TestHerokuZeroDowntimeRollback(t *testing.T) {
	t.Parallel()
	src, dst, admin := capture.OwnerPair(t, capture.BankSchema)
	plan, err := os.ReadFile("../../examples/heroku-zero-downtime/plan.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// Between start and the sync: the sync's first batch sees the change.
	p := strings.Replace(string(plan), `step "sync" {`, `step "ddl" {
  uses       = "sql"
  database   = database.heroku
  query      = "ALTER TABLE app.events ADD COLUMN extra int"
  depends_on = [step.capture]
}

step "sync" {`, 1)
	p = strings.Replace(p, "depends_on = [step.capture]\n  assert {\n    that    = \"output.caught_up\"", "depends_on = [step.ddl]\n  assert {\n    that    = \"output.caught_up\"", 1)
	steptest.MustExec(t, admin, "INSERT INTO app.events (account, amount) VALUES (1, 5)")
	res, _ := e2etest.Apply(t, "plan.hcl", p, engine.Options{AutoApprove: true}, "source_url="+src, "target_url="+dst, "jobs=2")
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if sr := res.Steps["step.sync"]; sr == nil || sr.Err == nil || !strings.Contains(sr.Err.Error(), "DDL during the sync") {
		t.Fatalf("sync: %+v", sr)
	}
	if sr := res.Steps["step.capture"]; sr.Rollback == nil || sr.Rollback.Status != event.StatusRolledBack {
		t.Errorf("capture's rollback: %+v", sr.Rollback)
	}
	if left := append(capture.LeftOn(t, src), capture.LeftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
