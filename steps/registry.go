// Package steps holds the step types: an explicit table of them, one file
// per type. It is the only package that talks to databases.
package steps

import (
	"context"
	"reflect"
	"sort"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
)

// Type is a step type: its arguments, its output, whether it is read-only,
// and how it runs.
type Type interface {
	plan.StepType
	// NewArgs returns a pointer to a zero arguments struct for gohcl to decode into.
	NewArgs() any
	// Run does the work. args is what NewArgs returned, decoded; the result
	// must marshal to JSON (it becomes the step's output).
	Run(ctx context.Context, env *Env, args any) (any, error)
}

// Env is what a running step may use besides its arguments.
type Env struct {
	Addr        string // step.dump
	PlanDir     string // path.plan: relative paths are resolved against it
	ReadOnly    bool   // running as a check: change nothing
	AutoApprove bool   // --auto-approve: approve gates pass
	// Prompt asks a question on the terminal; nil when the run is not interactive.
	Prompt func(ctx context.Context, question string) (string, error)
	// Log reports a progress line; the CLI decides how to show it.
	Log func(format string, args ...any)
	// Progress reports how far a long step has come (call it at most a few
	// times a second); the CLI shows it live on a terminal. May be nil.
	Progress func(p event.Progress)
	// RunNested runs another step type with an HCL body evaluated in this
	// step's context (wait's probe).
	RunNested func(ctx context.Context, uses string, body hcl.Body) (any, error)
	// Secrets registers strings to redact from everything shown or recorded
	// (a password found in a connection string).
	Secrets func(secrets ...string)
	// StateDir is a directory the step may keep resumable state in across
	// runs of the same plan; "" when there is none.
	StateDir string
}

// Logf calls Log when set.
func (e *Env) Logf(format string, args ...any) {
	if e != nil && e.Log != nil {
		e.Log(format, args...)
	}
}

// Def defines a step type from typed functions.
type Def[A, O any] struct {
	Summary    string
	IsReadOnly bool
	Fn         func(ctx context.Context, env *Env, args *A) (*O, error)
	// ArgChecks check string arguments with a syntax of their own, by
	// name, before the run (see argcheck.go).
	ArgChecks map[string]func(string) error
	// ArgSet checks which arguments are given together, before the run:
	// it returns the argument to point at ("" for the block) and why.
	ArgSet func(given map[string]bool) (string, error)
}

// Args is the arguments struct type.
func (d Def[A, O]) Args() reflect.Type { return reflect.TypeFor[A]() }

// Output is the output struct type.
func (d Def[A, O]) Output() reflect.Type { return reflect.TypeFor[O]() }

// ReadOnly reports whether the type never changes data.
func (d Def[A, O]) ReadOnly() bool { return d.IsReadOnly }

// Doc is the one-line description.
func (d Def[A, O]) Doc() string { return d.Summary }

// NewArgs returns a new *A.
func (d Def[A, O]) NewArgs() any { return new(A) }

// Run calls Fn.
func (d Def[A, O]) Run(ctx context.Context, env *Env, args any) (any, error) {
	out, err := d.Fn(ctx, env, args.(*A))
	if out == nil {
		return nil, err
	}
	return out, err
}

// Registry is a table of step types.
type Registry struct {
	types map[string]Type
}

// Builtin returns the built-in step types.
func Builtin() *Registry {
	return New(map[string]Type{
		"approve":    approveType,
		"compare":    compareType,
		"copy":       copyType,
		"exec":       execType,
		"http":       httpType,
		"pg_dump":    pgDumpType,
		"pg_restore": pgRestoreType,
		"preflight":  preflightType,
		"replicate":  replicateType,
		"sequences":  sequencesType,
		"sleep":      sleepType,
		"sql":        sqlType,
		"wait":       waitType,
	})
}

// New returns a registry of the given types (tests add fakes this way).
func New(types map[string]Type) *Registry {
	r := &Registry{types: map[string]Type{}}
	for k, v := range types {
		r.types[k] = v
	}
	return r
}

// With returns a copy of the registry with more types.
func (r *Registry) With(types map[string]Type) *Registry {
	out := New(r.types)
	for k, v := range types {
		out.types[k] = v
	}
	return out
}

// Lookup implements plan.Types.
func (r *Registry) Lookup(name string) (plan.StepType, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Type returns the runnable type.
func (r *Registry) Type(name string) (Type, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Names lists the types, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.types))
	for k := range r.types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
