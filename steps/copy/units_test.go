package copy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
)

func TestCopyOptions(t *testing.T) {
	db := &pgkit.Database{Name: "x", URL: "postgres://x"}
	o, err := newCopyOptions(&CopyArgs{Source: db, Target: db})
	if err != nil {
		t.Fatal(err)
	}
	if o.jobs != 4 || o.indexJobs != 4 || o.splitBytes != 1<<30 || !o.largeObjects || !o.sequences || !o.analyze || o.binary != "auto" || o.maintenanceWorkMem != "262144kB" {
		t.Errorf("defaults: %+v", o)
	}
	jobs, empty, mwm := 2, "", "1GB"
	if o, _ = newCopyOptions(&CopyArgs{Source: db, Target: db, Jobs: &jobs, Tables: []string{"a.*"}, MaintenanceWorkMem: &empty}); o.indexJobs != 2 || o.largeObjects || o.maintenanceWorkMem != "" {
		t.Errorf("jobs 2, tables, maintenance_work_mem \"\": %+v", o)
	}
	if o, _ = newCopyOptions(&CopyArgs{Source: db, Target: db, MaintenanceWorkMem: &mwm}); o.maintenanceWorkMem != "1048576kB" {
		t.Errorf("maintenance_work_mem 1GB: %q", o.maintenanceWorkMem)
	}
	zero, bad := 0, "x"
	for name, a := range map[string]*CopyArgs{
		"source and target are both required":   {Target: db},
		"jobs must be at least 1":               {Source: db, Target: db, Jobs: &zero},
		"index_jobs must be at least 1":         {Source: db, Target: db, IndexJobs: &zero},
		"split_bytes: \"1kB\" is less than 1MB": {Source: db, Target: db, SplitBytes: "1kB"},
		"split_bytes: \"big\" is not a size":    {Source: db, Target: db, SplitBytes: "big"},
		"binary is auto, on or off":             {Source: db, Target: db, Binary: "yes"},
		"maintenance_work_mem":                  {Source: db, Target: db, MaintenanceWorkMem: &bad},
		"table pattern \"[\"":                   {Source: db, Target: db, ExcludeTables: []string{"["}},
	} {
		if _, err := newCopyOptions(a); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestCopyKeep(t *testing.T) {
	o := &copyOptions{tables: []string{"app.*", "events"}, excludeTables: []string{"app.sessions"}}
	for _, c := range []struct {
		t    *copyTable
		want bool
	}{
		{&copyTable{schema: "app", name: "orders"}, true},
		{&copyTable{schema: "app", name: "sessions"}, false},
		{&copyTable{schema: "billing", name: "invoices"}, false},
		{&copyTable{schema: "audit", name: "events"}, true},
		{&copyTable{schema: "audit", name: "events_2025h1", rootSchema: "audit", rootName: "events"}, true}, // by its partitioned table
	} {
		if got := o.keep(c.t); got != c.want {
			t.Errorf("keep(%s) = %v", c.t.key(), got)
		}
	}
	if !(&copyOptions{}).keep(&copyTable{schema: "a", name: "b"}) {
		t.Error("no patterns: every table is kept")
	}
}

func TestCopyPlanChunks(t *testing.T) {
	const page = 8192
	big := &copyTable{schema: "s", name: "big", bytes: 1000 * page, columns: []string{"id", "Note"}, binarySafe: true}
	mid := &copyTable{schema: "s", name: "mid", bytes: 300 * page, columns: []string{"id"}}
	small := &copyTable{schema: "s", name: "small", bytes: 10 * page}
	chunks := planChunks([]*copyTable{small, big, mid}, 200*page, 3, true, true, page, adaptiveTuning{})

	// big: 5 chunks of 200 pages would leave workers idle: 6, a multiple of the jobs.
	if big.chunks != 6 || mid.chunks != 2 || small.chunks != 1 {
		t.Fatalf("chunks: big %d, mid %d, small %d", big.chunks, mid.chunks, small.chunks)
	}
	var pages int64 = -1
	var covered int64
	for i, ch := range chunks {
		if i > 0 && ch.estimate > chunks[i-1].estimate {
			t.Errorf("chunk %d (%s) is bigger than the one before: biggest first", i, ch)
		}
		if ch.table != big {
			continue
		}
		covered += ch.estimate
		if ch.index == 0 && ch.from != -1 || ch.index == 5 && ch.to != -1 {
			t.Errorf("%s: the first and last ranges are open: [%d, %d)", ch, ch.from, ch.to)
		}
		if ch.index > 0 && ch.from != int64(ch.index)*166 {
			t.Errorf("%s starts at page %d", ch, ch.from)
		}
		if !ch.binary || ch.freeze {
			t.Errorf("%s: binary %v, freeze %v", ch, ch.binary, ch.freeze)
		}
		pages = max(pages, ch.to)
	}
	if covered != big.bytes {
		t.Errorf("big's chunks cover %d bytes of %d", covered, big.bytes)
	}
	if got := chunks[len(chunks)-1]; got.table != small || !got.freeze || got.binary {
		t.Errorf("last chunk: %s freeze %v binary %v (small is not binary-safe)", got, got.freeze, got.binary)
	}
	for _, ch := range chunks {
		if ch.table == big && ch.index == 2 {
			if got, want := ch.sourceSQL(), `COPY (SELECT "id", "Note" FROM ONLY "s"."big" WHERE ctid >= '(332,0)'::pg_catalog.tid AND ctid < '(498,0)'::pg_catalog.tid) TO STDOUT (FORMAT binary)`; got != want {
				t.Errorf("source SQL:\n%s\nwant\n%s", got, want)
			}
			if got, want := ch.targetSQL(), `COPY "s"."big" ("id", "Note") FROM STDIN (FORMAT binary)`; got != want {
				t.Errorf("target SQL: %s", got)
			}
		}
		if ch.table == small {
			if got, want := ch.sourceSQL(), `COPY "s"."small" TO STDOUT (FORMAT text)`; got != want {
				t.Errorf("source SQL of a table without columns: %s", got)
			}
			if got, want := ch.targetSQL(), `COPY "s"."small" FROM STDIN (FORMAT text, FREEZE)`; got != want {
				t.Errorf("target SQL: %s", got)
			}
		}
	}

	// Before PostgreSQL 14 (no TID range scans), or when binary is off.
	big.binarySafe = true
	for _, ch := range planChunks([]*copyTable{big}, 200*page, 3, false, false, page, adaptiveTuning{}) {
		if big.chunks != 1 || ch.binary || !ch.freeze {
			t.Errorf("cannot split: %d chunks, binary %v", big.chunks, ch.binary)
		}
	}
}

func TestCopyDumpPattern(t *testing.T) {
	if got := pgDumpPattern(`My "Schema"`, "t*.x"); got != `"My ""Schema"""."t*.x"` {
		t.Errorf("pattern: %s", got)
	}
}

func TestCopyParseTOC(t *testing.T) {
	entries := parseTOC(`;
; Archive created at 2026-11-25 07:24:40 UTC
6; 2615 16385 SCHEMA - app postgres
3278; 1259 16408 INDEX app customers_email_lower_key postgres
3280; 2606 16407 CONSTRAINT app customers customers_pkey postgres
3276; 2606 16484 CHECK CONSTRAINT billing invoices invoices_amount_nonnegative postgres
3325; 2606 16445 FK CONSTRAINT app order_items order_items_order_id_fkey postgres
3316; 0 0 INDEX ATTACH audit events_2025h1_action_idx postgres
3492; 0 16546 MATERIALIZED VIEW DATA billing monthly_revenue postgres
`)
	if len(entries) != 7 {
		t.Fatalf("%d entries: %+v", len(entries), entries)
	}
	want := []tocEntry{
		{id: 6},
		{id: 3278, desc: "INDEX", namespace: "app", tag: "customers_email_lower_key"},
		{id: 3280, desc: "CONSTRAINT", namespace: "app", tag: "customers customers_pkey"},
		{id: 3276, desc: "CHECK CONSTRAINT", namespace: "billing", tag: "invoices invoices_amount_nonnegative"},
		{id: 3325, desc: "FK CONSTRAINT", namespace: "app", tag: "order_items order_items_order_id_fkey"},
		{id: 3316, desc: "INDEX ATTACH", namespace: "audit", tag: "events_2025h1_action_idx"},
		{id: 3492, desc: "MATERIALIZED VIEW DATA", namespace: "billing", tag: "monthly_revenue"},
	}
	for i, w := range want {
		e := entries[i]
		if e.id != w.id || e.desc != w.desc || e.namespace != w.namespace || e.tag != w.tag {
			t.Errorf("entry %d: %+v, want %+v", i, e, w)
		}
	}
}

func TestCopyRestoreTimings(t *testing.T) {
	entries := parseTOC(`3278; 1259 16408 INDEX app customers_email_lower_key postgres
3280; 2606 16407 CONSTRAINT app customers customers_pkey postgres
3281; 2606 16407 CONSTRAINT app customer notes customer notes_key postgres
3325; 2606 16445 FK CONSTRAINT app order_items order_items_order_id_fkey postgres`)
	tables := []*copyTable{{schema: "app", name: "customers"}, {schema: "app", name: "customer notes"}}

	// With jobs, the leader's lines, cut into by a worker's.
	r := newRestoreTimings(entries, tables, 2)
	for _, l := range []string{
		"pg_restore: launching item 3278 INDEX customers_email_lower_key",
		"pg_restore: pg_restore: launching item 3280 CONSTRAINT customers customers_pkey",
		`creating INDEX "app.customers_email_lower_key"`,
		"pg_restore: launching item 3281 CONSTRAINT customer notes customer notes_key",
		"pg_restore: finished item 3280 CONSTRAINT customers customers_pkey",
	} {
		r.line(l)
	}
	p := r.progress()
	if p.Total != 4 || p.Done != 1 || len(p.Items) != 2 || p.Items[0].Name != "index app.customers_email_lower_key" {
		t.Errorf("progress: %+v", p)
	}
	r.line("pg_restore: finished item 3278 INDEX customers_email_lower_key")
	r.line("pg_restore: finished item 3281 CONSTRAINT customer notes customer notes_key")
	got := map[string]string{}
	for _, ix := range r.indexes() {
		got[ix.Name] = ix.Kind
	}
	if len(got) != 3 || got["app.customers_email_lower_key"] != "index" || got["app.customers_pkey"] != "constraint" || got["app.customer notes_key"] != "constraint" {
		t.Errorf("indexes: %v", got)
	}

	// With one job: each item ends when the next starts.
	r = newRestoreTimings(entries, tables, 1)
	for _, l := range []string{
		`pg_restore: creating INDEX "app.customers_email_lower_key"`,
		`pg_restore: creating CONSTRAINT "app.customers customers_pkey"`,
		`pg_restore: creating FK CONSTRAINT "app.order_items order_items_order_id_fkey"`,
	} {
		r.line(l)
	}
	if ix := r.indexes(); len(ix) != 2 {
		t.Errorf("one job: %+v", ix)
	}
}

func TestCopyStateSurvivesAndRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	s, work, err := loadCopyState(dir)
	if err != nil || work != dir || s.resumed {
		t.Fatalf("new state: %v %q %v", err, work, s.resumed)
	}
	if err := s.update(func(s *copyState) { s.SchemaStarted, s.SchemaDone = true, true }); err != nil {
		t.Fatal(err)
	}
	s.tableDone(CopyTable{Schema: "app", Name: "orders", Rows: 3})
	barriers := 0
	failing := func(context.Context) error { return errors.New("no barrier") }
	if saved := s.flush(context.Background(), failing); saved != nil || s.flushErr() == nil {
		t.Errorf("a failed barrier saved %v (err %v)", saved, s.flushErr())
	}
	saved := s.flush(context.Background(), func(context.Context) error { barriers++; return nil })
	none := s.flush(context.Background(), func(context.Context) error { barriers++; return nil }) // nothing new: no barrier
	if barriers != 1 || s.flushErr() != nil || len(saved) != 1 || saved[0] != "app.orders" || none != nil {
		t.Errorf("barriers %d, err %v, saved %v then %v", barriers, s.flushErr(), saved, none)
	}
	again, _, err := loadCopyState(dir)
	if err != nil || !again.resumed || !again.SchemaDone || again.Tables["app.orders"].Rows != 3 || !again.Tables["app.orders"].Earlier {
		t.Fatalf("reloaded: %v %+v", err, again)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := os.WriteFile(filepath.Join(dir, copyStateFile), []byte(`{"version": 1, "tables": `), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCopyState(dir); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "--restart") {
		t.Errorf("damaged state: %v", err)
	}
	// Without a state directory nothing is saved, and a work directory is made.
	s, work, err = loadCopyState("")
	if err != nil || work == "" || s.path != "" {
		t.Fatalf("no state dir: %v %q %q", err, work, s.path)
	}
	defer os.RemoveAll(work)
	if err := s.update(func(s *copyState) { s.DataDone = true }); err != nil {
		t.Error(err)
	}
}
