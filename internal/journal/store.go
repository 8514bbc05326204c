package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// runReader reads a run's events and says whether its record ends torn.
type runReader interface {
	readEvents(ctx context.Context, plan, runID string) ([]event.Event, *TornError, error)
}

// summarizeRuns reads and summarizes the runs of a plan a store lists, in
// the order given. A damaged record is confined to its run: listed by id,
// with the damage, while the others still read.
func summarizeRuns(ctx context.Context, s runReader, plan string, ids []string) ([]RunInfo, error) {
	var out []RunInfo
	for _, id := range ids {
		events, torn, err := s.readEvents(ctx, plan, id)
		var damaged *DamagedError
		if errors.As(err, &damaged) {
			out = append(out, RunInfo{ID: id, Damaged: err})
			continue
		}
		if err != nil {
			return nil, err
		}
		info := Summarize(id, events)
		if info.Plan != "" && info.Plan != plan {
			// An older planrun kept plans whose names differ only in
			// unsafe characters ("a b", "a_b") in one directory.
			continue
		}
		info.Torn = torn
		out = append(out, info)
	}
	return out, nil
}

// Store keeps the runs of plans and their locks: files beside the plan by
// default, or tables in a Postgres database shared by a team.
type Store interface {
	// Lock takes the plan's lock for this process. It fails at once with a
	// *LockedError when another live process holds it; a lock left by a
	// dead process is taken over, and its holder returned as stale. The
	// lease says when the lock is lost while held.
	Lock(ctx context.Context, plan string, me Holder) (lease *Lease, stale *Holder, err error)
	Create(ctx context.Context, plan, runID string) (RunWriter, error)
	Append(ctx context.Context, plan, runID string) (RunWriter, error)
	// Runs lists a plan's runs, newest first.
	Runs(ctx context.Context, plan string) ([]RunInfo, error)
	Events(ctx context.Context, plan, runID string) ([]event.Event, error)
	// FingerprintKey is this store's secret key for fingerprints of
	// sensitive values (HMAC-SHA256), 32 random bytes made on first use:
	// a record then tells nothing about a secret to someone without the
	// key, not even to a dictionary.
	FingerprintKey(ctx context.Context) ([]byte, error)
	// Where says where the records are, for messages.
	Where(plan string) string
	Close() error
}

// Holder says who holds a lock.
type Holder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	Run   string    `json:"run,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s", h.PID, h.Host)
	if h.PID == 0 {
		s = h.Host // only a description is known
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.Local().Format("2006-01-02 15:04:05")
	}
	if h.Run != "" {
		s += " (run " + h.Run + ")"
	}
	return s
}

// Me describes this process as a lock holder.
func Me(run string) Holder {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return Holder{Host: host, PID: os.Getpid(), Since: time.Now().UTC(), Run: run}
}

// LockedError says another process holds the plan's lock.
type LockedError struct {
	Plan   string
	Holder Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("plan %q is being applied by %s; wait for it to finish (planrun status shows its progress)", e.Plan, e.Holder)
}

// IsLocked reports whether err is a *LockedError.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// Lease is a plan's lock while held. Lost is closed when the lock is lost
// (the state database's connection dropped, the lock's directory was
// removed): another process may then take it, so the holder must stop what
// the lock protected.
type Lease struct {
	check   func() error // checks at once; nil: Err
	lost    chan struct{}
	lostErr error // why; written before lost is closed
	loseMu  sync.Once

	release func() error
	relOnce sync.Once
	relErr  error
}

func newLease(release func() error) *Lease {
	return &Lease{lost: make(chan struct{}), release: release}
}

// Lost is closed when the lock is lost while held.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Check checks now that the lock is still held, rather than at the next
// periodic check, and returns Err: a run calls it before each step.
func (l *Lease) Check() error {
	if l.check != nil {
		return l.check()
	}
	return l.Err()
}

// Err says why the lock was lost, nil while it is held.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

func (l *Lease) lose(err error) {
	l.loseMu.Do(func() {
		l.lostErr = err
		close(l.lost)
	})
}

// Release gives the lock up; calling it again does nothing.
func (l *Lease) Release() error {
	l.relOnce.Do(func() { l.relErr = l.release() })
	return l.relErr
}

// LockLostError says a held lock was lost.
type LockLostError struct {
	Plan  string
	Where string
	Err   error
}

func (e *LockLostError) Error() string {
	if errors.Is(e.Err, errRemoved) {
		return fmt.Sprintf("lost the lock: %s %v (plan %q)", e.Where, e.Err, e.Plan)
	}
	return fmt.Sprintf("lost the lock on the state database (%s) for plan %q: %v; another apply may take it now", e.Where, e.Plan, e.Err)
}

func (e *LockLostError) Unwrap() error { return e.Err }
