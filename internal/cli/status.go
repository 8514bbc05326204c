package cli

import (
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
)

// recordFlags are the flags of the commands that read run records.
type recordFlags struct {
	vf varFlags
	sf stateFlags
}

// openRecords loads the plan and opens its journal, for status, history and rollback.
func (c *CLI) openRecords(name, usage string, args []string, extra func(*flag.FlagSet)) (*plan.Plan, journal.Store, int, bool) {
	fs := c.newFlags(name, usage)
	var rf recordFlags
	rf.vf.recordsOnly = name != "rollback" // rollback runs hooks: it needs the values
	rf.vf.register(fs)
	rf.sf.register(fs)
	if extra != nil {
		extra(fs)
	}
	p, _, code, ok := c.parsePlan(fs, args, &rf.vf, ExitUsage)
	if !ok {
		return nil, nil, code, false
	}
	store, ok := c.openStore(c.ctx, p, rf.sf)
	if !ok {
		return nil, nil, ExitFailed, false
	}
	return p, store, 0, true
}

func runStatus(c *CLI, args []string) int {
	p, store, code, ok := c.openRecords("status", "[flags] [PLAN]", args, nil)
	if !ok {
		return code
	}
	defer store.Close()
	last, err := latestRun(c.ctx, store, p)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return ExitFailed
	}
	if last == nil {
		fmt.Fprintf(c.stdout, "Plan %q has not been applied yet.\n", p.Name)
		return ExitOK
	}
	c.warnTorn(last.Torn)
	status := last.Status
	var holder *journal.Holder
	if lease, _, err := store.Lock(c.ctx, p.Name, journal.Me("")); err != nil {
		var le *journal.LockedError
		if errors.As(err, &le) {
			holder = &le.Holder
			status = event.StatusRunning
		}
	} else {
		_ = lease.Release() // only probing whether a live process holds it
	}
	fmt.Fprintf(c.stdout, "Plan %q, run %s: %s\n", p.Name, last.ID, status)
	by := ""
	if last.By != nil {
		by = fmt.Sprintf(" by %s@%s (pid %d)", last.By.User, last.By.Host, last.By.PID)
	}
	fmt.Fprintf(c.stdout, "  started  %s%s\n", last.Started.Local().Format("2006-01-02 15:04:05"), by)
	if !last.Finished.IsZero() {
		fmt.Fprintf(c.stdout, "  finished %s (%s)\n", last.Finished.Local().Format("2006-01-02 15:04:05"), report.FormatDuration(last.Finished.Sub(last.Started)))
	}
	if holder != nil {
		fmt.Fprintf(c.stdout, "  applying: %s\n", holder)
	} else if status == event.StatusUnfinished {
		fmt.Fprintln(c.stdout, "  the process that ran it is gone: 'planrun apply' resumes it, 'planrun rollback' undoes what it did")
	}
	fps, ok := c.storeFingerprints(store, p)
	if !ok {
		return ExitFailed
	}
	if changes := journal.Changes(last.Fingerprints, asRecorded(p, last.Fingerprints, fps)); len(changes) > 0 {
		fmt.Fprintf(c.stdout, "  the plan changed since: %s\n", joinMax(changes, 5))
	}
	fmt.Fprintln(c.stdout)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tTYPE\tSTATUS\tATTEMPTS\tDURATION\tROLLBACK")
	for _, st := range p.Steps {
		s := last.Steps[st.Addr]
		if s == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\n", st.Addr, st.Uses, event.StatusNotRun)
			continue
		}
		dur, attempts, rb := "-", "-", "-"
		if s.Seconds > 0 {
			dur = report.FormatDuration(secs(s.Seconds))
		}
		if s.Attempts > 0 {
			attempts = fmt.Sprint(s.Attempts)
		}
		if s.Rollback != "" {
			rb = string(s.Rollback)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Addr, st.Uses, s.Status, attempts, dur, rb)
	}
	tw.Flush()
	return ExitOK
}

// warnTorn says that a run's record ends in a torn line, when it does.
func (c *CLI) warnTorn(torn *journal.TornError) {
	if torn != nil {
		fmt.Fprintf(c.stderr, "planrun: warning: %v\n", torn)
	}
}

func joinMax(items []string, n int) string {
	if len(items) <= n {
		return fmt.Sprint(items)
	}
	return fmt.Sprintf("%v and %d more", items[:n], len(items)-n)
}

func runHistory(c *CLI, args []string) int {
	p, store, code, ok := c.openRecords("history", "[flags] [PLAN]", args, nil)
	if !ok {
		return code
	}
	defer store.Close()
	runs, err := store.Runs(c.ctx, p.Name)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return ExitFailed
	}
	if len(runs) == 0 {
		fmt.Fprintf(c.stdout, "Plan %q has not been applied yet.\n", p.Name)
		return ExitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATUS\tSTARTED\tFINISHED\tPLAN HASH")
	code = ExitOK
	for _, r := range runs {
		c.warnTorn(r.Torn)
		if r.Damaged != nil {
			// Confined to its run: the others still list.
			fmt.Fprintf(c.stderr, "planrun: %v\n", r.Damaged)
			fmt.Fprintf(tw, "%s\tdamaged\t-\t-\t-\n", r.ID)
			code = ExitFailed
			continue
		}
		status := r.Status
		if status == "" {
			status = event.StatusUnfinished
		}
		finished := r.Finished
		if finished == "" {
			finished = "-"
		}
		hash := r.Hash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, status, r.Started, finished, hash)
	}
	tw.Flush()
	return code
}
