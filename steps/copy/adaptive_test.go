package copy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// splitEverything probes every table of more than a few pages on its
// first 4 pages, and splits the rest into chunks of a page or more.
var splitEverything = adaptiveTuning{minBytes: 1, probePages: 4, linkRate: 1e15, chunksPerJob: 4, minChunk: 1}

func adaptiveArgs(src, dst string) *CopyArgs {
	a := copyArgs(src, dst)
	a.SplitBytes = "" // the default: every table of the test is copied whole as planned
	return a
}

// A table found link-bound after its first pages is split mid-copy: the
// probe's pages are committed, the rest goes in new chunks, and every row
// arrives exactly once (row checksums and n_tup_ins on the target).
func TestCopyAdaptiveSplitCopiesEveryRowOnce(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var probed atomic.Int32
	h := &copyHooks{adaptive: &splitEverything, linkBound: func(p probeResult) bool {
		probed.Add(1)
		return p.bytes > 0
	}}
	out, err := runCopyHooked(t, ctx, adaptiveArgs(src, dst), t.TempDir(), h)
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)
	if probed.Load() == 0 {
		t.Fatal("no table was probed")
	}
	var big CopyTable
	for _, tb := range out.Tables {
		if tb.Schema+"."+tb.Name == "public.big" {
			big = tb
		}
	}
	if big.Rows != 40000 || big.Chunks < 4 || !strings.HasPrefix(big.Split, "link-bound") || big.Probe != "split" || big.StreamBytesPerSecond <= 0 {
		t.Fatalf("public.big: %+v; want 40000 rows, split after its probe", big)
	}
	if got := copyInserted(t, dst, []string{"public.big"}, map[string]int64{"public.big": 40000}); got["public.big"] != 40000 {
		t.Errorf("public.big: %d rows inserted for 40000", got["public.big"])
	}
}

// Not link-bound, a probed table goes on in the same transaction and
// stays in one chunk, loaded frozen.
func TestCopyAdaptiveKeepsWholeWhenNotLinkBound(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &copyHooks{adaptive: &splitEverything, linkBound: func(probeResult) bool { return false }}
	out, err := runCopyHooked(t, ctx, adaptiveArgs(src, dst), t.TempDir(), h)
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)
	for _, tb := range out.Tables {
		if tb.Schema+"."+tb.Name == "public.big" && (tb.Chunks != 1 || !strings.HasPrefix(tb.Split, "kept whole")) {
			t.Errorf("public.big: %+v; want one chunk, kept whole", tb)
		}
	}
}

// A copy killed after a table was split mid-way (its probe and two of its
// new chunks committed) resumes: the table is emptied and copied again,
// and ends with every row exactly once.
func TestCopyResumesAfterAdaptiveSplit(t *testing.T) {
	t.Parallel()
	src, dst := copySource(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var chunks atomic.Int32
	run1, stop := context.WithCancel(ctx)
	h := &copyHooks{
		adaptive:  &splitEverything,
		linkBound: func(probeResult) bool { return true },
		afterChunk: func(table string, _ bool) {
			if table == "public.big" && chunks.Add(1) == 3 {
				stop()
			}
		},
	}
	if _, err := runCopyHooked(t, run1, adaptiveArgs(src, dst), state, h); err == nil {
		t.Fatal("the copy was not interrupted")
	}
	stop()
	raw, err := os.ReadFile(filepath.Join(state, copyStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var s copyState
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if _, done := s.Tables["public.big"]; done {
		t.Fatalf("public.big recorded as done after 3 of its chunks: %s", raw)
	}

	// Run 2, split again, finishes.
	h2 := &copyHooks{adaptive: &splitEverything, linkBound: func(probeResult) bool { return true }}
	out, err := runCopyHooked(t, ctx, adaptiveArgs(src, dst), state, h2)
	if err != nil {
		t.Fatal(err)
	}
	copyAssertSame(t, src, dst)
	if !out.Resumed {
		t.Error("output.resumed is false")
	}
	got := copyInserted(t, dst, []string{"public.big"}, map[string]int64{"public.big": 40001})
	if got["public.big"] <= 40000 {
		t.Errorf("public.big: %d rows inserted; the first run inserted some too, so more than 40000 were expected", got["public.big"])
	}
	copyAssertInsertsWork(t, src, dst)
}
