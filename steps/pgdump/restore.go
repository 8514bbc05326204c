package pgdump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// PgRestoreArgs are the arguments of pg_restore.
type PgRestoreArgs struct {
	Database          *pgkit.Database `hcl:"database" doc:"The database to restore into."`
	Path              string          `hcl:"path" doc:"The dump: a directory-format directory or a custom-format file, relative to the plan's directory."`
	Jobs              *int            `hcl:"jobs,optional" doc:"How many objects to restore at once."`
	Clean             bool            `hcl:"clean,optional" doc:"Drop each object before creating it."`
	IfExists          bool            `hcl:"if_exists,optional" doc:"With clean: drop with IF EXISTS, so that missing objects are no error."`
	NoOwner           bool            `hcl:"no_owner,optional" doc:"Do not set owners: everything belongs to the user restoring."`
	NoACL             bool            `hcl:"no_acl,optional" doc:"Do not restore privileges (GRANT and REVOKE)."`
	SingleTransaction bool            `hcl:"single_transaction,optional" doc:"Restore in one transaction: all or nothing; stops at the first error, even an ignorable one."`
	SchemaOnly        bool            `hcl:"schema_only,optional" doc:"Restore only the schema."`
	DataOnly          bool            `hcl:"data_only,optional" doc:"Restore only the data, into existing tables."`
	ExitOnError       bool            `hcl:"exit_on_error,optional" doc:"Stop at the first error, even an ignorable one, and fail."`
	FailOnWarnings    bool            `hcl:"fail_on_warnings,optional" doc:"Fail on ignorable errors too (default false: they are counted in output.warnings)."`
	ExtraArgs         []string        `hcl:"extra_args,optional" doc:"More pg_restore arguments, passed as they are."`
}

// PgRestoreMessage is one error or warning of pg_restore.
type PgRestoreMessage = pgkit.RestoreMessage

// PgRestoreOutput is the output of pg_restore.
type PgRestoreOutput struct {
	Errors   int                `json:"errors" doc:"Errors that mean the restore is incomplete."`
	Warnings int                `json:"warnings" doc:"Errors known to be harmless (such as a managed service's extension comment) and pg_restore's warnings."`
	Messages []PgRestoreMessage `json:"messages" doc:"The first 50 errors and warnings, in order."`
	ExitCode int                `json:"exit_code" doc:"pg_restore's exit code: 1 when any error, ignorable or not, occurred."`
	Seconds  float64            `json:"seconds" doc:"How long pg_restore ran."`
}

var RestoreType = steptype.Def[PgRestoreArgs, PgRestoreOutput]{
	Summary: "Restores a pg_dump archive with pg_restore, failing only on errors that leave the restore incomplete. The step's timeout includes pg_restore's time to stop: it gets SIGTERM min(10s, a quarter of the timeout) before the timeout and SIGKILL at it; what it restored until then stays, unless single_transaction.",
	Fn:      runPgRestore,
}

func runPgRestore(ctx context.Context, env *steptype.Env, a *PgRestoreArgs) (*PgRestoreOutput, error) {
	name := "?"
	if a.Database != nil {
		name = a.Database.Name
	}
	out, err := pgRestore(ctx, env, a)
	if err != nil && out == nil {
		// pgRestore returns no output only when it failed before starting
		// pg_restore (no dump, no connection, no tool): nothing was restored.
		err = steptype.Refused(err)
	}
	if err != nil {
		return out, fmt.Errorf("pg_restore %s: %w", name, err)
	}
	return out, nil
}

func pgRestore(ctx context.Context, env *steptype.Env, a *PgRestoreArgs) (*PgRestoreOutput, error) {
	if err := checkPgRestoreArgs(a); err != nil {
		return nil, err
	}
	path := a.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.PlanDir, path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no dump to restore: %w", err)
	}
	conn, err := pgkit.Connect(ctx, env, a.Database, false)
	if err != nil {
		return nil, err
	}
	major, err := pgkit.ServerMajor(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	bin, binMajor, err := pgkit.Tool(ctx, "pg_restore", major)
	if err != nil {
		return nil, err
	}
	dsn, environ, err := pgkit.LibPQ(env, a.Database)
	if err != nil {
		return nil, err
	}

	env.Logf("restoring %s into database %s with pg_restore %d", path, a.Database.Name, binMajor)
	p := &pgkit.RestoreLog{Options: pgkit.RestoreOptions{Clean: a.Clean, SingleTransaction: a.SingleTransaction, ExitOnError: a.ExitOnError, FailOnWarnings: a.FailOnWarnings}}
	start := time.Now()
	runErr := pgkit.RunClient(ctx, bin, pgRestoreArgv(a, path, dsn), environ, p)
	p.Flush()
	res, runErr := p.Result(runErr)
	out := &PgRestoreOutput{Errors: res.Errors, Warnings: res.Warnings, Messages: res.Messages, ExitCode: res.ExitCode, Seconds: time.Since(start).Seconds()}
	if runErr != nil {
		return out, runErr // not started, or cancelled
	}
	env.Logf("restored in %.1fs: %s, %s", out.Seconds, plural.Of(out.Errors, "error"), plural.Of(out.Warnings, "warning"))
	return out, p.Verdict(res)
}

func checkPgRestoreArgs(a *PgRestoreArgs) error {
	switch {
	case a.Database == nil:
		return errors.New("no database given")
	case a.Path == "":
		return errors.New("path is empty")
	case a.Jobs != nil && *a.Jobs < 1:
		return errors.New("jobs must be at least 1")
	case a.Jobs != nil && *a.Jobs > 1 && a.SingleTransaction:
		return errors.New("single_transaction restores from one connection: leave jobs out")
	case a.SchemaOnly && a.DataOnly:
		return errors.New("give schema_only or data_only, not both")
	case a.IfExists && !a.Clean:
		return errors.New("if_exists goes with clean = true")
	case a.Clean && a.DataOnly:
		return errors.New("clean drops tables, which data_only restores into: give one of them")
	}
	return nil
}

// pgRestoreArgv builds pg_restore's arguments; the password travels in the
// environment, never on the command line.
func pgRestoreArgv(a *PgRestoreArgs, path, dsn string) []string {
	argv := []string{"--dbname=" + dsn, "--no-password"}
	if a.Jobs != nil {
		argv = append(argv, "--jobs="+strconv.Itoa(*a.Jobs))
	}
	flags := []struct {
		on   bool
		flag string
	}{
		{a.Clean, "--clean"}, {a.IfExists, "--if-exists"}, {a.NoOwner, "--no-owner"}, {a.NoACL, "--no-acl"},
		{a.SingleTransaction, "--single-transaction"}, {a.SchemaOnly, "--schema-only"}, {a.DataOnly, "--data-only"},
		{a.ExitOnError, "--exit-on-error"},
	}
	for _, f := range flags {
		if f.on {
			argv = append(argv, f.flag)
		}
	}
	argv = append(argv, a.ExtraArgs...)
	return append(argv, path)
}
