package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps/steptype"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/steps"
)

type noArgs struct {
	Value string `hcl:"value,optional"`
}

type noOut struct {
	Value string `json:"value"`
}

// BenchmarkApply10000NoopSteps measures the engine's own overhead per step:
// scheduling, evaluating arguments (with a reference to an earlier step's
// output), running a step that does nothing, normalising its output,
// checking an assertion and emitting events.
func BenchmarkApply10000NoopSteps(b *testing.B) {
	const n = 10000
	reg := steps.New(map[string]steptype.Type{
		"noop": steptype.Def[noArgs, noOut]{Fn: func(_ context.Context, _ *steptype.Env, a *noArgs) (*noOut, error) {
			return &noOut{Value: a.Value}, nil
		}},
	})
	var src strings.Builder
	for i := range n {
		fmt.Fprintf(&src, "step \"s%d\" {\n  uses = \"noop\"\n", i)
		if i >= 100 {
			// Fan-in from a step 100 back keeps 100 chains running side by side.
			fmt.Fprintf(&src, "  value = step.s%d.output.value\n", i-100)
		} else {
			fmt.Fprintf(&src, "  value = \"v%d\"\n", i)
		}
		fmt.Fprintf(&src, "  assert { that = \"output.value != ''\" }\n}\n")
	}
	p := load(b, reg, src.String())
	events := 0
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		res := engine.Run(context.Background(), p, engine.Options{
			Registry:    reg,
			Parallelism: 16,
			Events:      func(event.Event) { events++ },
		})
		if res.Status != event.StatusSucceeded {
			b.Fatalf("status %s: %v", res.Status, res.Err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/step")
}
