package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/plan/yamlhcl"
)

type applyFlags struct {
	vf          varFlags
	sf          stateFlags
	autoApprove bool
	parallelism int
	targets     multiFlag
	json        bool
	noRollback  bool
	restart     bool
	timeout     time.Duration
}

func runApply(c *CLI, args []string) int {
	fs := c.newFlags("apply", "[flags] PLAN")
	var af applyFlags
	af.vf.register(fs)
	af.sf.register(fs)
	fs.BoolVar(&af.autoApprove, "auto-approve", false, "run without asking for confirmation, and pass approve gates")
	fs.IntVar(&af.parallelism, "parallelism", 0, "run at most N steps at once (default: number of CPUs, at most 8)")
	fs.Var(&af.targets, "target", "run only this step and what it depends on (repeatable)")
	fs.BoolVar(&af.json, "json", false, "print one JSON event per line instead of text")
	fs.BoolVar(&af.noRollback, "no-rollback", false, "on failure or interruption, do not run rollback hooks")
	fs.BoolVar(&af.restart, "restart", false, "start a fresh run instead of resuming the last unfinished one")
	fs.DurationVar(&af.timeout, "timeout", 0, "cancel the run after this long (then roll back), such as 2h")
	p, _, code, ok := c.parsePlan(fs, args, &af.vf, ExitUsage)
	if !ok {
		return code
	}
	sel, ok := c.selectTargets(p, af.targets)
	if !ok {
		return ExitUsage
	}
	if !af.autoApprove && !c.isTerminal() {
		fmt.Fprintln(c.stderr, "planrun apply: standard input is not a terminal, so there is no one to confirm. Review the run with 'planrun plan', then apply with --auto-approve.")
		return ExitUsage
	}
	store, ok := c.openStore(c.ctx, p, af.sf)
	if !ok {
		return ExitFailed
	}
	defer store.Close()
	lease, release, ok := c.lock(store, p)
	if !ok {
		return ExitLocked
	}
	defer release()

	fps, ok := c.storeFingerprints(store, p)
	if !ok {
		return ExitFailed
	}
	resume, code, ok := c.resumePoint(store, p, sel, fps, af.restart)
	if !ok {
		return code
	}
	if !af.autoApprove {
		writePlan(c.stdout, p, sel, nil, nil)
		if resume != nil {
			fmt.Fprintf(c.stdout, "\nResuming run %s: %s completed earlier will be skipped.\n", resume.id, plural.Of(len(resume.reused), "step"))
		}
		if !c.confirm("\nApply this plan? Only 'yes' is accepted: ") {
			fmt.Fprintln(c.stdout, "Apply cancelled.")
			return ExitFailed
		}
	}
	return c.execute(p, sel, af, store, lease, resume, fps)
}

// lock takes the plan's lock, or says who holds it.
func (c *CLI) lock(store journal.Store, p *plan.Plan) (*journal.Lease, func(), bool) {
	lease, stale, err := store.Lock(c.ctx, p.Name, journal.Me(""))
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return nil, nil, false
	}
	if stale != nil {
		fmt.Fprintf(c.stderr, "planrun: took over the lock left by %s, which is gone.\n", stale)
	}
	return lease, func() {
		if err := lease.Release(); err != nil {
			fmt.Fprintf(c.stderr, "planrun: releasing the lock: %v\n", err)
		}
	}, true
}

// stopOnLoss cancels ctx, with the lease's error as the cause, when the
// lock is lost: the engine then stops as on Ctrl-C (running steps are
// cancelled, rollbacks run as configured), since another process may now
// take the lock. stop ends the watch and waits for it.
func stopOnLoss(lease *journal.Lease, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-lease.Lost():
			cancel(lease.Err())
		case <-done:
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// resumption is an earlier run that this apply continues.
type resumption struct {
	id      string
	reused  map[string]any // outputs of the steps that completed, by address
	earlier []string       // the steps whose work stands, newest first: the order to undo them in
}

// resumePoint decides whether apply continues the last run: it does when
// that run left completed work standing (it crashed, failed or was
// interrupted without rolling everything back). A changed plan is refused,
// and a plan whose every step already completed has nothing to do.
func (c *CLI) resumePoint(store journal.Store, p *plan.Plan, sel func(*plan.Step) bool, fps map[string]string, restart bool) (*resumption, int, bool) {
	if restart {
		return nil, 0, true
	}
	last, err := latestRun(c.ctx, store, p)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return nil, ExitFailed, false
	}
	if last != nil {
		c.warnTorn(last.Torn)
	}
	// Continue the last run while any of its work stands — a completed
	// step, or one that failed, was cancelled or was running when the
	// process died, and was not rolled back — so that a step can pick up
	// its own partial state (copy) under the same run.
	if last == nil || last.Status == event.StatusRolledBack || len(last.RollbackOrder()) == 0 {
		return nil, 0, true
	}
	standing := last.Reusable()
	reused := map[string]any{}
	waves, _ := p.Graph.Waves()
	for _, wave := range waves {
		for _, addr := range wave {
			out, ok := standing[addr]
			st := p.Step(addr)
			if !ok || st.Type == nil || !allReused(st.Deps, reused) {
				// A step whose dependency runs again must run again too.
				continue
			}
			norm, err := engine.Normalize(out, plan.OutputShape(st.Type.Output()))
			if err != nil {
				fmt.Fprintf(c.stderr, "planrun: run %s: output of %s: %v\n", last.ID, addr, err)
				return nil, ExitFailed, false
			}
			reused[addr] = norm
		}
	}
	if changes := standingChanges(p, last, asRecorded(p, last.Fingerprints, fps)); len(changes) > 0 {
		fmt.Fprintf(c.stderr, "planrun: the plan changed since run %s (%s): %s.\n", last.ID, last.Status, strings.Join(changes, ", "))
		fmt.Fprintln(c.stderr, "Continuing it would mix two versions of the plan. Apply the plan as it was to resume, or start a fresh run with --restart.")
		return nil, ExitUsage, false
	}
	pending := 0
	for _, st := range p.Steps {
		if _, done := reused[st.Addr]; !done && (sel == nil || sel(st)) {
			pending++
		}
	}
	if pending == 0 {
		fmt.Fprintf(c.stdout, "Nothing to do: every step completed in run %s. Use --restart to run the plan again.\n", last.ID)
		return nil, ExitOK, false
	}
	return &resumption{id: last.ID, reused: reused, earlier: last.RollbackOrder()}, 0, true
}

// standingChanges lists the plan's changes that matter to a resume: to
// steps whose work stands in the last run. A step that never ran, or was
// refused before it changed anything (a wrong URL corrected since), runs
// again as it is now. A changed step with sensitive arguments says so,
// without them.
func standingChanges(p *plan.Plan, last *journal.Run, current map[string]string) []string {
	relevant := map[string]string{}
	for addr, fp := range current {
		if ranNothing(last.Steps[addr]) {
			if old, ok := last.Fingerprints[addr]; ok {
				fp = old
			} else {
				continue // added since: it runs in the resumed run
			}
		}
		relevant[addr] = fp
	}
	recorded := map[string]string{}
	for addr, fp := range last.Fingerprints {
		if _, here := current[addr]; here || !ranNothing(last.Steps[addr]) {
			recorded[addr] = fp // a removed step whose work stands is a change
		}
	}
	changes := journal.Changes(recorded, relevant)
	for i, c := range changes {
		addr, _, _ := strings.Cut(c, " ")
		if st := p.Step(addr); st != nil && hasSensitiveArg(st) {
			changes[i] += " (its arguments include sensitive values, not shown: one of them may be what changed)"
		}
	}
	return changes
}

// ranNothing says whether a step left no work in a run: it never ran, was
// skipped, or was refused before it changed anything.
func ranNothing(s *journal.StepState) bool {
	return s == nil || s.Status == event.StatusNotRun || s.Status == event.StatusSkipped || s.Status == event.StatusFailed && s.Unchanged
}

func hasSensitiveArg(st *plan.Step) bool {
	for _, args := range [][]plan.Arg{st.Args, rollbackArgs(st)} {
		for _, a := range args {
			if a.Value.ContainsMarked() {
				return true
			}
		}
	}
	return false
}

func rollbackArgs(st *plan.Step) []plan.Arg {
	if st.Rollback == nil {
		return nil
	}
	return st.Rollback.Args
}

func allReused(deps []string, reused map[string]any) bool {
	for _, d := range deps {
		if _, ok := reused[d]; !ok {
			return false
		}
	}
	return true
}

// execute runs the engine with the journal and a renderer attached.
func (c *CLI) execute(p *plan.Plan, sel func(*plan.Step) bool, af applyFlags, store journal.Store, lease *journal.Lease, resume *resumption, fps map[string]string) int {
	ctx := c.ctx
	if af.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, af.timeout, fmt.Errorf("--timeout %s reached", af.timeout))
		defer cancel()
	}
	// The run also stops when its lock is lost or its record cannot be
	// written: it must neither overlap another apply nor go on unrecorded.
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	defer stopOnLoss(lease, stopRun)()
	rollbackCtx, stopRollbacks := c.secondInterrupt(ctx)
	defer stopRollbacks()

	red := redact.New(p.Secrets()...)
	var rec journal.RunWriter
	var err error
	runID := newRunID()
	var reused map[string]any
	var earlier []string
	if resume != nil {
		runID, reused, earlier = resume.id, resume.reused, resume.earlier
		rec, err = store.Append(ctx, p.Name, runID)
	} else {
		rec, err = store.Create(ctx, p.Name, runID)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun apply: %s\n", red.String(err.Error()))
		return ExitFailed
	}
	defer rec.Close()

	var render func(event.Event)
	if af.json {
		render = jsonRenderer(c.stdout)
	} else {
		render = textRenderer(c.stdout, "Applying")
	}
	var journalErr error
	// Progress is shown live but recorded only now and then: all of it
	// would swamp the journal; samples draw the report's charts.
	progress := newProgressSampler(progressEvery)
	events := func(ev event.Event) {
		if ev.Type == event.StepStarted {
			// Before each step, not only at the lease's next check: the
			// step then starts cancelled rather than beside another apply.
			if err := lease.Check(); err != nil {
				stopRun(err)
			}
		}
		for _, kept := range progress.keep(ev) {
			if err := rec.Record(kept); err != nil && journalErr == nil {
				// Events come one at a time (the engine serialises them).
				journalErr = err
				fmt.Fprintf(c.stderr, "planrun: %s; stopping the run\n", red.String(err.Error()))
				stopRun(fmt.Errorf("the run record could not be written: %w", err))
			}
		}
		render(ev)
	}
	res := engine.Run(ctx, p, engine.Options{
		Registry:        c.registry,
		RunID:           runID,
		Parallelism:     af.parallelism,
		Select:          sel,
		AutoApprove:     af.autoApprove,
		Prompt:          c.prompter(),
		Events:          events,
		Redactor:        red,
		NoRollback:      af.noRollback,
		RollbackContext: rollbackCtx,
		Reused:          reused,
		Earlier:         earlier,
		Resumed:         resume != nil,
		Fingerprints:    fps,
		By:              thisRunner(),
		Vars:            recordedVars(p, red),
		StateDir: func(addr string) string {
			return filepath.Join(p.Dir, ".planrun", "state", runID, addr)
		},
	})
	record := "Record: " + relPath(store.Where(p.Name))
	var gone *journal.RecordGoneError
	if errors.As(rec.Check(), &gone) {
		record = fmt.Sprintf("The run record %s was removed during the run.", relPath(gone.Path))
	}
	if !af.json {
		writeSummary(c.stdout, p, res, sel)
		fmt.Fprintf(c.stdout, "\nRun %s %s in %s. %s\n", runID, res.Status, report.FormatDuration(res.Finished.Sub(res.Started)), record)
	} else if gone != nil {
		fmt.Fprintf(c.stderr, "planrun: %s\n", red.String(gone.Error()))
	}
	if res.Err != nil {
		fmt.Fprintf(c.stderr, "\nError: %s\n", red.String(res.Err.Error()))
	}
	if lost := lease.Err(); lost != nil && errors.Is(context.Cause(ctx), lost) {
		// The steps' errors only say they were cancelled: say why.
		fmt.Fprintf(c.stderr, "planrun: the run was stopped: %s\n", red.String(lost.Error()))
	}
	if journalErr != nil && !res.RollbackFailed {
		return ExitFailed // not "interrupted": nobody asked it to stop
	}
	return exitCode(res)
}

func exitCode(res *engine.Result) int {
	switch {
	case res.Status == event.StatusInterrupted:
		return ExitInterrupted
	case res.RollbackFailed:
		return ExitRollback
	case res.Status == event.StatusFailed:
		return ExitFailed
	}
	return ExitOK
}

// relPath shortens a path for messages when it is below the working directory.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// secondInterrupt returns a context for rollbacks that is cancelled by a
// second SIGINT/SIGTERM (the first one cancels the run itself, via ctx).
func (c *CLI) secondInterrupt(ctx context.Context) (context.Context, func()) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			select {
			case <-sigs:
				n++
				if n >= 2 {
					cancel()
					return
				}
			case <-done:
				return
			}
		}
	}()
	return rctx, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel()
	}
}

// confirm asks a yes/no question on the terminal.
func (c *CLI) confirm(question string) bool {
	fmt.Fprint(c.stdout, question)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return strings.TrimSpace(line) == "yes"
}

// prompter lets approve steps ask on the terminal, one question at a time;
// nil when there is no terminal.
func (c *CLI) prompter() func(ctx context.Context, question string) (string, error) {
	if !c.isTerminal() {
		return nil
	}
	var mu sync.Mutex
	reader := bufio.NewReader(c.stdin)
	type answer struct {
		line string
		err  error
	}
	// A terminal read cannot be interrupted. When a question is cancelled,
	// its read stays pending and answers the next question, so that no typed
	// line is lost; it ends with the next line or when stdin closes.
	var pending chan answer
	return func(ctx context.Context, question string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(c.stdout, question)
		if pending == nil {
			pending = make(chan answer, 1)
			go func(ch chan<- answer) {
				line, err := reader.ReadString('\n')
				ch <- answer{line, err}
			}(pending)
		}
		select {
		case a := <-pending:
			pending = nil
			return strings.TrimSpace(a.line), a.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// selectTargets turns --target flags into a selection: each target and
// everything it depends on.
func (c *CLI) selectTargets(p *plan.Plan, targets []string) (func(*plan.Step) bool, bool) {
	if len(targets) == 0 {
		return nil, true
	}
	keep := map[string]bool{}
	for _, t := range targets {
		addr := t
		if !strings.Contains(t, ".") {
			if p.Step("step."+t) != nil {
				addr = "step." + t
			} else {
				addr = "check." + t
			}
		}
		if p.Step(addr) == nil {
			var all []string
			for _, st := range p.Steps {
				all = append(all, st.Addr)
			}
			msg := fmt.Sprintf("planrun: --target %s: no such step or check", t)
			if s := yamlhcl.Suggest(addr, all); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", s)
			}
			fmt.Fprintln(c.stderr, msg)
			return nil, false
		}
		for a := range p.Graph.Ancestors(addr) {
			keep[a] = true
		}
	}
	return func(st *plan.Step) bool { return keep[st.Addr] }, true
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	// Milliseconds: run ids sort in time order, and two runs started in
	// the same second must not come out in the wrong one.
	return time.Now().UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}
