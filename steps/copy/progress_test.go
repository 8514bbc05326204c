package copy

import (
	"testing"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps/steptype"
)

// TestProgressTotalNotShrunkByTinyTables: a tiny table done first (its
// one page mostly empty) must not shrink the estimate of a big table in
// flight to what is streamed so far, which showed 100 % and no time left
// for most of a copy.
func TestProgressTotalNotShrunkByTinyTables(t *testing.T) {
	var got event.Progress
	env := &steptype.Env{Progress: func(p event.Progress) { got = p }}
	tiny := &copyChunk{table: &copyTable{schema: "public", name: "branches", bytes: 8 << 10}, estimate: 8 << 10}
	tiny.streamed.Store(100)
	tiny.finished.Store(true)
	big := &copyChunk{table: &copyTable{schema: "public", name: "accounts", bytes: 100 << 20}, estimate: 100 << 20}
	big.streamed.Store(10 << 20)
	big.inProgress.Store(true)
	p := newCopyProgress(env, []*copyChunk{tiny, big}, tiny.estimate+big.estimate)
	p.report()
	if got.Total < 90<<20 || got.Done != 10<<20+100 || got.ETA <= 0 && got.Rate > 0 {
		t.Fatalf("total %d, done %d, eta %.1f: the estimate collapsed to what is done", got.Total, got.Done, got.ETA)
	}
	if len(got.Items) != 1 || got.Items[0].Total < 90<<20 {
		t.Errorf("the table in flight: %+v", got.Items)
	}

	// Once enough has finished, its measured ratio scales the rest.
	half := &copyChunk{table: &copyTable{schema: "public", name: "history", bytes: 100 << 20}, estimate: 100 << 20}
	half.streamed.Store(50 << 20)
	half.finished.Store(true)
	p = newCopyProgress(env, []*copyChunk{half, big}, half.estimate+big.estimate)
	p.report()
	if want := int64(50<<20 + 50<<20); got.Total != want {
		t.Errorf("total %d, want %d (the rest at the measured 0.5 ratio)", got.Total, want)
	}
}
