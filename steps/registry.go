// Package steps is the table of step types: every type a plan can name is
// in Builtin below, each one's code in its own package under steps/. The
// contract they implement is steptype's; what the Postgres types share is
// internal/pgkit's. This package only assembles the table: it runs nothing
// and no type imports it.
package steps

import (
	"sort"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps/approve"
	"github.com/planrun/planrun/steps/capture"
	"github.com/planrun/planrun/steps/compare"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/exec"
	"github.com/planrun/planrun/steps/http"
	"github.com/planrun/planrun/steps/pgdump"
	"github.com/planrun/planrun/steps/preflight"
	"github.com/planrun/planrun/steps/replicate"
	"github.com/planrun/planrun/steps/sequences"
	"github.com/planrun/planrun/steps/sleep"
	"github.com/planrun/planrun/steps/sql"
	"github.com/planrun/planrun/steps/steptype"
	"github.com/planrun/planrun/steps/wait"
)

// Registry is a table of step types.
type Registry struct {
	types map[string]steptype.Type
}

// Builtin returns the built-in step types.
func Builtin() *Registry {
	return New(map[string]steptype.Type{
		"approve":    approve.Type,
		"capture":    capture.Type,
		"compare":    compare.Type,
		"copy":       copystep.Type,
		"exec":       exec.Type,
		"http":       http.Type,
		"pg_dump":    pgdump.DumpType,
		"pg_restore": pgdump.RestoreType,
		"preflight":  preflight.Type,
		"replicate":  replicate.Type,
		"sequences":  sequences.Type,
		"sleep":      sleep.Type,
		"sql":        sql.Type,
		"wait":       wait.Type,
	})
}

// New returns a registry of the given types (tests add fakes this way).
func New(types map[string]steptype.Type) *Registry {
	r := &Registry{types: map[string]steptype.Type{}}
	for k, v := range types {
		r.types[k] = v
	}
	return r
}

// With returns a copy of the registry with more types.
func (r *Registry) With(types map[string]steptype.Type) *Registry {
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
func (r *Registry) Type(name string) (steptype.Type, bool) {
	t, ok := r.types[name]
	return t, ok
}

// ConnSecrets implements plan.ConnSecrets with pgx's parser.
func (r *Registry) ConnSecrets(conn string) []string { return pgkit.ConnSecrets(conn) }

// Names lists the types, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.types))
	for k := range r.types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
