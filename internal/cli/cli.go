// Package cli is planrun's command line: it parses flags, loads plans, runs
// the engine and renders what happened. It is the only package that prints.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"

	"github.com/planrun/planrun/internal/library"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1   // a step or check failed (rollbacks, if any, succeeded)
	ExitUsage       = 2   // bad flags, an invalid plan, a refused confirmation
	ExitRollback    = 3   // a step failed and a rollback failed too
	ExitLocked      = 4   // another apply holds the plan's lock
	ExitInterrupted = 130 // cancelled by a signal or --timeout
)

// Version is set at build time.
var Version = "dev"

type command struct {
	name    string
	summary string
	run     func(c *CLI, args []string) int
}

// CLI is one invocation's input and output.
type CLI struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// isTerminal reports whether stdin is an interactive terminal; a field so
	// that tests can answer a confirmation.
	isTerminal func() bool
	registry   *steps.Registry
	environ    []string
}

func commands() []command {
	return []command{
		{"validate", "Check a plan: syntax, variables, step arguments, assertions, the DAG", runValidate},
		{"plan", "Show what apply would do, in order, without running anything", runPlan},
		{"apply", "Run a plan", runApply},
		{"check", "Run only the plan's checks (read-only): a pre-flight, or a validation after the fact", runCheck},
		{"status", "Show the last run of a plan: each step's status, attempts and duration", runStatus},
		{"history", "List a plan's runs", runHistory},
		{"report", "Render a recorded run as Markdown, JSON or a self-contained HTML page with a timeline, for a change ticket or a post-mortem", runReport},
		{"rollback", "Run the rollback hooks of the last run's completed steps, newest first", runRollback},
		{"get", "Fetch the plan's git libraries and pin them in planrun.lock.hcl", runGet},
		{"graph", "Print the plan's DAG as DOT or Mermaid", runGraph},
		{"fmt", "Rewrite HCL plans in canonical style", runFmt},
		{"schema", "Print the JSON Schema of plan files, or of a step type's arguments and output", runSchema},
		{"demo", "Run the Heroku → RDS runbook end to end between two throwaway local Postgres servers", runDemo},
		{"version", "Print planrun's version", runVersion},
	}
}

// Run runs planrun with the given arguments (without the program name) and
// returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &CLI{
		ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr,
		isTerminal: func() bool { return isTerminal(stdin) },
		registry:   steps.Builtin(),
		environ:    os.Environ(),
	}
	return c.Main(args)
}

// Main dispatches to a subcommand.
func (c *CLI) Main(args []string) int {
	if len(args) == 2 && args[0] == "help" {
		args = []string{args[1], "-h"} // planrun help CMD: that command's help
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.usage(c.stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(c, nil)
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "planrun: unknown command %q\n\n", args[0])
	c.usage(c.stderr)
	return ExitUsage
}

func (c *CLI) usage(w io.Writer) {
	fmt.Fprintln(w, "planrun runs database migrations described as plan files.")
	fmt.Fprintln(w, "\nUsage: planrun COMMAND [flags] [PLAN]")
	fmt.Fprintln(w, "\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, "\nRun 'planrun COMMAND -h' for a command's flags.")
}

func runVersion(c *CLI, _ []string) int {
	fmt.Fprintf(c.stdout, "planrun %s\n", versionText())
	return ExitOK
}

// versionText is the version set at build time, or the module's, and the
// commit it was built from (go build records it from git).
func versionText() string {
	version := Version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	var commit, when, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", with uncommitted changes"
			}
		}
	}
	if commit == "" {
		return version + " (" + info.GoVersion + ")"
	}
	return fmt.Sprintf("%s (commit %.12s, %s%s; %s)", version, commit, when, dirty, info.GoVersion)
}

// isTerminal reports whether r is an interactive terminal (not /dev/null,
// a pipe or a file).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// varFlags are the flags of every command that loads a plan.
type varFlags struct {
	vars     multiFlag
	varFiles multiFlag
	// recordsOnly: the command only reads run records (status, history,
	// report), so a variable without a value is unknown, not an error.
	recordsOnly bool
}

func (v *varFlags) register(fs *flag.FlagSet) {
	fs.Var(&v.vars, "var", "set a variable: -var name=value (repeatable)")
	fs.Var(&v.varFiles, "var-file", "read variables from a .hcl, .json or .yaml file (repeatable)")
}

// newFlags makes a flag set that reports errors to stderr.
func (c *CLI) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: planrun %s %s\n\nFlags:\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseFlags parses and reports usage errors; ok is false when the command
// should exit with code.
func (c *CLI) parseFlags(fs *flag.FlagSet, args []string, maxPositional int) ([]string, int, bool) {
	if asksHelp(args) {
		fs.SetOutput(c.stdout) // asked for, help is output; after a bad flag it is an error's
	}
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, ExitOK, false
	}
	if err != nil {
		return nil, ExitUsage, false
	}
	if len(pos) > maxPositional {
		fmt.Fprintf(c.stderr, "planrun %s: too many arguments: %s\n", fs.Name(), strings.Join(pos, " "))
		return nil, ExitUsage, false
	}
	return pos, 0, true
}

// asksHelp says whether the arguments ask for help (before any "--").
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// planPath picks the plan: the argument, or the only plan file in the
// working directory.
func (c *CLI) planPath(pos []string) (string, bool) {
	if len(pos) > 0 {
		return pos[0], true
	}
	var found []string
	for _, name := range []string{"plan.hcl", "plan.yaml", "plan.yml"} {
		if _, err := os.Stat(name); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	fmt.Fprintln(c.stderr, "planrun: which plan? Give a plan file (or a directory of .hcl/.yaml files).")
	return "", false
}

// parsePlan parses a command's flags and loads the plan its argument names
// (vf must be registered on fs). invalid is the exit code for a plan that
// does not load.
func (c *CLI) parsePlan(fs *flag.FlagSet, args []string, vf *varFlags, invalid int) (*plan.Plan, string, int, bool) {
	pos, code, ok := c.parseFlags(fs, args, 1)
	if !ok {
		return nil, "", code, false
	}
	path, ok := c.planPath(pos)
	if !ok {
		return nil, "", ExitUsage, false
	}
	p, ok := c.load(path, *vf)
	if !ok {
		return nil, path, c.unlessInterrupted(invalid), false
	}
	return p, path, 0, true
}

// load loads a plan and prints its diagnostics; ok is false on errors.
func (c *CLI) load(path string, vf varFlags) (*plan.Plan, bool) {
	return c.loadWith(path, vf, nil)
}

// loadWith loads a plan with a library resolver; nil means the libraries
// pinned in the plan directory's lock file (planrun get fetches them).
func (c *CLI) loadWith(path string, vf varFlags, libs plan.LibraryResolver) (*plan.Plan, bool) {
	if libs == nil {
		resolver, err := library.NewResolver(planDir(path))
		if err != nil {
			fmt.Fprintf(c.stderr, "planrun: %v\n", err)
			return nil, false
		}
		libs = resolver.Resolve
	}
	p, diags := plan.LoadContext(c.ctx, path, plan.Options{
		Types:        c.registry,
		Vars:         vf.vars,
		VarFiles:     vf.varFiles,
		Environ:      c.environ,
		Libraries:    libs,
		UnsetUnknown: vf.recordsOnly,
	})
	if c.ctx.Err() != nil {
		// The diagnostics so far are incomplete; the signal said stop.
		fmt.Fprintln(c.stderr, "planrun: interrupted")
		return nil, false
	}
	files := map[string]*hcl.File{}
	if p != nil {
		files = p.Files
	}
	var secrets []string
	if p != nil {
		secrets = p.Secrets()
	}
	writeDiagnostics(c.stderr, files, diags, secrets)
	return p, !diags.HasErrors() && p != nil
}

// unlessInterrupted returns code, or ExitInterrupted when a signal (or
// --timeout) stopped the command.
func (c *CLI) unlessInterrupted(code int) int {
	if c.ctx.Err() != nil {
		return ExitInterrupted
	}
	return code
}

// planDir is the directory a plan's relative paths (and lock file) live in.
func planDir(path string) string {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return path
	}
	return filepath.Dir(path)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
