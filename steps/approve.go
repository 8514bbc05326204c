package steps

import (
	"context"
	"errors"
)

// ApproveArgs are the arguments of approve.
type ApproveArgs struct{}

// ApproveOutput is the output of approve.
type ApproveOutput struct{}

// approveType is being written; it fails when run until then.
var approveType = Def[ApproveArgs, ApproveOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *ApproveArgs) (*ApproveOutput, error) {
		return nil, errors.New("approve: not built yet")
	},
}
