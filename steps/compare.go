package steps

import (
	"context"
	"errors"
)

// CompareArgs are the arguments of compare.
type CompareArgs struct{}

// CompareOutput is the output of compare.
type CompareOutput struct{}

// compareType is being written; it fails when run until then.
var compareType = Def[CompareArgs, CompareOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *CompareArgs) (*CompareOutput, error) {
		return nil, errors.New("compare: not built yet")
	},
}
