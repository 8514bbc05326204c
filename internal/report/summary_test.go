package report

import (
	"strings"
	"testing"
)

// TestCompareSummaryHasTableRows: the report shows every table's rows on
// both sides, the differing ones first, and a table one side lacks.
func TestCompareSummaryHasTableRows(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	out := map[string]any{
		"equal":      false,
		"mismatched": []string{"public.orders", "public.gone"},
		"tables": []map[string]any{
			{"schema": "public", "name": "items", "source_rows": n(100), "target_rows": n(100)},
			{"schema": "public", "name": "orders", "source_rows": n(42), "target_rows": n(41)},
			{"schema": "public", "name": "gone", "source_rows": n(7), "target_rows": nil},
		},
	}
	var rows *Fact
	facts := summarizeOutput("compare", out)
	for i := range facts {
		if facts[i].Name == "table_rows" {
			rows = &facts[i]
		}
	}
	if rows == nil {
		t.Fatalf("no table_rows fact in %+v", facts)
	}
	want := "public.orders 42 ≠ 41, public.gone 7 ≠ -, public.items 100"
	if rows.text != want {
		t.Errorf("table_rows text %q, want %q", rows.text, want)
	}
	m, ok := rows.Value.(map[string]map[string]*int64)
	if !ok || *m["public.orders"]["target"] != 41 || m["public.gone"]["target"] != nil {
		t.Errorf("table_rows value %#v", rows.Value)
	}
	if !strings.Contains(rows.text, "public.items") {
		t.Errorf("a matching table is left out: %q", rows.text)
	}
}

// TestCaptureSummary: a cutover's facts say what its check compared and
// what differed, and how long writes were fenced.
func TestCaptureSummary(t *testing.T) {
	out := map[string]any{
		"action": "cutover", "tables": []string{"app.a", "app.b"}, "applied": 12, "lag_rows": 0, "lag_max_seconds": 0.25,
		"verify": "changed", "verified_rows": 40, "differing": []string{"app.a id=1 (changed)"}, "fence_seconds": 1.5,
	}
	got := map[string]string{}
	for _, f := range summarizeOutput("capture", out) {
		got[f.Name] = f.text
	}
	want := map[string]string{"action": "cutover", "tables": "2", "applied": "12", "verify": "changed", "verified_rows": "40",
		"differing": "app.a id=1 (changed)", "fence_seconds": FormatDuration(secs(1.5))}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["output"]; ok {
		t.Errorf("capture fell back to the generic summary: %v", got)
	}
}
