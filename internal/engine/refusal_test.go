package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/steps/steptype"
)

const refusalPlan = `
step "a" {
  uses = "record"
  name = "a"
  rollback {
    uses = "record"
    name = "undo a"
  }
}
step "b" {
  uses       = "refuse"
  name       = "b"
  depends_on = [step.a]
  retry {
    attempts = %d
    backoff  = "1ms"
  }
  rollback {
    uses = "record"
    name = "undo b"
  }
}
`

// A step that refused before it changed anything has its rollback
// skipped (and the events say so), the steps before it are rolled back as
// usual, and the record lists nothing of it to undo for planrun rollback.
// A step with one attempt that got further is rolled back even when a
// later attempt refused.
func TestRefusedStepIsNotRolledBack(t *testing.T) {
	for _, c := range []struct {
		name     string
		attempts int
		want     string
	}{
		{"refused", 1, "run a,refuse b,run undo a"},
		{"got further, then refused", 2, "run a,refuse b,refuse b,run undo b,run undo a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := newRecorder()
			var calls atomic.Int32
			reg := rec.types().With(map[string]steptype.Type{
				"refuse": steptype.Def[fakeArgs, fakeOut]{Summary: "fake", Fn: func(ctx context.Context, env *steptype.Env, a *fakeArgs) (*fakeOut, error) {
					rec.add("refuse " + a.Name)
					if calls.Add(1) == 1 && c.attempts > 1 {
						return nil, errors.New("wrote half, then broke")
					}
					return nil, steptype.Refused(errors.New("the target is not empty; nothing was written"))
				}},
			})
			p := load(t, reg, strings.Replace(refusalPlan, "%d", string(rune('0'+c.attempts)), 1))
			res, events := run(t, context.Background(), p, reg, engine.Options{})
			if res.Status != event.StatusFailed {
				t.Fatalf("status %s", res.Status)
			}
			if got := strings.Join(rec.list(), ","); got != c.want {
				t.Fatalf("ran %s, want %s", got, c.want)
			}
			refused := c.attempts == 1
			var skipped bool
			for _, ev := range events {
				if ev.Type == event.RollbackFinished && ev.Step == "step.b" {
					skipped = ev.Status == event.StatusSkipped && strings.Contains(ev.Message, "before it changed anything")
				}
			}
			if skipped != refused {
				t.Errorf("rollback of b skipped: %v, want %v", skipped, refused)
			}
			// What planrun rollback would undo, from the record.
			replayed := journal.Replay("r", events)
			order := strings.Join(replayed.RollbackOrder(), ",")
			if refused && strings.Contains(order, "step.b") {
				t.Errorf("the record still lists b to undo: %s", order)
			}
		})
	}
}
