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
