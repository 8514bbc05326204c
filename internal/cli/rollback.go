package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
)

// runRollback runs the rollback hooks of the last run's steps whose work
// still stands, newest first, and records that in the run.
func runRollback(c *CLI, args []string) int {
	var autoApprove, jsonOut bool
	p, store, code, ok := c.openRecords("rollback", "[flags] PLAN", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&autoApprove, "auto-approve", false, "roll back without asking for confirmation")
		fs.BoolVar(&jsonOut, "json", false, "print one JSON event per line instead of text")
	})
	if !ok {
		return code
	}
	defer store.Close()
	if !autoApprove && !c.isTerminal() {
		fmt.Fprintln(c.stderr, "planrun rollback: standard input is not a terminal, so there is no one to confirm. Run it with --auto-approve.")
		return ExitUsage
	}
	lease, release, ok := c.lock(store, p)
	if !ok {
		return ExitLocked
	}
	defer release()
	last, err := latestRun(c.ctx, store, p)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return ExitFailed
	}
	if last == nil {
		fmt.Fprintf(c.stdout, "Nothing to roll back: plan %q has not been applied.\n", p.Name)
		return ExitOK
	}
	c.warnTorn(last.Torn)
	var order, names []string
	outputs := map[string]any{}
	fps, ok := c.storeFingerprints(store, p)
	if !ok {
		return ExitFailed
	}
	var changed []string
	now := asRecorded(p, last.Fingerprints, fps)
	for _, addr := range last.RollbackOrder() {
		st := p.Step(addr)
		if st == nil || st.Rollback == nil {
			continue
		}
		if last.Fingerprints[addr] != now[addr] {
			changed = append(changed, addr)
		}
		norm, err := engine.Normalize(last.Steps[addr].Output, plan.OutputShape(st.Type.Output()))
		if err != nil {
			fmt.Fprintf(c.stderr, "planrun: run %s: output of %s: %v\n", last.ID, addr, err)
			return ExitFailed
		}
		outputs[addr] = norm
		order = append(order, addr)
		names = append(names, fmt.Sprintf("%s (%s)", addr, st.Rollback.Uses))
	}
	if len(order) == 0 {
		fmt.Fprintf(c.stdout, "Nothing to roll back in run %s.\n", last.ID)
		return ExitOK
	}
	if len(changed) > 0 {
		fmt.Fprintf(c.stderr, "planrun: these steps changed since run %s, so their rollback may not fit what ran: %s. Roll back with the plan as it was.\n", last.ID, strings.Join(changed, ", "))
		return ExitUsage
	}
	if !autoApprove {
		fmt.Fprintf(c.stdout, "Run %s (%s). These rollback hooks will run, newest first:\n  %s\n", last.ID, last.Status, strings.Join(names, "\n  "))
		if !c.confirm("\nRoll back? Only 'yes' is accepted: ") {
			fmt.Fprintln(c.stdout, "Rollback cancelled.")
			return ExitFailed
		}
	}
	rec, err := store.Append(c.ctx, p.Name, last.ID)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun rollback: %v\n", err)
		return ExitFailed
	}
	defer rec.Close()
	red := redact.New(p.Secrets()...)
	render := textRenderer(c.stdout, "Rolling back")
	if jsonOut {
		render = jsonRenderer(c.stdout)
	}
	rctx, stop := c.secondInterrupt(c.ctx)
	defer stop()
	// Losing the lock, or the record, stops the rollbacks as a second Ctrl-C would.
	rctx, stopRollbacks := context.WithCancelCause(rctx)
	defer stopRollbacks(nil)
	defer stopOnLoss(lease, stopRollbacks)()
	var journalErr error
	progress := newProgressSampler(progressEvery)
	res := engine.Rollback(c.ctx, p, order, outputs, engine.Options{
		Registry:        c.registry,
		RunID:           last.ID,
		AutoApprove:     autoApprove,
		Prompt:          c.prompter(),
		Redactor:        red,
		By:              thisRunner(),
		Vars:            recordedVars(p, red),
		Fingerprints:    fps,
		RollbackContext: rctx,
		Events: func(ev event.Event) {
			for _, kept := range progress.keep(ev) { // progress now and then, as apply records it
				if err := rec.Record(kept); err != nil && journalErr == nil {
					journalErr = err
					fmt.Fprintf(c.stderr, "planrun: %s; stopping the rollbacks\n", red.String(err.Error()))
					stopRollbacks(fmt.Errorf("the run record could not be written: %w", err))
				}
			}
			render(ev)
		},
	})
	if !jsonOut {
		fmt.Fprintf(c.stdout, "\nRun %s: %s.\n", last.ID, res.Status)
	}
	if lost := lease.Err(); lost != nil && errors.Is(context.Cause(rctx), lost) {
		fmt.Fprintf(c.stderr, "planrun: the rollbacks were stopped: %s\n", red.String(lost.Error()))
	}
	switch {
	case journalErr != nil:
		return ExitFailed // the rollbacks stopped because the record failed
	case res.RollbackInterrupted:
		return ExitInterrupted
	case res.RollbackFailed:
		return ExitRollback
	}
	return ExitOK
}
