package cli

import (
	"fmt"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
)

// runCheck runs only the plan's checks, read-only: as a pre-flight before a
// migration, or a validation after it. Checks that read step outputs get
// them from the last run. It records nothing, so it never disturbs a run to
// be resumed.
func runCheck(c *CLI, args []string) int {
	fs := c.newFlags("check", "[flags] PLAN")
	var vf varFlags
	var sf stateFlags
	vf.register(fs)
	sf.register(fs)
	var targets multiFlag
	fs.Var(&targets, "target", "run only this check (repeatable)")
	jsonOut := fs.Bool("json", false, "print one JSON event per line instead of text")
	parallelism := fs.Int("parallelism", 0, "run at most N checks at once (default: number of CPUs, at most 8)")
	p, path, code, ok := c.parsePlan(fs, args, &vf, ExitUsage)
	if !ok {
		return code
	}
	sel, ok := c.selectTargets(p, targets)
	if !ok {
		return ExitUsage
	}
	onlyChecks := func(st *plan.Step) bool { return st.Kind == plan.KindCheck && (sel == nil || sel(st)) }
	n := 0
	for _, st := range p.Steps {
		if onlyChecks(st) {
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(c.stderr, "planrun check: %s has no checks to run.\n", path)
		return ExitUsage
	}
	store, ok := c.openStore(c.ctx, p, sf)
	if !ok {
		return ExitFailed
	}
	defer store.Close()
	recorded := map[string]any{}
	last, err := latestRun(c.ctx, store, p)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return ExitFailed
	}
	if last != nil {
		for addr, out := range last.Reusable() {
			st := p.Step(addr)
			if st == nil || st.Kind != plan.KindStep || st.Type == nil {
				continue
			}
			norm, err := engine.Normalize(out, plan.OutputShape(st.Type.Output()))
			if err == nil {
				recorded[addr] = norm
			}
		}
	}
	// Without --target, a check that depends on a step this plan has not
	// completed yet is a check for after the migration: skipped, and said.
	var waiting []string
	if sel == nil {
		var unrun func(addr string, seen map[string]bool) string
		unrun = func(addr string, seen map[string]bool) string {
			for _, d := range p.Step(addr).Deps {
				dep := p.Step(d)
				if dep == nil || seen[d] {
					continue
				}
				seen[d] = true
				if _, done := recorded[d]; dep.Kind == plan.KindStep && !done {
					return d
				}
				if dep.Kind == plan.KindCheck {
					if u := unrun(d, seen); u != "" {
						return u
					}
				}
			}
			return ""
		}
		skip := map[string]bool{}
		for _, st := range p.Steps {
			if st.Kind != plan.KindCheck {
				continue
			}
			if u := unrun(st.Addr, map[string]bool{}); u != "" {
				skip[st.Addr] = true
				waiting = append(waiting, fmt.Sprintf("%s: skipped: it depends on %s, which has not completed (name it with --target to run it anyway)", st.Addr, u))
			}
		}
		if len(skip) > 0 {
			all := onlyChecks
			onlyChecks = func(st *plan.Step) bool { return all(st) && !skip[st.Addr] }
			n -= len(skip)
		}
	}
	for _, w := range waiting {
		fmt.Fprintln(c.stdout, w)
	}
	if n == 0 {
		fmt.Fprintf(c.stdout, "No check can run before the steps it depends on: apply the plan first.\n")
		return ExitOK
	}
	red := redact.New(p.Secrets()...)
	render := textRenderer(c.stdout, "Checking")
	if *jsonOut {
		render = jsonRenderer(c.stdout)
	}
	res := engine.Run(c.ctx, p, engine.Options{
		Registry:    c.registry,
		Parallelism: *parallelism,
		Select:      onlyChecks,
		Redactor:    red,
		NoRollback:  true,
		KeepGoing:   true,
		Reused:      recorded,
		Events: func(ev event.Event) {
			if ev.Type == event.StepFinished && ev.Status == event.StatusReused {
				return // a step's recorded output, not a check that ran
			}
			render(ev)
		},
	})
	if !*jsonOut {
		writeSummary(c.stdout, p, res, onlyChecks)
		failed := 0
		for _, st := range p.Steps {
			if onlyChecks(st) && res.Steps[st.Addr].Status != event.StatusSucceeded && res.Steps[st.Addr].Status != event.StatusSkipped {
				failed++
			}
		}
		if failed == 0 {
			fmt.Fprintf(c.stdout, "\nAll %s held.\n", plural.Of(n, "check"))
		} else {
			fmt.Fprintf(c.stdout, "\n%d of %s did not hold.\n", failed, plural.Of(n, "check"))
		}
	}
	if res.Err != nil {
		fmt.Fprintf(c.stderr, "\nError: %s\n", red.String(res.Err.Error()))
	}
	return exitCode(res)
}
