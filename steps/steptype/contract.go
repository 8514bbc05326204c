// Package steptype is the contract every step type implements: the Type
// interface, the Env a running step may use, Def (a type built from typed
// functions) and the checks of arguments with a syntax of their own. It sits
// below every type and imports none of them; the table of types is
// package steps.
package steptype

import (
	"context"
	"errors"
	"reflect"
	"time"
	"unicode/utf8"

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
	// Redact replaces every registered secret in s; nil when nothing is
	// redacted (a type run directly in a test). Use Cut for text that is
	// shortened.
	Redact func(s string) string
	// StateDir is a directory the step may keep resumable state in across
	// runs of the same plan; "" when there is none.
	StateDir string
}

// Refusal is an error a type returns before it changed anything — a
// check that refuses to write, a connection that could not be made — so
// that the engine does not run the step's rollback: undoing work that was
// never done can destroy what was there (a rollback that drops the tables
// of a target the copy refused to write into).
type Refusal struct{ Err error }

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// Refused marks err as a refusal; nil stays nil.
func Refused(err error) error {
	if err == nil {
		return nil
	}
	return &Refusal{Err: err}
}

// IsRefusal says whether err is a refusal: nothing was changed.
func IsRefusal(err error) bool {
	_, ok := errors.AsType[*Refusal](err)
	return ok
}

// Cut redacts s, then cuts it to at most limit bytes (marking the cut
// with "…"): cutting first could leave part of a secret that the redactor
// no longer recognises.
func (e *Env) Cut(s string, limit int) string {
	if e != nil && e.Redact != nil {
		s = e.Redact(s)
	}
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
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

// Pause pauses for d or until ctx is done.
func Pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MaxCapture bounds what a step keeps in memory of a command's output or
// a response body (exec, http); the rest is cut and marked truncated.
const MaxCapture = 1 << 20
