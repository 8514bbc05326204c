package steps

import (
	"context"
	"errors"
)

// HTTPArgs are the arguments of http.
type HTTPArgs struct{}

// HTTPOutput is the output of http.
type HTTPOutput struct{}

// httpType is being written; it fails when run until then.
var httpType = Def[HTTPArgs, HTTPOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *HTTPArgs) (*HTTPOutput, error) {
		return nil, errors.New("http: not built yet")
	},
}
