package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// PgRestoreArgs are the arguments of pg_restore.
type PgRestoreArgs struct {
	Database          *Database `hcl:"database" doc:"The database to restore into."`
	Path              string    `hcl:"path" doc:"The dump: a directory-format directory or a custom-format file, relative to the plan's directory."`
	Jobs              *int      `hcl:"jobs,optional" doc:"How many objects to restore at once."`
	Clean             bool      `hcl:"clean,optional" doc:"Drop each object before creating it."`
	IfExists          bool      `hcl:"if_exists,optional" doc:"With clean: drop with IF EXISTS, so that missing objects are no error."`
	NoOwner           bool      `hcl:"no_owner,optional" doc:"Do not set owners: everything belongs to the user restoring."`
	NoACL             bool      `hcl:"no_acl,optional" doc:"Do not restore privileges (GRANT and REVOKE)."`
	SingleTransaction bool      `hcl:"single_transaction,optional" doc:"Restore in one transaction: all or nothing; stops at the first error, even an ignorable one."`
	SchemaOnly        bool      `hcl:"schema_only,optional" doc:"Restore only the schema."`
	DataOnly          bool      `hcl:"data_only,optional" doc:"Restore only the data, into existing tables."`
	ExitOnError       bool      `hcl:"exit_on_error,optional" doc:"Stop at the first error, even an ignorable one, and fail."`
	FailOnWarnings    bool      `hcl:"fail_on_warnings,optional" doc:"Fail on ignorable errors too (default false: they are counted in output.warnings)."`
	ExtraArgs         []string  `hcl:"extra_args,optional" doc:"More pg_restore arguments, passed as they are."`
}

// PgRestoreOutput is the output of pg_restore.
type PgRestoreOutput struct {
	Errors   int                `json:"errors" doc:"Errors that mean the restore is incomplete."`
	Warnings int                `json:"warnings" doc:"Errors known to be harmless (such as a managed service's extension comment) and pg_restore's warnings."`
	Messages []PgRestoreMessage `json:"messages" doc:"The first 50 errors and warnings, in order."`
	ExitCode int                `json:"exit_code" doc:"pg_restore's exit code: 1 when any error, ignorable or not, occurred."`
	Seconds  float64            `json:"seconds" doc:"How long pg_restore ran."`
}

// PgRestoreMessage is one error or warning of pg_restore.
type PgRestoreMessage struct {
	Level  string `json:"level" doc:"error or warning."`
	Text   string `json:"text" doc:"The message, with the failed command and the archive entry."`
	Reason string `json:"reason" doc:"Why a warning was not counted as an error; empty for errors."`
}

var pgRestoreType = steptype.Def[PgRestoreArgs, PgRestoreOutput]{
	Summary: "Restores a pg_dump archive with pg_restore, failing only on errors that leave the restore incomplete.",
	Fn:      runPgRestore,
}

// restoreIgnorable lists the errors pg_restore reports that do not leave
// the restore incomplete. An error is ignorable when its server message
// matches msg, the command that failed matches cmd, and when (if set) holds
// for the step's arguments. Anything else is a real error.
var restoreIgnorable = []struct {
	msg, cmd *regexp.Regexp
	when     func(a *PgRestoreArgs) bool
	why      string
}{
	// Managed services (RDS, Cloud SQL, Heroku) preinstall plpgsql and other
	// extensions owned by an administrator role: COMMENT ON EXTENSION (or
	// DROP EXTENSION with clean) by the restoring user fails, and the
	// extension is there anyway.
	{msg: regexp.MustCompile(`^must be owner of extension \S+$`), cmd: regexp.MustCompile(`^(COMMENT ON EXTENSION|DROP EXTENSION) `),
		why: "the extension exists and belongs to another role (a managed service's)"},
	// pg_dump writes CREATE SCHEMA public when the source's public schema
	// was dropped and created again; every new database already has one.
	{msg: regexp.MustCompile(`^schema "public" already exists$`), cmd: regexp.MustCompile(`^CREATE SCHEMA public;`),
		why: "every database has a public schema"},
	// Since PostgreSQL 15 public belongs to pg_database_owner; on a managed
	// service the restoring user may not own it, so its comment cannot be set.
	{msg: regexp.MustCompile(`^must be owner of schema public$`), cmd: regexp.MustCompile(`^COMMENT ON SCHEMA public `),
		why: "only the public schema's comment was not restored"},
	// clean without if_exists drops every object first, and on a first
	// restore there is nothing to drop.
	{msg: regexp.MustCompile(`does not exist$`), cmd: regexp.MustCompile(`^(DROP |ALTER TABLE (ONLY )?\S+ (DROP CONSTRAINT|ALTER COLUMN \S+ DROP DEFAULT))`),
		when: func(a *PgRestoreArgs) bool { return a.Clean },
		why:  "clean dropped an object that was not there (if_exists = true avoids the message)"},
	// A newer pg_dump sets parameters an older server does not know
	// (transaction_timeout from pg_dump 17); they only tune the restore session.
	{msg: regexp.MustCompile(`^unrecognized configuration parameter "[^"]+"$`), cmd: regexp.MustCompile(`^SET `),
		why: "a session setting of a newer pg_dump that this server does not know"},
	// Owners name roles of the source's cluster; no_owner would skip them.
	{msg: regexp.MustCompile(`^(role "[^"]+" does not exist|must be (member|able to SET ROLE) of role "[^"]+")$`), cmd: regexp.MustCompile(`(?s)^ALTER .* OWNER TO `),
		why: "ownership was not restored: the role is missing here (no_owner = true skips owners)"},
	// Privileges name roles of the source's cluster; no_acl would skip them.
	{msg: regexp.MustCompile(`^role "[^"]+" does not exist$`), cmd: regexp.MustCompile(`^(GRANT|REVOKE|ALTER DEFAULT PRIVILEGES) `),
		why: "a privilege was not restored: the role is missing here (no_acl = true skips privileges)"},
}

func runPgRestore(ctx context.Context, env *steptype.Env, a *PgRestoreArgs) (*PgRestoreOutput, error) {
	name := "?"
	if a.Database != nil {
		name = a.Database.Name
	}
	out, err := pgRestore(ctx, env, a)
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
	conn, err := connect(ctx, env, a.Database, false)
	if err != nil {
		return nil, err
	}
	major, err := serverMajor(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	bin, binMajor, err := pgTool(ctx, "pg_restore", major)
	if err != nil {
		return nil, err
	}
	dsn, environ, err := libpq(env, a.Database)
	if err != nil {
		return nil, err
	}

	env.Logf("restoring %s into database %s with pg_restore %d", path, a.Database.Name, binMajor)
	p := &restoreParser{args: a}
	start := time.Now()
	runErr := runPgClient(ctx, bin, pgRestoreArgv(a, path, dsn), environ, p)
	p.flush()
	out := p.output()
	out.Seconds = time.Since(start).Seconds()
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		out.ExitCode = exitErr.ExitCode()
	case runErr != nil:
		return out, runErr // not started, or cancelled
	}
	env.Logf("restored in %.1fs: %d errors, %d warnings", out.Seconds, out.Errors, out.Warnings)
	return out, p.verdict(out, runErr)
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

// restoreParser reads pg_restore's stderr as it comes and sorts its
// messages into errors and ignorable ones. pg_restore writes
//
//	pg_restore: while PROCESSING TOC:
//	pg_restore: from TOC entry 5; 2615 2200 SCHEMA public postgres
//	pg_restore: error: could not execute query: ERROR:  schema "public" already exists
//	Command was: CREATE SCHEMA public;
//
// lines without the "pg_restore: " prefix continue the message before them.
type restoreParser struct {
	args     *PgRestoreArgs
	partial  []byte // a line not yet ended
	toc      string // the archive entry the next error is about
	cur      *PgRestoreMessage
	errors   int
	warnings int // ignored errors and pg_restore's own warnings
	ignored  int // ignored errors only
	messages []PgRestoreMessage

	firstErr     []string // the first few real errors, for the step's error
	firstIgnored string
}

const (
	restoreMaxMessages = 50
	restoreMaxText     = 2000 // a failed CREATE FUNCTION can be long
)

// Write is called by exec's copying goroutine only, which cmd.Wait waits for.
func (p *restoreParser) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
}

func (p *restoreParser) line(l string) {
	rest, ok := strings.CutPrefix(l, "pg_restore: ")
	if !ok || strings.HasPrefix(rest, "detail: ") || strings.HasPrefix(rest, "hint: ") {
		if p.cur != nil && len(p.cur.Text) < restoreMaxText {
			p.cur.Text += "\n" + strings.TrimPrefix(l, "pg_restore: ")
		}
		return
	}
	p.finish()
	switch {
	case strings.HasPrefix(rest, "from TOC entry "):
		p.toc = rest
	case strings.HasPrefix(rest, "error: "):
		p.cur = &PgRestoreMessage{Level: "error", Text: strings.TrimPrefix(rest, "error: ")}
	case strings.HasPrefix(rest, "warning: errors ignored on restore: "):
		// pg_restore's summary of the errors counted here one by one.
	case strings.HasPrefix(rest, "warning: "):
		p.cur = &PgRestoreMessage{Level: "warning", Text: strings.TrimPrefix(rest, "warning: "), Reason: "pg_restore's own warning"}
	case rest != "while PROCESSING TOC:":
		p.toc = "" // progress (--verbose): the entry named before is done
	}
}

// finish classifies the message being read, if any.
func (p *restoreParser) finish() {
	m := p.cur
	if m == nil {
		return
	}
	p.cur = nil
	m.Text = strings.TrimSpace(m.Text)
	if len(m.Text) > restoreMaxText {
		m.Text = m.Text[:restoreMaxText] + "…"
	}
	if m.Level == "error" {
		if why, ok := ignorableRestoreError(m.Text, p.args); ok {
			m.Level, m.Reason = "warning", why
			if p.ignored++; p.ignored == 1 {
				p.firstIgnored = m.Text
			}
		}
	}
	if p.toc != "" {
		m.Text += "\n(" + p.toc + ")"
		p.toc = ""
	}
	if m.Level == "error" {
		p.errors++
		if len(p.firstErr) < 3 {
			p.firstErr = append(p.firstErr, m.Text)
		}
	} else {
		p.warnings++
	}
	if len(p.messages) < restoreMaxMessages {
		p.messages = append(p.messages, *m)
	}
}

// flush handles what is left once pg_restore has exited.
func (p *restoreParser) flush() {
	if len(p.partial) > 0 {
		p.line(string(p.partial))
		p.partial = nil
	}
	p.finish()
}

var (
	restoreServerMsgRe = regexp.MustCompile(`^could not execute query: ERROR:\s+(.*)`)
	restoreCommandRe   = regexp.MustCompile(`(?s)\nCommand was: (.*)`)
)

// ignorableRestoreError matches an error against restoreIgnorable.
func ignorableRestoreError(text string, a *PgRestoreArgs) (string, bool) {
	first, _, _ := strings.Cut(text, "\n")
	m := restoreServerMsgRe.FindStringSubmatch(first)
	if m == nil {
		return "", false // not a failed SQL command: pg_restore itself could not go on
	}
	msg, cmd := strings.TrimSpace(m[1]), ""
	if c := restoreCommandRe.FindStringSubmatch(text); c != nil {
		cmd = strings.TrimSpace(c[1])
	}
	for _, r := range restoreIgnorable {
		if r.msg.MatchString(msg) && (r.cmd == nil || r.cmd.MatchString(cmd)) && (r.when == nil || r.when(a)) {
			return r.why, true
		}
	}
	return "", false
}

func (p *restoreParser) output() *PgRestoreOutput {
	msgs := p.messages
	if msgs == nil {
		msgs = []PgRestoreMessage{}
	}
	return &PgRestoreOutput{Errors: p.errors, Warnings: p.warnings, Messages: msgs}
}

// verdict decides whether the restore failed: pg_restore exits 1 after any
// error, ignorable or not, so its exit code alone cannot tell.
func (p *restoreParser) verdict(out *PgRestoreOutput, runErr error) error {
	a := p.args
	switch {
	case out.Errors > 0:
		more := ""
		if out.Errors > len(p.firstErr) {
			more = fmt.Sprintf("\n    ... and %d more", out.Errors-len(p.firstErr))
		}
		return fmt.Errorf("%d errors (%d ignorable):\n    %s%s", out.Errors, p.ignored,
			strings.ReplaceAll(strings.Join(p.firstErr, "\n"), "\n", "\n    "), more)
	case out.ExitCode != 0 && p.ignored == 0:
		return fmt.Errorf("pg_restore failed without an error message planrun could read: %w", runErr)
	case out.ExitCode != 0 && a.SingleTransaction:
		return fmt.Errorf("the restore ran in one transaction and stopped at an ignorable error, so nothing was restored: %s", p.firstIgnored)
	case out.ExitCode != 0 && a.ExitOnError:
		return fmt.Errorf("exit_on_error stopped pg_restore at an ignorable error, so what comes after it was not restored: %s", p.firstIgnored)
	case out.Warnings > 0 && a.FailOnWarnings:
		return fmt.Errorf("%d warnings and fail_on_warnings = true; the first: %s", out.Warnings, out.Messages[0].Text)
	}
	return nil
}
