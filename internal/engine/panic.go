package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps/steptype"
)

// PanicError is a step type's panic, recovered so that the run records it
// as that step's failure and rolls back as after any other failure, instead
// of dying with nothing undone and the run unfinished.
type PanicError struct {
	Value any    // what the type panicked with
	Stack string // the panicking goroutine's stack, for the record
}

func (e *PanicError) Error() string { return fmt.Sprintf("panicked: %v", e.Value) }

// Unwrap returns the value panicked with when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// runType calls a type's Run, turning a panic into a *PanicError. Every
// call into a type goes through it, in whatever goroutine runs the step or
// its rollback.
func runType(ctx context.Context, t steptype.Type, env *steptype.Env, args any) (out any, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return t.Run(ctx, env, args)
}

// setError puts an error into its event, redacted; a panic's stack goes
// into the event's Stack, for the record, not into the error the terminal
// shows.
func (r *run) setError(ev *event.Event, err error) {
	ev.Error = r.opts.Redactor.String(err.Error())
	if pe, ok := errors.AsType[*PanicError](err); ok {
		ev.Stack = r.opts.Redactor.String(pe.Stack)
	}
}
