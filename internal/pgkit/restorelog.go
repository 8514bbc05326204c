package pgkit

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// RestoreOptions are the pg_restore flags that decide which of its errors
// matter and whether the restore failed.
type RestoreOptions struct {
	Clean, SingleTransaction, ExitOnError, FailOnWarnings bool
}

// RestoreResult is what pg_restore reported.
type RestoreResult struct {
	Errors, Warnings int
	Messages         []RestoreMessage
	ExitCode         int
	runErr           error
}

// RestoreMessage is one error or warning of pg_restore.
type RestoreMessage struct {
	Level  string `json:"level" doc:"error or warning."`
	Text   string `json:"text" doc:"The message, with the failed command and the archive entry."`
	Reason string `json:"reason" doc:"Why a warning was not counted as an error; empty for errors."`
}

// restoreIgnorable lists the errors pg_restore reports that do not leave
// the restore incomplete. An error is ignorable when its server message
// matches msg, the command that failed matches cmd, and when (if set) holds
// for the restore's options. Anything else is a real error.
var restoreIgnorable = []struct {
	msg, cmd *regexp.Regexp
	when     func(o RestoreOptions) bool
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
		when: func(o RestoreOptions) bool { return o.Clean },
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

// RestoreLog reads pg_restore's stderr as it comes and sorts its
// messages into errors and ignorable ones. pg_restore writes
//
//	pg_restore: while PROCESSING TOC:
//	pg_restore: from TOC entry 5; 2615 2200 SCHEMA public postgres
//	pg_restore: error: could not execute query: ERROR:  schema "public" already exists
//	Command was: CREATE SCHEMA public;
//
// lines without the "pg_restore: " prefix continue the message before them.
type RestoreLog struct {
	Options  RestoreOptions
	partial  []byte // a line not yet ended
	toc      string // the archive entry the next error is about
	cur      *RestoreMessage
	errors   int
	warnings int // ignored errors and pg_restore's own warnings
	ignored  int // ignored errors only
	messages []RestoreMessage

	firstErr     []string // the first few real errors, for the step's error
	firstIgnored string
}

const (
	restoreMaxMessages = 50
	restoreMaxText     = 2000 // a failed CREATE FUNCTION can be long
)

// Write is called by exec's copying goroutine only, which cmd.Wait waits for.
func (p *RestoreLog) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.Line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
}

func (p *RestoreLog) Line(l string) {
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
		p.cur = &RestoreMessage{Level: "error", Text: strings.TrimPrefix(rest, "error: ")}
	case strings.HasPrefix(rest, "warning: errors ignored on restore: "):
		// pg_restore's summary of the errors counted here one by one.
	case strings.HasPrefix(rest, "warning: "):
		p.cur = &RestoreMessage{Level: "warning", Text: strings.TrimPrefix(rest, "warning: "), Reason: "pg_restore's own warning"}
	case rest != "while PROCESSING TOC:":
		p.toc = "" // progress (--verbose): the entry named before is done
	}
}

// finish classifies the message being read, if any.
func (p *RestoreLog) finish() {
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
		if why, ok := IgnorableRestoreError(m.Text, p.Options); ok {
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

// Flush handles what is left once pg_restore has exited.
func (p *RestoreLog) Flush() {
	if len(p.partial) > 0 {
		p.Line(string(p.partial))
		p.partial = nil
	}
	p.finish()
}

var (
	restoreServerMsgRe = regexp.MustCompile(`^could not execute query: ERROR:\s+(.*)`)
	restoreCommandRe   = regexp.MustCompile(`(?s)\nCommand was: (.*)`)
)

// IgnorableRestoreError matches an error against restoreIgnorable.
func IgnorableRestoreError(text string, o RestoreOptions) (string, bool) {
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
		if r.msg.MatchString(msg) && (r.cmd == nil || r.cmd.MatchString(cmd)) && (r.when == nil || r.when(o)) {
			return r.why, true
		}
	}
	return "", false
}

// Result counts what pg_restore reported once it has exited with runErr.
// An exit status is no error of its own (pg_restore exits 1 after any
// error, ignorable or not): it goes into the result, and only an error
// that is not an exit status (not started, cancelled) is returned.
func (p *RestoreLog) Result(runErr error) (*RestoreResult, error) {
	msgs := p.messages
	if msgs == nil {
		msgs = []RestoreMessage{}
	}
	res := &RestoreResult{Errors: p.errors, Warnings: p.warnings, Messages: msgs, runErr: runErr}
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case runErr != nil:
		return res, runErr
	}
	return res, nil
}

// Verdict decides whether the restore failed: pg_restore exits 1 after any
// error, ignorable or not, so its exit code alone cannot tell.
func (p *RestoreLog) Verdict(out *RestoreResult) error {
	a, runErr := p.Options, out.runErr
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
