package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/plan"
)

// The report keeps every attempt of a step — a retry's error, the failure
// that ended the first apply, the resumed success — and a copy cut short
// shows its rate as that of the part it did.
func TestReportKeepsEveryAttempt(t *testing.T) {
	p := &plan.Plan{Name: "shop", Path: "plan.hcl"}
	evs := []event.Event{
		{Type: event.RunStarted, Time: t0, Plan: "shop"},
		{Type: event.StepStarted, Time: t0, Step: "step.load", Uses: "copy"},
		{Type: event.StepRetrying, Time: t0, Step: "step.load", Uses: "copy", Attempt: 1, Error: "connection reset by peer"},
		{Type: event.StepFinished, Time: t0, Step: "step.load", Uses: "copy", Status: event.StatusFailed, Attempt: 2, Seconds: 3,
			Error: "copy: target full", Output: map[string]any{"rows": 10, "bytes": 1 << 20, "bytes_per_second": 1e6, "tables": []any{}, "seconds": 1}},
		{Type: event.RunFinished, Time: t0, Status: event.StatusFailed, Error: "copy: target full"},
		{Type: event.RunStarted, Time: t0, Plan: "shop"},
		{Type: event.StepStarted, Time: t0, Step: "step.load", Uses: "copy"},
		{Type: event.StepFinished, Time: t0, Step: "step.load", Uses: "copy", Status: event.StatusSucceeded, Attempt: 1, Seconds: 5,
			Output: map[string]any{"rows": 20, "bytes": 2 << 20, "bytes_per_second": 2e6, "tables": []any{}, "seconds": 5}},
		{Type: event.RunFinished, Time: t0, Status: event.StatusSucceeded},
	}
	doc := Build(p, Now{}, journal.Replay("r1", evs), event.StatusSucceeded, evs)
	h := doc.Steps[0].History
	if len(h) != 3 || h[0].Error != "connection reset by peer" || h[1].Status != "failed" || h[1].Segment != 1 || h[2].Status != "succeeded" || h[2].Segment != 2 {
		t.Fatalf("history %+v", h)
	}
	var md bytes.Buffer
	WriteMarkdown(&md, doc)
	for _, want := range []string{"run segment 1, attempt 1: ", "connection reset by peer", "run segment 1, attempt 2: ", "target full", "run segment 2, attempt 1: "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md.String())
		}
	}
	// The first apply's rate, had it been the last word, is of a part.
	failed := Build(p, Now{}, journal.Replay("r0", evs[:5]), event.StatusFailed, evs[:5])
	for _, f := range failed.Steps[0].Summary {
		if f.Name == "bytes_per_second" && !strings.Contains(f.text, "of the part done before it stopped") {
			t.Errorf("an interrupted copy's rate: %q", f.text)
		}
	}
}
