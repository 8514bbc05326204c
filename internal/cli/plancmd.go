package cli

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/report"
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
	took, notes, from := c.rehearsal(store, p)
	sel = c.whatApplyWouldDo(store, p, sel)
	writePlan(c.stdout, p, sel, took, notes)
	if from != "" {
		fmt.Fprintf(c.stdout, "\nTimings from run %s.\n", from)
	}
	return ExitOK
}

// rehearsal returns how long each step took in the newest run that
// succeeded, and what its output says to expect (a copy's rate): a
// rehearsal against a test target tells how long the real run's window
// will be.
func (c *CLI) rehearsal(store journal.Store, p *plan.Plan) (map[string]time.Duration, map[string]string, string) {
	runs, err := store.Runs(c.ctx, p.Name)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: no rehearsal timings: %v\n", err)
		return nil, nil, ""
	}
	for _, info := range runs {
		if info.Status != event.StatusSucceeded {
			continue
		}
		events, err := store.Events(c.ctx, p.Name, info.ID)
		if err != nil {
			return nil, nil, ""
		}
		took, notes := map[string]time.Duration{}, map[string]string{}
		for addr, s := range journal.Replay(info.ID, events).Steps {
			if s.Status == event.StatusSucceeded {
				took[addr] = secs(s.Seconds)
				if note := report.Expectation(s.Uses, s.Output); note != "" {
					notes[addr] = note
				}
			}
		}
		return took, notes, info.ID
	}
	return nil, nil, ""
}

// whatApplyWouldDo says, before the plan is shown, what apply would do with
// the record as it is: start afresh (sel unchanged), resume the last run
// (sel narrowed to what is left, the reused steps named), refuse a changed
// plan, or nothing at all — as Terraform's "No changes" (the plan is still
// shown, with its rehearsal timings, for a run elsewhere).
func (c *CLI) whatApplyWouldDo(store journal.Store, p *plan.Plan, sel func(*plan.Step) bool) func(*plan.Step) bool {
	if runs, err := store.Runs(c.ctx, p.Name); err != nil || len(runs) == 0 {
		return sel
	}
	fps, ok := c.storeFingerprints(store, p)
	if !ok {
		return sel
	}
	// resumePoint is apply's own decision; what it would say goes here.
	var said bytes.Buffer
	quiet := *c
	quiet.stdout, quiet.stderr = &said, &said
	resume, code, ok := quiet.resumePoint(store, p, sel, fps, false)
	switch {
	case !ok && code == ExitOK:
		fmt.Fprintf(c.stdout, "No changes. %s\n", strings.Replace(said.String(), "Nothing to do: ", "apply has nothing to do: ", 1))
		return sel
	case !ok:
		fmt.Fprintf(c.stdout, "Note: apply would refuse to resume as the plan stands:\n%s\n\n", strings.TrimSpace(said.String()))
		return sel
	case resume == nil:
		return sel
	}
	var reused []string
	for _, st := range p.Steps {
		if _, ok := resume.reused[st.Addr]; ok && (sel == nil || sel(st)) {
			reused = append(reused, st.Addr)
		}
	}
	fmt.Fprintf(c.stdout, "apply would resume run %s: %s completed earlier and %s reused (%s); the rest is shown below.\n\n",
		resume.id, plural.Of(len(reused), "step"), plural.Choose(len(reused), "is", "are"), strings.Join(reused, ", "))
	return func(st *plan.Step) bool {
		_, done := resume.reused[st.Addr]
		return !done && (sel == nil || sel(st))
	}
}
