package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/steptest"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/steptype"
)

const typesSchema = `
CREATE SCHEMA app;
CREATE TABLE app.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, big text, data bytea, tags text[], doc jsonb,
	n numeric, f float8, at timestamptz, gen int GENERATED ALWAYS AS (length(name)) STORED);
CREATE TABLE app.pairs (a int, b text, v text, PRIMARY KEY (a, b));
CREATE TABLE app.uniq (code text NOT NULL UNIQUE, v int);
CREATE TABLE app."We""ird tab,le" ("k ey" int PRIMARY KEY, "va,l""ue" text, "{x}" int[]);
INSERT INTO app.items (name, data, tags, doc, n, f, at) SELECT 'i' || g, '\x00ff'::bytea, ARRAY['a', NULL, 'c,d'], '{"k": [1, null]}', g / 3.0, g / 7.0, '2024-01-01'::timestamptz + g * interval '1 hour'
	FROM generate_series(1, 50) g;
INSERT INTO app.pairs SELECT g % 5, 'b' || g, 'v' FROM generate_series(1, 20) g;
INSERT INTO app.uniq SELECT 'c' || g, g FROM generate_series(1, 10) g;
`

// dump reads every captured table in a fixed order, as text.
const dumpItems = "SELECT t::text FROM app.items t ORDER BY id"
const dumpPairs = "SELECT t::text FROM app.pairs t ORDER BY a, b"
const dumpUniq = "SELECT t::text FROM app.uniq t ORDER BY code"

func TestCaptureReplaysEveryKindOfChange(t *testing.T) {
	t.Parallel()
	src, dst, admin := ownerPair(t, typesSchema)
	start := mustRun(t, src, dst, "start", nil)
	if strings.Join(start.Tables, ",") != `app.We"ird tab,le,app.items,app.pairs,app.uniq` || start.Copy == nil || start.Boundary == "" {
		t.Fatalf("start: %+v", start)
	}
	steptest.MustExec(t, src, `
INSERT INTO app.items (name, big, data, tags, doc, n, f, at) VALUES
	(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	('toast', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g), decode(repeat('00ff10', 5000), 'hex'),
	 ARRAY['x''y', '"q"', '{}'], '{"nested": {"a": [1, 2.5, "three", null, true]}, "s": "é\u00e9"}', 12345678901234567890.123456789, 1e-300, '1999-12-31 23:59:59.999999+05');
UPDATE app.items SET name = 'renamed', tags = tags || 'e'::text WHERE id <= 5;
UPDATE app.items SET n = -1 WHERE name = 'toast';            -- the TOASTed value stays, unchanged
UPDATE app.items SET big = NULL, doc = 'null' WHERE id = 6;
DELETE FROM app.items WHERE id BETWEEN 10 AND 14;
UPDATE app.pairs SET a = a + 100 WHERE b IN ('b1', 'b2');     -- the key changes
UPDATE app.pairs SET b = 'moved' WHERE a = 3 AND b = 'b3';
DELETE FROM app.pairs WHERE a = 4;
`)
	// Each on its own: a ROLLBACK inside a multi-statement string would
	// undo the statements before it too.
	steptest.MustExec(t, src, `BEGIN; INSERT INTO app.pairs VALUES (999, 'rolled back', 'no'); UPDATE app.items SET name = 'no' WHERE id = 1; DELETE FROM app.uniq; ROLLBACK`)
	steptest.MustExec(t, src, `BEGIN; INSERT INTO app.pairs VALUES (998, 'kept', 'yes'); SAVEPOINT s; INSERT INTO app.pairs VALUES (997, 'sub rolled back', 'no'); ROLLBACK TO s; COMMIT`)
	steptest.MustExec(t, src, `TRUNCATE app.uniq;
INSERT INTO app.uniq VALUES ('after truncate', 1);
UPDATE app.uniq SET code = 'renamed code' WHERE code = 'after truncate';
INSERT INTO app."We""ird tab,le" VALUES (1, 'a"b,c', '{1,NULL}'), (2, NULL, NULL);
UPDATE app."We""ird tab,le" SET "k ey" = 3, "{x}" = '{}' WHERE "k ey" = 1;
`)
	// A superuser's session that skips ordinary triggers is captured too.
	steptest.MustExec(t, admin, "SET session_replication_role = replica; INSERT INTO app.pairs VALUES (500, 'replica', 'r')")
	up := mustRun(t, src, dst, "catch_up", func(a *CaptureArgs) { a.BatchRows = ptr(7) })
	if up.Applied == 0 || up.LagRows != 0 || !up.CaughtUp {
		t.Errorf("catch_up: %+v", up)
	}
	items := same(t, src, dst, dumpItems)
	same(t, src, dst, dumpPairs)
	same(t, src, dst, dumpUniq)
	if got := same(t, src, dst, `SELECT t::text FROM app."We""ird tab,le" t ORDER BY 1`); len(got) != 2 {
		t.Errorf("odd names: %v", got)
	}
	if got := steptest.Query(t, dst, "SELECT count(*) FROM app.pairs WHERE v = 'no'"); got[0] != "0" {
		t.Errorf("rolled-back rows on the target: %v", got)
	}
	if len(items) != 47 {
		t.Errorf("%d items", len(items))
	}
	if got := steptest.Query(t, dst, "SELECT length(big), length(data) FROM app.items WHERE name = 'toast'"); got[0] != "128000\t15000" {
		t.Errorf("TOASTed values: %v", got)
	}

	// Every kind of value checksummed alike on both sides.
	if v := mustRun(t, src, dst, "verify", nil); v.VerifiedRows != 47+18+1+2 || len(v.Differing) != 0 || v.VerifiedAt == "" {
		t.Errorf("verify: %d rows, differing %v", v.VerifiedRows, v.Differing)
	}
	steptest.MustExec(t, src, "UPDATE app.items SET doc = '[1, {\"a\": null}]', f = -0.0 WHERE id = 7; DELETE FROM app.pairs WHERE a = 998")
	cut := mustRun(t, src, dst, "cutover", nil)
	if !cut.Fenced || !cut.CaughtUp || cut.Sequences != 1 || cut.Verify != "changed" || cut.VerifiedRows != 2 {
		t.Errorf("cutover: %+v", cut)
	}
	err := steptest.Exec(t, src, "INSERT INTO app.pairs VALUES (1, 'fenced', 'no')")
	if err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Errorf("a write through the fence: %v", err)
	}
	if again := mustRun(t, src, dst, "cutover", nil); !again.Fenced || again.Applied != 0 {
		t.Errorf("cutover again: %+v", again)
	}
	if err := steptest.Exec(t, admin, "SET session_replication_role = replica; DELETE FROM app.pairs"); err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Errorf("a replica session through the fence: %v", err)
	}
	// The target's sequence hands out what the source's would.
	same(t, src, dst, "SELECT last_value FROM app.items_id_seq")
	mustRun(t, src, dst, "unfence", nil)
	steptest.MustExec(t, src, "INSERT INTO app.pairs VALUES (1, 'unfenced', 'yes')")
	stop := mustRun(t, src, dst, "stop", nil)
	if len(stop.Dropped) != 2 {
		t.Errorf("stop: %v", stop.Dropped)
	}
	if left := append(leftOn(t, src), leftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// Stop again: nothing to do, no error.
	mustRun(t, src, dst, "stop", nil)
}

func TestCaptureRefusesTableWithoutKey(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, `CREATE SCHEMA app; CREATE TABLE app.keyed (id int PRIMARY KEY); CREATE TABLE app.loose (a int, b text);
		CREATE TABLE app.nullable_unique (a int UNIQUE); CREATE TABLE app.unique_ok (a int NOT NULL UNIQUE, b text);`)
	_, err := capRun(t, steptest.Ctx(t), nil, src, dst, "start", nil)
	if !steptype.IsRefusal(err) || !strings.Contains(err.Error(), "app.loose, app.nullable_unique have no primary key") || !strings.Contains(err.Error(), "full_row_match = true") {
		t.Fatalf("want a refusal naming app.loose and app.nullable_unique: %v", err)
	}
	if left := leftOn(t, src); len(left) != 0 {
		t.Errorf("a refusal left %v", left)
	}
	steptest.MustExec(t, dst, "CREATE SCHEMA app") // with tables, the copy brings only the tables
	out := mustRun(t, src, dst, "start", func(a *CaptureArgs) { a.Tables = []string{"app.keyed", "app.unique_ok"} })
	if strings.Join(out.Tables, ",") != "app.keyed,app.unique_ok" {
		t.Errorf("tables: %v", out.Tables)
	}
	_, err = capRun(t, steptest.Ctx(t), nil, src, dst, "start", nil)
	if !steptype.IsRefusal(err) || !strings.Contains(err.Error(), "already has a schema planrun_capture") {
		t.Errorf("a second start: %v", err)
	}
	mustRun(t, src, dst, "stop", nil)
	if left := append(leftOn(t, src), leftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestCaptureDDLDuringSyncFailsLoudly(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	steptest.MustExec(t, src, "UPDATE app.pairs SET v = 'x'")
	mustRun(t, src, dst, "catch_up", nil)
	steptest.MustExec(t, src, "ALTER TABLE app.pairs ADD COLUMN extra int DEFAULT 7; UPDATE app.pairs SET v = 'y'")
	_, err := capRun(t, steptest.Ctx(t), nil, src, dst, "catch_up", nil)
	if err == nil || !strings.Contains(err.Error(), "DDL during the sync") || !strings.Contains(err.Error(), "app.pairs changed") {
		t.Fatalf("want the DDL named: %v", err)
	}
	if got := steptest.Query(t, dst, "SELECT count(*) FROM app.pairs WHERE v = 'y'"); got[0] != "0" {
		t.Errorf("changes after the DDL were applied: %v", got)
	}
	_, err = capRun(t, steptest.Ctx(t), nil, src, dst, "cutover", nil)
	if err == nil || !strings.Contains(err.Error(), "DDL during the sync") {
		t.Errorf("cutover after DDL: %v", err)
	}
	if got := steptest.Query(t, src, "SELECT count(*) FROM pg_trigger WHERE tgname = 'planrun_capture_fence'"); got[0] != "0" {
		t.Errorf("a cutover that refused the DDL fenced anyway: %v", got)
	}
	mustRun(t, src, dst, "stop", nil)
	if left := append(leftOn(t, src), leftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestCaptureCrashDuringApply cuts a catch_up off inside a batch's target
// transaction, in the middle of an epoch several batches long: the next
// catch_up applies every change exactly once.
func TestCaptureCrashDuringApply(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	// 3000 changes: 1500 inserts, 1000 updates, 500 deletes.
	steptest.MustExec(t, src, `INSERT INTO app.pairs SELECT 1000 + g, 'n', 'new' FROM generate_series(1, 1000) g;
		UPDATE app.pairs SET v = 'updated' WHERE a > 1000;
		DELETE FROM app.pairs WHERE a > 1500;
		INSERT INTO app.pairs SELECT 3000 + g, 'n', 'new' FROM generate_series(1, 500) g;`)
	const changes = 3000
	env := steptest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	batches := 0
	defer hookApplied(env, func(int) {
		batches++
		if batches == 3 {
			cancel() // a crash after two committed batches, during the third
		}
	})()
	_, err := capRun(t, ctx, env, src, dst, "catch_up", func(a *CaptureArgs) { a.BatchRows = ptr(400) })
	if err == nil {
		t.Fatal("the cut-off catch_up succeeded")
	}
	if got := steptest.Query(t, dst, "SELECT applied, epoch_to IS NOT NULL, after_pos > 0 FROM planrun_capture.state"); got[0] != "800\ttrue\ttrue" {
		t.Errorf("after the crash: %v", got)
	}
	out := mustRun(t, src, dst, "catch_up", func(a *CaptureArgs) { a.BatchRows = ptr(400) })
	if out.AppliedTotal != changes || out.Applied != changes-800 {
		t.Errorf("applied %d in all, %d after the crash; want %d, %d", out.AppliedTotal, out.Applied, changes, changes-800)
	}
	same(t, src, dst, dumpPairs)
	if got := steptest.Query(t, src, "SELECT count(*) FROM planrun_capture.log"); got[0] != "0" {
		t.Errorf("the applied changes are still in the source's log: %v", got)
	}
	mustRun(t, src, dst, "stop", nil)
}

func ptr[T any](v T) *T { return &v }

// TestCaptureSnapshotBoundary writes around start's snapshot: a change
// committed before it (after the triggers) is in the copy and not
// replayed; one of a transaction open across it, and one after it, are
// replayed, once.
func TestCaptureSnapshotBoundary(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	env := steptest.Env(t)
	ctx := steptest.Ctx(t)
	open := steptest.Connect(t, src)
	beforeSnapshotHooks.Store(env, func() {
		steptest.MustExec(t, src, "INSERT INTO app.pairs VALUES (1, 'before', 'copied')")
		for _, q := range []string{"BEGIN", "INSERT INTO app.pairs VALUES (2, 'across', 'replayed')"} {
			if _, err := open.Exec(ctx, q); err != nil {
				t.Error(err)
			}
		}
	})
	defer beforeSnapshotHooks.Delete(env)
	defer copystep.HookAfterSnapshot(env, func() {
		if _, err := open.Exec(ctx, "COMMIT"); err != nil {
			t.Error(err)
		}
		steptest.MustExec(t, src, "INSERT INTO app.pairs VALUES (3, 'after', 'replayed')")
	})()
	if _, err := capRun(t, ctx, env, src, dst, "start", nil); err != nil {
		t.Fatal(err)
	}
	if got := steptest.Query(t, dst, "SELECT b FROM app.pairs WHERE v <> 'v' ORDER BY a"); strings.Join(got, ",") != "before" {
		t.Errorf("the copy has %v, want only the row committed before its snapshot", got)
	}
	up := mustRun(t, src, dst, "catch_up", nil)
	if up.Applied != 2 {
		t.Errorf("replayed %d changes, want 2 (the one in the copy is not replayed)", up.Applied)
	}
	same(t, src, dst, dumpPairs)
	mustRun(t, src, dst, "stop", nil)
}

// TestCaptureKilledDuringApply kills (SIGKILL) a catch_up running in
// another process in the middle of its work: the next catch_up applies
// every change exactly once.
func TestCaptureKilledDuringApply(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	steptest.MustExec(t, src, `INSERT INTO app.pairs SELECT 1000 + g, 'n', 'new' FROM generate_series(1, 1000) g;
		UPDATE app.pairs SET v = 'updated' WHERE a > 1000;
		DELETE FROM app.pairs WHERE a > 1500;`)
	const changes = 2500
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "PLANRUN_CAPTURE_SRC="+src, "PLANRUN_CAPTURE_DST="+dst)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	applied := "0"
	for deadline := time.Now().Add(time.Minute); applied == "0" || applied == "<null>"; {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the child applied nothing: %s", stderr.String())
		}
		time.Sleep(30 * time.Millisecond)
		if got := steptest.Query(t, dst, "SELECT max(applied) FROM planrun_capture.state"); len(got) == 1 {
			applied = got[0]
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before := steptest.Query(t, dst, "SELECT applied FROM planrun_capture.state")[0]
	if before == fmt.Sprint(changes) {
		t.Fatalf("the child finished before the kill")
	}
	out := mustRun(t, src, dst, "catch_up", func(a *CaptureArgs) { a.BatchRows = ptr(50) })
	if out.AppliedTotal != changes || fmt.Sprint(out.AppliedTotal-out.Applied) != before {
		t.Errorf("applied %d in all (%s before the kill, %d after), want %d", out.AppliedTotal, before, out.Applied, changes)
	}
	same(t, src, dst, dumpPairs)
	t.Logf("killed after %s of %d changes", before, changes)
	mustRun(t, src, dst, "stop", nil)
}

// TestCutoverChecksChangedRows follows the verified point: cutover
// refuses to narrow its check without a verify, verify finds a target
// row that differs, and after a verify cutover checks exactly the rows
// changed since, finding one changed on the target alone.
func TestCutoverChecksChangedRows(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	_, err := capRun(t, steptest.Ctx(t), nil, src, dst, "cutover", nil)
	if !steptype.IsRefusal(err) || !strings.Contains(err.Error(), `action = "verify"`) {
		t.Fatalf("cutover without a verify: want a refusal, got %v", err)
	}
	if got := steptest.Query(t, src, "SELECT count(*) FROM pg_trigger WHERE tgname = 'planrun_capture_fence'"); got[0] != "0" {
		t.Errorf("a refused cutover fenced: %v", got)
	}

	if v := mustRun(t, src, dst, "verify", nil); v.VerifiedRows != 50+20+10 {
		t.Errorf("verify: %d rows", v.VerifiedRows)
	}
	// A verify that finds a difference forgets the one before.
	steptest.MustExec(t, dst, "UPDATE app.uniq SET v = -1 WHERE code = 'c3'")
	out, err := capRun(t, steptest.Ctx(t), nil, src, dst, "verify", nil)
	if err == nil || strings.Join(out.Differing, ";") != "app.uniq code=c3 (changed)" {
		t.Fatalf("verify over a differing target: %v; differing %v", err, out.Differing)
	}
	if _, err := capRun(t, steptest.Ctx(t), nil, src, dst, "cutover", nil); !steptype.IsRefusal(err) {
		t.Fatalf("cutover after a failed verify: want a refusal, got %v", err)
	}
	steptest.MustExec(t, dst, "UPDATE app.uniq SET v = 3 WHERE code = 'c3'")
	mustRun(t, src, dst, "verify", nil)

	steptest.MustExec(t, src, `UPDATE app.items SET name = 'x' WHERE id = 1; DELETE FROM app.pairs WHERE a = 1;
		INSERT INTO app.uniq VALUES ('new', 1); UPDATE app.uniq SET code = 'c2 renamed' WHERE code = 'c2'`)
	mustRun(t, src, dst, "catch_up", nil)
	steptest.MustExec(t, dst, "UPDATE app.items SET name = 'tampered' WHERE id = 1")
	out, err = capRun(t, steptest.Ctx(t), nil, src, dst, "cutover", nil)
	if err == nil || strings.Join(out.Differing, ";") != "app.items id=1 (changed)" || !out.Fenced {
		t.Fatalf("cutover over a changed row: %v; differing %v, fenced %v", err, out.Differing, out.Fenced)
	}
	mustRun(t, src, dst, "unfence", nil)
	steptest.MustExec(t, dst, "UPDATE app.items SET name = 'x' WHERE id = 1")
	// items 1, pairs (1, b1), (1, b6), (1, b11), (1, b16), uniq new, c2 and c2 renamed.
	if cut := mustRun(t, src, dst, "cutover", nil); cut.Verify != "changed" || cut.VerifiedRows != 8 || cut.Checksum != nil || cut.VerifiedAt == "" {
		t.Errorf("cutover: verify %q, %d rows, checksum %v, verified at %q", cut.Verify, cut.VerifiedRows, cut.Checksum != nil, cut.VerifiedAt)
	}
	mustRun(t, src, dst, "unfence", nil)

	// A TRUNCATE since the verify: the table is checked whole.
	steptest.MustExec(t, src, "TRUNCATE app.uniq; INSERT INTO app.uniq VALUES ('only', 1)")
	cut := mustRun(t, src, dst, "cutover", nil)
	if cut.Checksum == nil || len(cut.Checksum.Checksums) != 1 || !cut.Checksum.Checksums[0].Match || cut.VerifiedRows != 1+4+1 {
		t.Errorf("cutover after a truncate: checksum %+v, %d rows", cut.Checksum, cut.VerifiedRows)
	}
	full := mustRun(t, src, dst, "cutover", func(a *CaptureArgs) { a.Verify = "full" })
	if full.Verify != "full" || full.VerifiedRows != 50+16+1 {
		t.Errorf("cutover, verify = full: %q, %d rows", full.Verify, full.VerifiedRows)
	}
	mustRun(t, src, dst, "stop", nil)
	if left := append(leftOn(t, src), leftOn(t, dst)...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestCutoverWithoutFence: with fence = false (the plan stopped the
// writers itself) cutover drains, checks and sets the sequences without
// a trigger, and writes still go through; fence is refused elsewhere.
func TestCutoverWithoutFence(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	// A row gone from the target alone: the replayed DELETE says so.
	steptest.MustExec(t, dst, "DELETE FROM app.uniq WHERE code = 'c5'")
	steptest.MustExec(t, src, "DELETE FROM app.uniq WHERE code = 'c5'")
	if up := mustRun(t, src, dst, "catch_up", nil); up.NotFound != 1 || up.Applied != 1 {
		t.Errorf("a delete the target could not match: not_found %d, applied %d", up.NotFound, up.Applied)
	}
	mustRun(t, src, dst, "verify", nil)
	steptest.MustExec(t, src, "UPDATE app.pairs SET v = 'late' WHERE a = 2")
	cut := mustRun(t, src, dst, "cutover", func(a *CaptureArgs) { a.Fence = ptr(false) })
	if cut.Fenced || cut.FencedAt != "" || !cut.CaughtUp || cut.VerifiedRows != 4 || cut.Sequences != 1 {
		t.Errorf("cutover, fence = false: %+v", cut)
	}
	same(t, src, dst, dumpPairs)
	if got := steptest.Query(t, src, "SELECT count(*) FROM pg_trigger WHERE tgname = 'planrun_capture_fence'"); got[0] != "0" {
		t.Errorf("fence = false fenced: %v", got)
	}
	steptest.MustExec(t, src, "INSERT INTO app.pairs VALUES (77, 'open', 'yes')")
	if _, err := capRun(t, steptest.Ctx(t), nil, src, dst, "catch_up", func(a *CaptureArgs) { a.Fence = ptr(false) }); err == nil || !strings.Contains(err.Error(), `fence: only for action = "cutover"`) {
		t.Errorf("fence on catch_up: %v", err)
	}
	mustRun(t, src, dst, "stop", nil)
}

// TestCaptureFullRowMatch captures a table without a key, identical rows
// included, when the user opts in: each change finds one matching row on
// the target, and the cut-over checks the table whole.
func TestCaptureFullRowMatch(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, `CREATE SCHEMA app; CREATE TABLE app.loose (a int, b text, j json, at timestamptz);
		INSERT INTO app.loose VALUES (1, 'x', '{"a": 1}', '2024-01-01 10:00+02'), (1, 'x', '{"a": 1}', '2024-01-01 10:00+02'), (2, NULL, NULL, NULL), (3, 'w', '[1,  2]', NULL);`)
	out := mustRun(t, src, dst, "start", func(a *CaptureArgs) { a.FullRowMatch = true })
	if strings.Join(out.FullRow, ",") != "app.loose" {
		t.Fatalf("full_row: %v", out.FullRow)
	}
	const dump = "SELECT t::text FROM app.loose t ORDER BY 1"
	steptest.MustExec(t, src, `DELETE FROM app.loose WHERE ctid = (SELECT ctid FROM app.loose WHERE a = 1 LIMIT 1);
		UPDATE app.loose SET b = 'y' WHERE a = 2;
		UPDATE app.loose SET a = a WHERE a = 3;
		UPDATE app.loose SET at = at + interval '1 day' WHERE a = 1;
		INSERT INTO app.loose VALUES (4, 'z', '[]', NULL), (4, 'z', '[]', NULL);`)
	mustRun(t, src, dst, "catch_up", nil)
	if got := same(t, src, dst, dump); len(got) != 5 {
		t.Errorf("%d rows: %v", len(got), got)
	}
	mustRun(t, src, dst, "verify", nil)
	steptest.MustExec(t, src, "DELETE FROM app.loose WHERE ctid = (SELECT ctid FROM app.loose WHERE a = 4 LIMIT 1)")
	cut := mustRun(t, src, dst, "cutover", nil)
	if cut.Checksum == nil || len(cut.Checksum.Checksums) != 1 || !cut.Checksum.Checksums[0].Match {
		t.Errorf("cutover checks the table whole: %+v", cut.Checksum)
	}
	if got := same(t, src, dst, dump); len(got) != 4 {
		t.Errorf("%d rows after the cutover: %v", len(got), got)
	}
	mustRun(t, src, dst, "stop", nil)
	if _, err := capRun(t, steptest.Ctx(t), nil, src, dst, "catch_up", func(a *CaptureArgs) { a.FullRowMatch = true }); err == nil || !strings.Contains(err.Error(), "full_row_match: only for") {
		t.Errorf("full_row_match on catch_up: %v", err)
	}
}

// TestCaptureWriterSettings: a writer whose session prints dates,
// intervals, floats and bytea its own way is replayed exactly; only the
// triggers of tables with such columns pin the settings (each pin costs
// every row), and a table without a key matched by text pins them too.
func TestCaptureWriterSettings(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, `CREATE SCHEMA app;
		CREATE TABLE app.timed (id int PRIMARY KEY, d date, ts timestamptz, iv interval, f float8, p point, r tstzrange, fs float4[]);
		CREATE TABLE app.plain (id int PRIMARY KEY, b bytea, m numeric(12, 2), tags text[], doc jsonb);
		CREATE TABLE app.loose (b bytea, n int);`)
	mustRun(t, src, dst, "start", func(a *CaptureArgs) { a.FullRowMatch = true })
	pinned := steptest.Query(t, src, `SELECT c.relname || ' ' || (p.proconfig::text LIKE '%DateStyle%')::text FROM pg_trigger g
		JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_proc p ON p.oid = g.tgfoid WHERE g.tgname = 'planrun_capture_row' ORDER BY 1`)
	if strings.Join(pinned, ",") != "loose true,plain false,timed true" {
		t.Errorf("which triggers pin the print settings: %v", pinned)
	}
	steptest.MustExec(t, src, `SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -15; SET bytea_output = 'escape'; SET TimeZone = 'Asia/Kolkata';
		INSERT INTO app.timed VALUES (1, '2024-02-03', '2024-02-03 04:05:06.789+01', '1 year 2 days 03:04:05', 0.1 + 0.2, point(1.0/3, 2.0/3), tstzrange('2024-01-01', '2024-01-02'), ARRAY[1.0/3]::float4[]);
		INSERT INTO app.plain VALUES (1, '\x00ff5c27', 12.5, ARRAY['a'], '{"x": 1.5}');
		INSERT INTO app.loose VALUES ('\x00ff5c27', 1), ('\x01', 2);
		UPDATE app.timed SET f = f * 3 WHERE id = 1;
		UPDATE app.plain SET b = b || '\x01'::bytea WHERE id = 1;
		DELETE FROM app.loose WHERE n = 1;
		UPDATE app.loose SET n = 3 WHERE n = 2;`)
	mustRun(t, src, dst, "catch_up", nil)
	same(t, src, dst, "SELECT t::text FROM app.timed t ORDER BY id")
	same(t, src, dst, "SELECT t::text FROM app.plain t ORDER BY id")
	if got := same(t, src, dst, "SELECT t::text FROM app.loose t ORDER BY 1"); len(got) != 1 {
		t.Errorf("loose: %v", got)
	}
	mustRun(t, src, dst, "verify", nil)
	mustRun(t, src, dst, "stop", nil)
}

// TestVerifyStartsOverWhenReplayMoves: a catch_up that moves the target
// past verify's snapshot before verify holds it makes verify start over
// from a new snapshot, not compare a target that is ahead of it.
func TestVerifyStartsOverWhenReplayMoves(t *testing.T) {
	t.Parallel()
	src, dst, _ := ownerPair(t, typesSchema)
	mustRun(t, src, dst, "start", nil)
	env := steptest.Env(t)
	env.Log = t.Logf
	calls := 0
	beforeHoldHooks.Store(env, func() {
		if calls++; calls == 1 {
			steptest.MustExec(t, src, "UPDATE app.pairs SET v = 'moved on' WHERE a = 1")
			mustRun(t, src, dst, "catch_up", nil)
		}
	})
	defer beforeHoldHooks.Delete(env)
	out, err := capRun(t, steptest.Ctx(t), env, src, dst, "verify", nil)
	if err != nil || calls != 2 || out.VerifiedRows != 80 || out.VerifiedAt == "" {
		t.Fatalf("verify: %v; %d attempts, %d rows", err, calls, out.VerifiedRows)
	}
	mustRun(t, src, dst, "stop", nil)
}
