package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/event"
)

// PGStore keeps runs in a Postgres database, so that a team, or several
// runner machines working through many databases, share runs and locks.
// Its tables live in the schema planrun, created on first use.
type PGStore struct {
	url   string
	where string
	mu    sync.Mutex // guards conn: one statement at a time
	conn  *pgx.Conn
}

var _ Store = (*PGStore)(nil)

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
    event   jsonb NOT NULL,
    FOREIGN KEY (plan, run_id) REFERENCES planrun.runs (plan, id)
);
CREATE INDEX IF NOT EXISTS events_run_idx ON planrun.events (plan, run_id, seq);
CREATE TABLE IF NOT EXISTS planrun.locks (
    plan    text PRIMARY KEY,
    holder  jsonb NOT NULL
);`

// OpenPG connects to the state database and creates planrun's tables if
// they are missing.
func OpenPG(ctx context.Context, url string) (*PGStore, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("state database: %w", err)
	}
	cfg := conn.Config()
	s := &PGStore{url: url, conn: conn, where: fmt.Sprintf("planrun.events in %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)}
	// Two runners creating the tables at once would collide on the catalogs;
	// a transaction-scoped advisory lock serialises them.
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("state database: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('planrun:schema', 0))"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("state database: %w", err)
	}
	if _, err := tx.Exec(ctx, pgSchema); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("state database: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("state database: %w", err)
	}
	return s, nil
}

// Where names the state database (without its password).
func (s *PGStore) Where(string) string { return s.where }

// Close closes the store's connection.
func (s *PGStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.Close(context.Background())
}

// Lock takes a session advisory lock on its own connection: Postgres drops
// it when the holder's connection ends, so a dead runner never blocks a plan.
// The holder is written to planrun.locks for others to read; a row found when
// the advisory lock was free belongs to a runner that died.
func (s *PGStore) Lock(ctx context.Context, plan string, me Holder) (func() error, *Holder, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended('planrun:' || $1, 0))", plan).Scan(&got); err != nil {
		conn.Close(ctx)
		return nil, nil, fmt.Errorf("lock: %w", err)
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
		conn.Close(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("lock: %w", err)
		}
		if h == nil {
			h = &Holder{Host: "another runner (it has not written its name yet)"}
		}
		return nil, nil, &LockedError{Plan: plan, Holder: *h}
	}
	stale, err := readHolder()
	if err != nil {
		conn.Close(ctx)
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	raw, _ := json.Marshal(me) // a Holder always marshals
	if _, err := conn.Exec(ctx, `INSERT INTO planrun.locks (plan, holder) VALUES ($1, $2)
		ON CONFLICT (plan) DO UPDATE SET holder = excluded.holder`, plan, raw); err != nil {
		conn.Close(ctx)
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	release := func() error {
		ctx := context.Background()
		_, err := conn.Exec(ctx, "DELETE FROM planrun.locks WHERE plan = $1", plan)
		if _, uerr := conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtextextended('planrun:' || $1, 0))", plan); err == nil {
			err = uerr
		}
		if cerr := conn.Close(ctx); err == nil {
			err = cerr
		}
		return err
	}
	return release, stale, nil
}

// Create starts a new run record.
func (s *PGStore) Create(ctx context.Context, plan, runID string) (RunWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.Exec(ctx, "INSERT INTO planrun.runs (plan, id) VALUES ($1, $2)", plan, runID); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &pgWriter{s: s, plan: plan, run: runID}, nil
}

// Append continues a run record.
func (s *PGStore) Append(ctx context.Context, plan, runID string) (RunWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int
	if err := s.conn.QueryRow(ctx, "SELECT count(*) FROM planrun.runs WHERE plan = $1 AND id = $2", plan, runID).Scan(&n); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
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
// recorded survives a crash of the runner.
func (w *pgWriter) Record(ev event.Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if _, err := w.s.conn.Exec(context.Background(), "INSERT INTO planrun.events (plan, run_id, event) VALUES ($1, $2, $3)", w.plan, w.run, raw); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (w *pgWriter) Close() error { return nil }

// Runs lists a plan's runs, newest first.
func (s *PGStore) Runs(ctx context.Context, plan string) ([]RunInfo, error) {
	s.mu.Lock()
	rows, err := s.conn.Query(ctx, "SELECT id FROM planrun.runs WHERE plan = $1 ORDER BY id DESC", plan)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("journal: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return summarizeRuns(ctx, s, plan, ids)
}

// Events reads a run's events in order.
func (s *PGStore) Events(ctx context.Context, plan, runID string) ([]event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.conn.Query(ctx, "SELECT event::text FROM planrun.events WHERE plan = $1 AND run_id = $2 ORDER BY seq", plan, runID)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var raw []byte
	for _, l := range lines {
		raw = append(append(raw, l...), '\n')
	}
	return parseEvents(fmt.Sprintf("%s (run %s)", s.where, runID), raw)
}
