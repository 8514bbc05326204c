package steps

import (
	"context"
	"errors"
)

// CopyArgs are the arguments of copy.
type CopyArgs struct{}

// CopyOutput is the output of copy.
type CopyOutput struct{}

// copyType is being written; it fails when run until then.
var copyType = Def[CopyArgs, CopyOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *CopyArgs) (*CopyOutput, error) {
		return nil, errors.New("copy: not built yet")
	},
}
