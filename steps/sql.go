package steps

import (
	"context"
	"errors"
)

// SqlArgs are the arguments of sql.
type SqlArgs struct{}

// SqlOutput is the output of sql.
type SqlOutput struct{}

// sqlType is being written; it fails when run until then.
var sqlType = Def[SqlArgs, SqlOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *SqlArgs) (*SqlOutput, error) {
		return nil, errors.New("sql: not built yet")
	},
}
