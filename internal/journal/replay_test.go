package journal

import (
	"reflect"
	"testing"

	"github.com/planrun/planrun/internal/event"
)

func TestReplay(t *testing.T) {
	events := []event.Event{
		{Type: event.RunStarted, Plan: "p", Hash: "h", Fingerprints: map[string]string{"step.a": "1", "step.b": "2", "step.c": "3"}},
		{Type: event.StepStarted, Step: "step.a"},
		{Type: event.StepFinished, Step: "step.a", Status: event.StatusSucceeded, Output: map[string]any{"x": 1}},
		{Type: event.StepStarted, Step: "step.b"},
		{Type: event.StepRetrying, Step: "step.b", Attempt: 1},
		{Type: event.StepFinished, Step: "step.b", Status: event.StatusFailed, Attempt: 2},
		{Type: event.StepStarted, Step: "step.c"}, // the process died here
	}
	r := Replay("run1", events)
	if r.Status != event.StatusUnfinished || r.Steps["step.b"].Attempts != 2 {
		t.Fatalf("%+v %+v", r, r.Steps["step.b"])
	}
	if got := r.RollbackOrder(); !reflect.DeepEqual(got, []string{"step.c", "step.b", "step.a"}) {
		t.Fatalf("the step that was running is the newest: %v", got)
	}
	if got := r.Reusable(); len(got) != 1 || got["step.a"] == nil {
		t.Fatalf("only completed work is reused: %v", got)
	}
	events = append(events,
		event.Event{Type: event.RollbackFinished, Step: "step.a", Status: event.StatusRolledBack},
		event.Event{Type: event.RunFinished, Status: event.StatusFailed},
	)
	r = Replay("run1", events)
	if got := r.Reusable(); len(got) != 0 {
		t.Fatalf("rolled back work is not reused: %v", got)
	}
	if got := r.RollbackOrder(); !reflect.DeepEqual(got, []string{"step.c", "step.b"}) {
		t.Fatalf("%v", got)
	}
	if got := Changes(map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1", "b": "3", "c": "4"}); !reflect.DeepEqual(got, []string{"b changed", "c added"}) {
		t.Fatalf("%v", got)
	}
}
