package cli

import (
	"fmt"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/plan"
)

func runPlan(c *CLI, args []string) int {
	fs := c.newFlags("plan", "[flags] PLAN")
	var vf varFlags
	var sf stateFlags
	vf.register(fs)
	sf.register(fs)
	var targets multiFlag
	fs.Var(&targets, "target", "show only this step and what it depends on (repeatable)")
	p, _, code, ok := c.parsePlan(fs, args, &vf, ExitUsage)
	if !ok {
		return code
	}
	sel, ok := c.selectTargets(p, targets)
	if !ok {
		return ExitUsage
	}
	store, ok := c.openStore(c.ctx, p, sf)
	if !ok {
		return ExitFailed
	}
	defer store.Close()
	took, from := c.rehearsal(store, p)
	writePlan(c.stdout, p, sel, took)
	if from != "" {
		fmt.Fprintf(c.stdout, "\nTimings from run %s.\n", from)
	}
	return ExitOK
}

// rehearsal returns how long each step took in the newest run that
// succeeded: a rehearsal against a test target tells how long the real
// run's window will be.
func (c *CLI) rehearsal(store journal.Store, p *plan.Plan) (map[string]time.Duration, string) {
	runs, err := store.Runs(c.ctx, p.Name)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: no rehearsal timings: %v\n", err)
		return nil, ""
	}
	for _, info := range runs {
		if info.Status != event.StatusSucceeded {
			continue
		}
		events, err := store.Events(c.ctx, p.Name, info.ID)
		if err != nil {
			return nil, ""
		}
		took := map[string]time.Duration{}
		for addr, s := range journal.Replay(info.ID, events).Steps {
			if s.Status == event.StatusSucceeded {
				took[addr] = secs(s.Seconds)
			}
		}
		return took, info.ID
	}
	return nil, ""
}
