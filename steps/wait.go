package steps

import (
	"context"
	"errors"
)

// WaitArgs are the arguments of wait.
type WaitArgs struct{}

// WaitOutput is the output of wait.
type WaitOutput struct{}

// waitType is being written; it fails when run until then.
var waitType = Def[WaitArgs, WaitOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *WaitArgs) (*WaitOutput, error) {
		return nil, errors.New("wait: not built yet")
	},
}
