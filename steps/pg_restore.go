package steps

import (
	"context"
	"errors"
)

// PgRestoreArgs are the arguments of pg_restore.
type PgRestoreArgs struct{}

// PgRestoreOutput is the output of pg_restore.
type PgRestoreOutput struct{}

// pgRestoreType is being written; it fails when run until then.
var pgRestoreType = Def[PgRestoreArgs, PgRestoreOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *PgRestoreArgs) (*PgRestoreOutput, error) {
		return nil, errors.New("pg_restore: not built yet")
	},
}
