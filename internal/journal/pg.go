package journal

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/event"
)

// DefaultTimeout bounds each statement on the state database: a database
// that stops answering fails the write instead of freezing the run.
const DefaultTimeout = 10 * time.Second

// DefaultLockCheck is how often a held lock's connection is checked.
const DefaultLockCheck = 2 * time.Second

// PGStore keeps runs in a Postgres database, so that a team, or several
// runner machines working through many databases, share runs and locks.
// Its tables live in the schema planrun, created on first use.
type PGStore struct {
	// Timeout bounds each statement (0: DefaultTimeout); LockCheck is how
	// often a held lock's connection is pinged (0: DefaultLockCheck).
	// Set them before use.
	Timeout   time.Duration
	LockCheck time.Duration

	url   string
	where string
	mu    sync.Mutex // guards conn: one statement at a time
	conn  *pgx.Conn
}

var _ Store = (*PGStore)(nil)

// pgSchema creates the tables of a new state database. An event is the
// exact JSON line the file store writes, as bytea: jsonb cannot hold
// \u0000 (an exec step's output may) and does not keep the bytes as written.
// The column event (jsonb) is what an older planrun wrote; it stays, so that
// its rows are read and an older planrun can still insert, but this one
// writes line only.
const pgSchema = `
CREATE SCHEMA IF NOT EXISTS planrun;
CREATE TABLE IF NOT EXISTS planrun.runs (
    plan        text NOT NULL,
    id          text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan, id)
);
CREATE TABLE IF NOT EXISTS planrun.events (
    seq     bigserial PRIMARY KEY,
    plan    text NOT NULL,
    run_id  text NOT NULL,
    event   jsonb,
    line    bytea,
    FOREIGN KEY (plan, run_id) REFERENCES planrun.runs (plan, id)
);
CREATE INDEX IF NOT EXISTS events_run_idx ON planrun.events (plan, run_id, seq);
CREATE TABLE IF NOT EXISTS planrun.locks (
    plan    text PRIMARY KEY,
    holder  jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS planrun.keys (
    name    text PRIMARY KEY,
    key     bytea NOT NULL
);`

// pgMigrateLine upgrades planrun.events as an older planrun created it
// (event jsonb NOT NULL, no line): line is added and event may be null.
// Both are catalog changes, instant on any size of table; its rows stay as
// they are and are read through event. An older planrun cannot read the
// runs this one records (their event is null): upgrade every runner that
// shares the state database.
const pgMigrateLine = `
ALTER TABLE planrun.events ADD COLUMN IF NOT EXISTS line bytea;
ALTER TABLE planrun.events ALTER COLUMN event DROP NOT NULL;`

// OpenPG connects to the state database and creates planrun's tables if
// they are missing, or upgrades them.
func OpenPG(ctx context.Context, url string) (*PGStore, error) {
	s := &PGStore{url: url}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("state database: %w", err)
	}
	cfg := conn.Config()
	s.conn, s.where = conn, fmt.Sprintf("planrun.events in %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	if err := s.setUp(ctx); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("state database %s: %w", s.where, err)
	}
	return s, nil
}

// setUp creates or upgrades the tables. Two runners doing it at once would
// collide on the catalogs; a transaction-scoped advisory lock serialises
// them. Its key is a pair of int4, a space apart from the plans' int8 keys
// (planrun:schema was also the key of a plan named "schema").
func (s *PGStore) setUp(ctx context.Context) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('planrun'), hashtext('schema'))"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	// Only ALTER when needed: it locks the table against every runner.
	var upgraded bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute
		WHERE attrelid = 'planrun.events'::regclass AND attname = 'line' AND NOT attisdropped)`).Scan(&upgraded); err != nil {
		return err
	}
	if !upgraded {
		if _, err := tx.Exec(ctx, pgMigrateLine); err != nil {
			return fmt.Errorf("upgrade planrun.events: %w", err)
		}
	}
	return tx.Commit(ctx)
}

func (s *PGStore) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *PGStore) lockCheck() time.Duration {
	if s.LockCheck > 0 {
		return s.LockCheck
	}
	return DefaultLockCheck
}

// bounded is ctx limited to one statement's time; its error names the bound.
func (s *PGStore) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.timeout(), fmt.Errorf("the state database did not answer within %s", s.timeout()))
}

// cause prefers the bound's explanation to pgx's "timeout: context deadline exceeded".
func cause(ctx context.Context, err error) error {
	if err == nil {
		return nil // a statement that made it just before the bound
	}
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

// Where names the state database (without its password).
func (s *PGStore) Where(string) string { return s.where }

// Close closes the store's connection.
func (s *PGStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.bounded(context.Background())
	defer cancel()
	return s.conn.Close(ctx)
}

// Lock takes a session advisory lock on its own connection: Postgres drops
// it when the holder's connection ends, so a dead runner never blocks a plan.
// The holder is written to planrun.locks for others to read; a row found when
// the advisory lock was free belongs to a runner that died. The key is a
// 64-bit hash of the exact plan name, and the rows are keyed by the name, so
// plans differing in any character have locks of their own.
//
// A goroutine owned by the lease pings the connection every LockCheck, each
// ping bounded by Timeout: when one fails the lock is, or may be, gone (the
// connection dropped, or the database stopped answering), and the lease
// says so.
func (s *PGStore) Lock(ctx context.Context, plan string, me Holder) (*Lease, *Holder, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, nil, fmt.Errorf("lock: %w", cause(ctx, err))
	}
	fail := func(err error) (*Lease, *Holder, error) {
		conn.Close(context.Background())
		return nil, nil, fmt.Errorf("lock: %w", cause(ctx, err))
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended('planrun:' || $1, 0))", plan).Scan(&got); err != nil {
		return fail(err)
	}
	readHolder := func() (*Holder, error) {
		var raw []byte
		err := conn.QueryRow(ctx, "SELECT holder FROM planrun.locks WHERE plan = $1", plan).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var h Holder
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("planrun.locks holds garbage for %q: %w", plan, err)
		}
		return &h, nil
	}
	if !got {
		h, err := readHolder()
		if err != nil {
			return fail(err)
		}
		conn.Close(context.Background())
		if h == nil {
			h = &Holder{Host: "another runner (it has not written its name yet)"}
		}
		return nil, nil, &LockedError{Plan: plan, Holder: *h}
	}
	stale, err := readHolder()
	if err != nil {
		return fail(err)
	}
	raw, _ := json.Marshal(me) // a Holder always marshals
	if _, err := conn.Exec(ctx, `INSERT INTO planrun.locks (plan, holder) VALUES ($1, $2)
		ON CONFLICT (plan) DO UPDATE SET holder = excluded.holder`, plan, raw); err != nil {
		return fail(err)
	}

	stop := make(chan struct{})
	var watcher sync.WaitGroup
	var lease *Lease
	release := func() error {
		close(stop)
		watcher.Wait() // the connection is ours again
		if lease.Err() != nil {
			// Lost: the connection is closed, and the row may be the next holder's.
			return nil
		}
		ctx, cancel := s.bounded(context.Background())
		defer cancel()
		_, err := conn.Exec(ctx, "DELETE FROM planrun.locks WHERE plan = $1 AND holder = $2", plan, raw)
		if _, uerr := conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtextextended('planrun:' || $1, 0))", plan); err == nil {
			err = uerr
		}
		if cerr := conn.Close(ctx); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("release the lock: %w", cause(ctx, err))
		}
		return nil
	}
	lease = newLease(release)
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		s.watchLock(conn, plan, lease, stop)
	}()
	return lease, stale, nil
}

// watchLock pings the lock's connection until stop is closed; a failed
// ping loses the lease and closes the connection (were it alive but slow,
// closing it lets the server drop the lock rather than hold it for no one).
func (s *PGStore) watchLock(conn *pgx.Conn, plan string, lease *Lease, stop <-chan struct{}) {
	tick := time.NewTicker(s.lockCheck())
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ctx, cancel := s.bounded(context.Background())
		err := conn.Ping(ctx)
		err = cause(ctx, err)
		cancel()
		if err != nil {
			conn.Close(context.Background())
			lease.lose(&LockLostError{Plan: plan, Where: s.where, Err: err})
			return
		}
	}
}

// FingerprintKey reads the key from planrun.keys, making it on first use;
// of two runners making one at once, the first to commit wins.
func (s *PGStore) FingerprintKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand never fails on Linux
	if _, err := s.conn.Exec(ctx, "INSERT INTO planrun.keys (name, key) VALUES ('fingerprint', $1) ON CONFLICT (name) DO NOTHING", key); err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", cause(ctx, err))
	}
	if err := s.conn.QueryRow(ctx, "SELECT key FROM planrun.keys WHERE name = 'fingerprint'").Scan(&key); err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", cause(ctx, err))
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("fingerprint key in planrun.keys: want 32 bytes, found %d", len(key))
	}
	return key, nil
}

// Create starts a new run record.
func (s *PGStore) Create(ctx context.Context, plan, runID string) (RunWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	if _, err := s.conn.Exec(ctx, "INSERT INTO planrun.runs (plan, id) VALUES ($1, $2)", plan, runID); err != nil {
		return nil, fmt.Errorf("journal: %w", cause(ctx, err))
	}
	return &pgWriter{s: s, plan: plan, run: runID}, nil
}

// Append continues a run record.
func (s *PGStore) Append(ctx context.Context, plan, runID string) (RunWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var n int
	if err := s.conn.QueryRow(ctx, "SELECT count(*) FROM planrun.runs WHERE plan = $1 AND id = $2", plan, runID).Scan(&n); err != nil {
		return nil, fmt.Errorf("journal: %w", cause(ctx, err))
	}
	if n == 0 {
		return nil, fmt.Errorf("journal: no run %s of plan %q", runID, plan)
	}
	return &pgWriter{s: s, plan: plan, run: runID}, nil
}

type pgWriter struct {
	s         *PGStore
	plan, run string
}

// Record inserts the event; each insert commits on its own, so what was
// recorded survives a crash of the runner. It waits at most the store's
// Timeout: the engine holds its event lock meanwhile, so a database that
// stopped answering would otherwise freeze every step and every rollback.
func (w *pgWriter) Record(ev event.Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	ctx, cancel := w.s.bounded(context.Background())
	defer cancel()
	if _, err := w.s.conn.Exec(ctx, "INSERT INTO planrun.events (plan, run_id, line) VALUES ($1, $2, $3)", w.plan, w.run, line); err != nil {
		return &WriteError{Where: w.s.where, Run: w.run, Event: ev.Type, Err: cause(ctx, err)}
	}
	return nil
}

// Check is nil: rows are not removed behind a writer's back.
func (w *pgWriter) Check() error { return nil }

func (w *pgWriter) Close() error { return nil }

// WriteError says an event could not be recorded.
type WriteError struct {
	Where string
	Run   string
	Event string
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("the run record could not be written (%s event of run %s, %s): %v", e.Event, e.Run, e.Where, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Runs lists a plan's runs, newest first.
func (s *PGStore) Runs(ctx context.Context, plan string) ([]RunInfo, error) {
	s.mu.Lock()
	bctx, cancel := s.bounded(ctx)
	ids, err := func() ([]string, error) {
		rows, err := s.conn.Query(bctx, "SELECT id FROM planrun.runs WHERE plan = $1 ORDER BY id DESC", plan)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}()
	err = cause(bctx, err)
	cancel()
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return summarizeRuns(ctx, s, plan, ids)
}

// Events reads a run's events in order: the lines as recorded, or for rows
// of an older planrun the jsonb as text.
func (s *PGStore) Events(ctx context.Context, plan, runID string) ([]event.Event, error) {
	events, _, err := s.readEvents(ctx, plan, runID)
	return events, err
}

// readEvents reads a run's rows. Each row is one whole insert, so a
// record here is never torn.
func (s *PGStore) readEvents(ctx context.Context, plan, runID string) ([]event.Event, *TornError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT coalesce(line, convert_to(event::text, 'UTF8'))
		FROM planrun.events WHERE plan = $1 AND run_id = $2 ORDER BY seq`, plan, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", cause(ctx, err))
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", cause(ctx, err))
	}
	var raw []byte
	for _, l := range lines {
		raw = append(append(raw, l...), '\n')
	}
	events, _, err := parseEvents(fmt.Sprintf("%s (run %s)", s.where, runID), raw) // every line ends in '\n': never torn
	return events, nil, err
}
