package journal

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// oddOutput holds what JSON can carry but jsonb cannot (\u0000), or would
// not keep as written: control bytes, U+2028, HTML characters, a 64-bit
// integer, duplicate-looking keys, non-ASCII text.
var oddOutput = map[string]any{
	"stdout": "a\x00b\x01\x1f\x7f\u2028\u2029<&>\"\\ é 日本 🙂\n\r\t",
	"big":    json.Number("9007199254740993"),
	"float":  json.Number("1.50"),
	"nested": []any{"\x00", map[string]any{"": "\x00\x00"}},
}

func oddRun(plan string) []event.Event {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return []event.Event{
		{Time: t0, Type: event.RunStarted, Run: "r1", Plan: plan, Hash: "h"},
		{Time: t0, Type: event.StepStarted, Run: "r1", Step: "step.x", Uses: "exec"},
		{Time: t0, Type: event.StepFinished, Run: "r1", Step: "step.x", Status: event.StatusSucceeded, Output: oddOutput, Error: "\x00"},
		{Time: t0, Type: event.RunFinished, Run: "r1", Status: event.StatusSucceeded},
	}
}

func lines(t *testing.T, events []event.Event) []byte {
	t.Helper()
	var b []byte
	for _, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, raw...), '\n')
	}
	return b
}

func record(t *testing.T, s Store, plan, id string, events []event.Event) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, plan, id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, ev := range events {
		if err := w.Record(ev); err != nil {
			t.Fatalf("record %s: %v", ev.Type, err)
		}
	}
}

func TestRecordKeepsOddBytes(t *testing.T) {
	ctx := context.Background()
	want := oddRun("p")
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			record(t, s, "p", "r1", want)
			got, err := s.Events(ctx, "p", "r1")
			if err != nil {
				t.Fatal(err)
			}
			if g, w := lines(t, got), lines(t, want); !bytes.Equal(g, w) {
				t.Fatalf("read back differs:\n got %s\nwant %s", g, w)
			}
			out := got[2].Output.(map[string]any)
			if out["stdout"] != oddOutput["stdout"] || out["big"] != json.Number("9007199254740993") {
				t.Fatalf("output %#v", out)
			}
		})
	}
	// Both stores hold the same bytes: the file's lines are the rows.
	fs := &FileStore{Dir: t.TempDir()}
	record(t, fs, "p", "r1", want)
	file, err := os.ReadFile(filepath.Join(fs.Where("p"), "r1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	url := Server.FreshDB(t)
	record(t, openPG(t, url), "p", "r1", want)
	var rows []byte
	err = sideConn(t, url).QueryRow(ctx, "SELECT string_agg(line || '\\x0a'::bytea, ''::bytea ORDER BY seq) FROM planrun.events").Scan(&rows)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, rows) {
		t.Fatalf("file and rows differ:\nfile %q\nrows %q", file, rows)
	}
}

// oldSchema is planrun.events as an older planrun created it.
const oldSchema = `
CREATE SCHEMA planrun;
CREATE TABLE planrun.runs (plan text NOT NULL, id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (plan, id));
CREATE TABLE planrun.events (seq bigserial PRIMARY KEY, plan text NOT NULL, run_id text NOT NULL, event jsonb NOT NULL,
    FOREIGN KEY (plan, run_id) REFERENCES planrun.runs (plan, id));
CREATE INDEX events_run_idx ON planrun.events (plan, run_id, seq);
CREATE TABLE planrun.locks (plan text PRIMARY KEY, holder jsonb NOT NULL);`

func TestPGUpgradesOldTables(t *testing.T) {
	ctx := context.Background()
	url := Server.FreshDB(t)
	side := sideConn(t, url)
	if _, err := side.Exec(ctx, oldSchema); err != nil {
		t.Fatal(err)
	}
	// A run an older planrun recorded, and left unfinished.
	old := oddRun("p")[:2]
	if _, err := side.Exec(ctx, "INSERT INTO planrun.runs (plan, id) VALUES ('p', 'r1')"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range old {
		raw, _ := json.Marshal(ev)
		if _, err := side.Exec(ctx, "INSERT INTO planrun.events (plan, run_id, event) VALUES ('p', 'r1', $1)", raw); err != nil {
			t.Fatal(err)
		}
	}
	s := openPG(t, url)
	// The resume appends what jsonb could not hold.
	w, err := s.Append(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range oddRun("p")[2:] {
		if err := w.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Events(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := lines(t, got), lines(t, oddRun("p")); !bytes.Equal(g, w) {
		t.Fatalf("read back differs:\n got %s\nwant %s", g, w)
	}
	// An older planrun can still insert, and opening again changes nothing.
	if _, err := side.Exec(ctx, "INSERT INTO planrun.events (plan, run_id, event) VALUES ('p', 'r1', '{\"type\":\"step_started\",\"time\":\"2026-01-02T03:04:05Z\",\"step\":\"step.y\"}')"); err != nil {
		t.Fatal(err)
	}
	openPG(t, url)
	if got, err := s.Events(ctx, "p", "r1"); err != nil || len(got) != 5 {
		t.Fatalf("%d events, %v", len(got), err)
	}
}

func TestPGWriteIsBounded(t *testing.T) {
	ctx := context.Background()
	url := Server.FreshDB(t)
	s := openPG(t, url)
	s.Timeout = 500 * time.Millisecond
	w, err := s.Create(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(oddRun("p")[0]); err != nil {
		t.Fatal(err)
	}
	// Another session holds the table: the state database stops answering.
	side := sideConn(t, url)
	tx, err := side.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE planrun.events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = w.Record(oddRun("p")[1])
	took := time.Since(start)
	if err == nil {
		t.Fatal("a write to a table locked by another session succeeded")
	}
	if took > 3*time.Second {
		t.Fatalf("the write took %s, bound %s", took, s.Timeout)
	}
	var we *WriteError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "the run record could not be written") ||
		!strings.Contains(err.Error(), "did not answer within 500ms") {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestPGLockLoss(t *testing.T) {
	ctx := context.Background()
	url := Server.FreshDB(t)
	s := openPG(t, url)
	s.LockCheck = 100 * time.Millisecond
	lease, _, err := s.Lock(ctx, "p", Me(""))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	select {
	case <-lease.Lost():
		t.Fatalf("lost a lock nobody touched: %v", lease.Err())
	case <-time.After(300 * time.Millisecond):
	}
	if _, _, err := s.Lock(ctx, "p", Me("")); !IsLocked(err) {
		t.Fatalf("second lock: %v", err)
	}
	side := sideConn(t, url)
	var n int
	if err := side.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d lock sessions: %v", n, err)
	}
	start := time.Now()
	select {
	case <-lease.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the loss was not signalled within 5s")
	}
	t.Logf("loss signalled after %s", time.Since(start))
	var lost *LockLostError
	if !errors.As(lease.Err(), &lost) || !strings.Contains(lost.Error(), "lost the lock on the state database") {
		t.Fatalf("lease error: %v", lease.Err())
	}
	next, stale, err := s.Lock(ctx, "p", Me("next"))
	if err != nil {
		t.Fatalf("the lock could not be taken after the loss: %v", err)
	}
	if stale == nil {
		t.Fatal("the lost holder's row was not reported stale")
	}
	// The lost lease's release must not delete the next holder's row.
	if err := lease.Release(); err != nil {
		t.Fatal(err)
	}
	var holder string
	if err := side.QueryRow(ctx, "SELECT holder->>'run' FROM planrun.locks WHERE plan = 'p'").Scan(&holder); err != nil || holder != "next" {
		t.Fatalf("holder row %q: %v", holder, err)
	}
	if err := next.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next.Lost():
		t.Fatal("a released lease reported a loss")
	default:
	}
}

// TestPlansHaveTheirOwnLocks: "a b" and "a_b" were one directory.
func TestPlansHaveTheirOwnLocks(t *testing.T) {
	ctx := context.Background()
	names := []string{"a b", "a_b", "a/b", "", "plan", ".", "schema", strings.Repeat("x", 300), strings.Repeat("x", 301)}
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			for _, name := range names {
				lease, _, err := s.Lock(ctx, name, Me(name))
				if err != nil {
					t.Fatalf("lock %q while the others are held: %v", name, err)
				}
				defer lease.Release()
				record(t, s, name, "r-"+hex.EncodeToString([]byte(name))[:min(8, 2*len(name))], oddRun(name)[:1])
			}
			// Opening a store takes the schema lock: a plan named "schema" must not block it.
			if pg, ok := s.(*PGStore); ok {
				openPG(t, pg.url)
			}
			for _, name := range names {
				runs, err := s.Runs(ctx, name)
				if err != nil || len(runs) != 1 || runs[0].Plan != name {
					t.Fatalf("runs of %q: %+v %v", name, runs, err)
				}
			}
		})
	}
	seen := map[string]string{}
	for _, name := range append(names, "a\x00b", "a@b", "a_b@"+hex.EncodeToString(make([]byte, 8))) {
		d := dirName(name)
		if other, dup := seen[d]; dup {
			t.Fatalf("%q and %q share directory %s", name, other, d)
		}
		seen[d] = name
		if len(d) > 200 || d != safeName(d) && !strings.Contains(d, "@") {
			t.Fatalf("directory name %q of %q", d, name)
		}
	}
}

// TestFileStoreReadsOlderDirectories: records an older planrun kept under
// the shared safe name are read, and moved to the plan's own directory
// when the plan is next locked; each plan takes only its own runs.
func TestFileStoreReadsOlderDirectories(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	old := filepath.Join(s.Dir, "a_b", "runs")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{"a b": "r1", "a_b": "r2", "a.b": "r3"} {
		if err := os.WriteFile(filepath.Join(old, id+".jsonl"), lines(t, oddRun(name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(s.Dir, "a_b", "lock"), nil, 0o644)
	check := func(plan string, want ...string) {
		t.Helper()
		runs, err := s.Runs(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("runs of %q: %v, want %v", plan, got, want)
		}
	}
	check("a b", "r1")
	check("a_b", "r2")
	check("a.b") // "a.b" is a safe name: its directory never changed
	if evs, err := s.Events(ctx, "a b", "r1"); err != nil || len(evs) != 4 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	// While an older planrun holds the old lock, the move waits for it.
	oldLock, err := flock("a_b", filepath.Join(s.Dir, "a_b", "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Lock(ctx, "a b", Me("")); !IsLocked(err) {
		t.Fatalf("lock while an older planrun holds the old one: %v", err)
	}
	oldLock.Close()
	lease, _, err := s.Lock(ctx, "a b", Me(""))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if _, err := os.Stat(filepath.Join(s.Where("a b"), "r1.jsonl")); err != nil {
		t.Fatalf("not moved: %v", err)
	}
	w, err := s.Append(ctx, "a b", "r1")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	check("a b", "r1")
	check("a_b", "r2")
}

func TestFingerprintKey(t *testing.T) {
	ctx := context.Background()
	keys := map[string][]byte{}
	for kind, s := range stores(t) {
		t.Run(kind, func(t *testing.T) {
			k1, err := s.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(k1) != 32 || !bytes.Equal(k1, k2) || bytes.Equal(k1, make([]byte, 32)) {
				t.Fatalf("keys %x %x", k1, k2)
			}
			keys[kind] = k1
			switch s := s.(type) {
			case *FileStore:
				fi, err := os.Stat(filepath.Join(s.Dir, "fingerprint.key"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("key file: %v %v", fi.Mode(), err)
				}
				// Another process sees the same key.
				if k3, err := (&FileStore{Dir: s.Dir}).FingerprintKey(ctx); err != nil || !bytes.Equal(k1, k3) {
					t.Fatalf("%x %v", k3, err)
				}
			case *PGStore:
				if k3, err := openPG(t, s.url).FingerprintKey(ctx); err != nil || !bytes.Equal(k1, k3) {
					t.Fatalf("%x %v", k3, err)
				}
			}
		})
	}
	if bytes.Equal(keys["file"], keys["pg"]) {
		t.Fatal("two stores share a key")
	}
}
