package steps

import (
	"context"
	"errors"
)

// PgDumpArgs are the arguments of pg_dump.
type PgDumpArgs struct{}

// PgDumpOutput is the output of pg_dump.
type PgDumpOutput struct{}

// pgDumpType is being written; it fails when run until then.
var pgDumpType = Def[PgDumpArgs, PgDumpOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *PgDumpArgs) (*PgDumpOutput, error) {
		return nil, errors.New("pg_dump: not built yet")
	},
}
