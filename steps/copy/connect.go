package copy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// copyConnect connects with the pinned session settings plus params.
// Every timeout a server or role may set for applications is lifted: the
// step's own timeout bounds the work.
func copyConnect(ctx context.Context, env *steptype.Env, db *pgkit.Database, readOnly bool, params map[string]string) (*pgx.Conn, error) {
	cfg, err := pgkit.ConnConfig(env, db, readOnly)
	if err != nil {
		return nil, err
	}
	for k, v := range copySessionSettings {
		cfg.RuntimeParams[k] = v
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s (%s): %w", db.Name, pgkit.Describe(cfg), err)
	}
	return conn, nil
}

// copySessionSettings are set on every connection copy opens, on both
// sides. With text COPY, values are printed by one server and parsed by
// the other: the pinned settings (pgkit.PinnedSettings) and these make both
// read and write them alike (regclass values as qualified names, money
// the same way).
var copySessionSettings = map[string]string{
	"search_path":                         "pg_catalog",
	"lc_monetary":                         "C",
	"statement_timeout":                   "0",
	"lock_timeout":                        "0",
	"idle_in_transaction_session_timeout": "0",
	"row_security":                        "off", // a table that row-level security would filter fails, as in pg_dump
}
