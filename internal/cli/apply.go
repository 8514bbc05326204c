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
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/plan/yamlhcl"
)

type applyFlags struct {
	vf          varFlags
	autoApprove bool
	parallelism int
	targets     multiFlag
	json        bool
	noRollback  bool
	timeout     time.Duration
}

func runApply(c *CLI, args []string) int {
	fs := c.newFlags("apply", "[flags] PLAN")
	var af applyFlags
	af.vf.register(fs)
	fs.BoolVar(&af.autoApprove, "auto-approve", false, "run without asking for confirmation, and pass approve gates")
	fs.IntVar(&af.parallelism, "parallelism", 0, "run at most N steps at once (default: number of CPUs, at most 8)")
	fs.Var(&af.targets, "target", "run only this step and what it depends on (repeatable)")
	fs.BoolVar(&af.json, "json", false, "print one JSON event per line instead of text")
	fs.BoolVar(&af.noRollback, "no-rollback", false, "on failure or interruption, do not run rollback hooks")
	fs.DurationVar(&af.timeout, "timeout", 0, "cancel the run after this long (then roll back), such as 2h")
	pos, code, ok := c.parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	path, ok := c.planPath(pos)
	if !ok {
		return ExitUsage
	}
	p, ok := c.load(path, af.vf)
	if !ok {
		return ExitUsage
	}
	sel, ok := c.selectTargets(p, af.targets)
	if !ok {
		return ExitUsage
	}
	if !af.autoApprove {
		if !c.isTerminal() {
			fmt.Fprintln(c.stderr, "planrun apply: standard input is not a terminal, so there is no one to confirm. Review the run with 'planrun plan', then apply with --auto-approve.")
			return ExitUsage
		}
		writePlan(c.stdout, p, sel, nil)
		if !c.confirm("\nApply this plan? Only 'yes' is accepted: ") {
			fmt.Fprintln(c.stdout, "Apply cancelled.")
			return ExitFailed
		}
	}
	return c.execute(p, sel, af)
}

// execute runs the engine with the journal and a renderer attached.
func (c *CLI) execute(p *plan.Plan, sel func(*plan.Step) bool, af applyFlags) int {
	ctx := c.ctx
	if af.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, af.timeout, fmt.Errorf("--timeout %s reached", af.timeout))
		defer cancel()
	}
	rollbackCtx, stopRollbacks := c.secondInterrupt(ctx)
	defer stopRollbacks()

	red := redact.New(p.Secrets()...)
	store := &journal.FileStore{Dir: filepath.Join(p.Dir, ".planrun")}
	runID := newRunID()
	rec, err := store.Create(ctx, p.Name, runID)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun apply: %v\n", err)
		return ExitFailed
	}
	defer rec.Close()

	var render func(engine.Event)
	if af.json {
		render = jsonRenderer(c.stdout)
	} else {
		render = textRenderer(c.stdout)
	}
	var journalErr error
	events := func(ev engine.Event) {
		if err := rec.Record(ev); err != nil && journalErr == nil {
			journalErr = err
			fmt.Fprintf(c.stderr, "planrun: cannot write the run record: %v\n", err)
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
		StateDir: func(addr string) string {
			return filepath.Join(p.Dir, ".planrun", "state", runID, addr)
		},
	})
	if !af.json {
		writeSummary(c.stdout, p, res, sel)
		where, _ := filepath.Rel(mustGetwd(), filepath.Join(store.Dir, p.Name, "runs", runID+".jsonl"))
		fmt.Fprintf(c.stdout, "\nRun %s %s in %s. Record: %s\n", runID, res.Status, fmtDuration(res.Finished.Sub(res.Started)), where)
	}
	if res.Err != nil {
		fmt.Fprintf(c.stderr, "\nError: %s\n", red.String(res.Err.Error()))
	}
	return exitCode(res)
}

func exitCode(res *engine.Result) int {
	switch {
	case res.Status == engine.StatusInterrupted:
		return ExitInterrupted
	case res.RollbackFailed:
		return ExitRollback
	case res.Status == engine.StatusFailed:
		return ExitFailed
	}
	return ExitOK
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
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
	return func(ctx context.Context, question string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(c.stdout, question)
		type answer struct {
			line string
			err  error
		}
		ch := make(chan answer, 1)
		// Reading a terminal cannot be interrupted; the goroutine ends with
		// the next line typed or when stdin closes.
		go func() {
			line, err := reader.ReadString('\n')
			ch <- answer{line, err}
		}()
		select {
		case a := <-ch:
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
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
