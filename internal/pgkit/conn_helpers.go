package pgkit

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Close closes a connection even when ctx is already cancelled.
func Close(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := CleanupContext(ctx)
	defer cancel()
	_ = conn.Close(ctx)
}

// CleanupContext is for the statements that clean up after a failure or
// a cancellation (ROLLBACK, closing): they must run even then, but not
// wait forever on a server that does not answer.
func CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// Rollback ends a transaction that may or may not be over (after Commit
// it does nothing).
func Rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := CleanupContext(ctx)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// Querier is a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Each runs a query and calls fn after scanning each row into dest.
func Each(ctx context.Context, q Querier, sql string, args, dest []any, fn func() error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

// UserScope keeps user objects of relation c in namespace n: no system or
// temporary schemas, the schemas asked for ($1, empty for all, and not $2),
// and nothing that belongs to an extension (extensions are compared whole).
const UserScope = `
	n.nspname NOT IN ('pg_catalog', 'information_schema')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
	AND (cardinality($1::text[]) = 0 OR n.nspname = ANY ($1::text[]))
	AND n.nspname <> ALL ($2::text[])
	AND NOT EXISTS (SELECT FROM pg_depend d
		WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

// BeginInSnapshot starts a read-only transaction on another connection
// that sees exactly what the coordinating transaction sees.
func BeginInSnapshot(ctx context.Context, conn *pgx.Conn, snapshot string) (pgx.Tx, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, SetSnapshotSQL(snapshot)); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("import the snapshot: %w", err)
	}
	return tx, nil
}

// ClientGrace is how long pg_dump or pg_restore get to stop after SIGTERM
// (they cancel their queries on the server) before SIGKILL.
const ClientGrace = 10 * time.Second

// RunClient runs pg_dump or pg_restore. Their stderr goes to stderr when
// given; either way the last lines of it end up in the error. On
// cancellation the tools get SIGTERM, and SIGKILL if they are still there
// ClientGrace later. When ctx has a deadline (a step's timeout) the grace
// comes out of it rather than on top: the tool gets SIGTERM
// min(ClientGrace, a quarter of the time left) before the deadline and
// SIGKILL at it, and RunClient returns at the deadline with its error.
func RunClient(ctx context.Context, bin string, argv, environ []string, stderr io.Writer) error {
	runCtx, grace := ctx, ClientGrace
	if deadline, ok := ctx.Deadline(); ok {
		grace = max(min(ClientGrace, time.Until(deadline)/4), time.Millisecond) // 0 would mean no limit
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, deadline.Add(-grace))
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, bin, argv...)
	cmd.Env = environ
	// Its own process group, so that parallel workers get the signal too;
	// and stopped if planrun dies, so that a crashed run leaves no dump or
	// restore going while the next apply resumes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = grace
	tail := &pgStderrTail{}
	cmd.Stderr = tail
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(tail, stderr)
	}
	err := cmd.Run()
	if runCtx.Err() != nil {
		if ps := cmd.ProcessState; ps != nil && ps.Success() {
			// It ran to its end before the cancellation reached it: done
			// (a resume would otherwise dump or restore again).
			return nil
		}
		// Stopped ahead of the deadline: the step's own context says it
		// timed out (at most the grace from now), so the engine reports a
		// timeout, not a failure.
		<-ctx.Done()
		return fmt.Errorf("stopped: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%w%s", err, tail.String())
	}
	return nil
}

// pgStderrTail keeps the last lines a tool wrote to stderr.
type pgStderrTail struct{ buf []byte }

const pgStderrKeep = 4 << 10

func (t *pgStderrTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 2*pgStderrKeep; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns up to the last 10 lines, indented under the error.
func (t *pgStderrTail) String() string {
	s := strings.TrimSpace(string(t.buf))
	if len(s) > pgStderrKeep {
		s = s[len(s)-pgStderrKeep:]
	}
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
