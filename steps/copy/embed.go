package copy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// What another step type that fills a target with a copy uses of this
// package: replicate's initial_copy = "copy" is the one deliberate edge
// between two step types. It checks the copy's arguments before it
// creates anything (Prepare), then runs the copy as of a snapshot it
// exported itself (Prepared.Run).

// Prepared is a copy whose arguments are checked.
type Prepared struct {
	o *copyOptions
}

// Prepare checks the arguments as the copy step does.
func Prepare(a *CopyArgs) (*Prepared, error) {
	o, err := newCopyOptions(a)
	if err != nil {
		return nil, err
	}
	return &Prepared{o: o}, nil
}

// Clean says whether the copy drops what the target has first.
func (p *Prepared) Clean() bool { return p.o.clean }

// LargeObjects says whether the copy brings large objects.
func (p *Prepared) LargeObjects() bool { return p.o.largeObjects }

// From is what the caller's snapshot decides about a copy.
type From struct {
	// Snapshot is the exported snapshot the copy reads as of; Imported is
	// called once the copy's transaction holds it, so that the caller can
	// let the exporting session go.
	Snapshot string
	Imported func()
	// SkipPublication is a publication in the snapshot that the copy
	// leaves out of the schema it brings (the caller's means of
	// replicating, not part of the database moved).
	SkipPublication string
	// SkipSchema is a schema in the snapshot that the copy leaves out
	// whole (its tables, rows, functions), and SkipTriggerPrefix the
	// triggers on copied tables, named so, that call into it: capture's
	// change log and its triggers.
	SkipSchema, SkipTriggerPrefix string
	// Tables, when set, replaces the tables argument: each an exact
	// "schema.table" (see ExactTable).
	Tables []string
}

// ExactTable is a tables pattern that matches this one table only.
func ExactTable(schema, name string) string {
	literal := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return literal.Replace(schema) + "." + literal.Replace(name)
}

// Run runs the copy as of from's snapshot. The output is the copy step's,
// also on an error (what got done).
func (p *Prepared) Run(ctx context.Context, env *steptype.Env, from From) (*CopyOutput, error) {
	o := *p.o
	o.importSnapshot, o.imported = from.Snapshot, from.Imported
	o.skipPublication = from.SkipPublication
	o.skipSchema, o.skipTriggerPrefix = from.SkipSchema, from.SkipTriggerPrefix
	if o.skipSchema != "" {
		o.excludeTables = append(append([]string(nil), o.excludeTables...), ExactTable(o.skipSchema, "")+"*")
	}
	if from.Tables != nil {
		o.tables = from.Tables
	}
	c := &copyRun{env: env, o: &o, start: time.Now()}
	return c.run(ctx)
}

// RemoveState removes what an earlier copy kept in a step's state
// directory: a caller whose snapshot is gone must start the copy over.
func RemoveState(dir string) error {
	if dir == "" {
		return nil
	}
	for _, f := range []string{copyStateFile, copyArchiveFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the state of an earlier attempt: %w", err)
		}
	}
	return nil
}

// HookAfterSnapshot makes the copy run with env call f once it holds its
// snapshot, until the returned func is called. Only tests use it (the
// callers' tests change the source there); keyed by env, it never fires
// in another test.
func HookAfterSnapshot(env *steptype.Env, f func()) (remove func()) {
	copyTestHooks.Store(env, &copyHooks{afterSnapshot: f})
	return func() { copyTestHooks.Delete(env) }
}
