// Package e2etest runs plans the way planrun apply does, for the step
// types' end-to-end tests: written to a file, loaded with the built-in
// types (arguments decoded from HCL or YAML) and run by the engine.
package e2etest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// Apply writes src to a plan file named file in a temp dir, loads it with
// the built-in types and runs it as `planrun apply` would. It returns the
// result and every event (events are what the CLI shows and the journal keeps).
func Apply(t *testing.T, file, src string, opts engine.Options, vars ...string) (*engine.Result, []event.Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Vars: vars, Environ: []string{}})
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []event.Event
	opts.Registry = steps.Builtin()
	if opts.Parallelism == 0 {
		opts.Parallelism = 2
	}
	opts.Events = func(ev event.Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}
	res := engine.Run(ctx, p, opts)
	return res, events
}

// RunPlan runs an HCL plan with the default options.
func RunPlan(t *testing.T, src string, vars ...string) *engine.Result {
	t.Helper()
	res, _ := Apply(t, "plan.hcl", src, engine.Options{}, vars...)
	return res
}

// OutputOf returns a step's recorded output as a map.
func OutputOf(t *testing.T, res *engine.Result, addr string) map[string]any {
	t.Helper()
	sr := res.Steps[addr]
	if sr == nil {
		t.Fatalf("no step %s", addr)
	}
	out, ok := sr.Output.(map[string]any)
	if !ok {
		t.Fatalf("%s: status %s, output %#v, err %v", addr, sr.Status, sr.Output, sr.Err)
	}
	return out
}
