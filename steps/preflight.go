package steps

import (
	"context"
	"errors"
)

// PreflightArgs are the arguments of preflight.
type PreflightArgs struct{}

// PreflightOutput is the output of preflight.
type PreflightOutput struct{}

// preflightType is being written; it fails when run until then.
var preflightType = Def[PreflightArgs, PreflightOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *PreflightArgs) (*PreflightOutput, error) {
		return nil, errors.New("preflight: not built yet")
	},
}
