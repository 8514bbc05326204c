package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// summarizeRuns reads and summarizes the runs of a plan a store lists, in
// the order given.
func summarizeRuns(ctx context.Context, s Store, plan string, ids []string) ([]RunInfo, error) {
	var out []RunInfo
	for _, id := range ids {
		events, err := s.Events(ctx, plan, id)
		if err != nil {
			return nil, err
		}
		out = append(out, Summarize(id, events))
	}
	return out, nil
}

// Store keeps the runs of plans and their locks: files beside the plan by
// default, or tables in a Postgres database shared by a team.
type Store interface {
	// Lock takes the plan's lock for this process. It fails at once with a
	// *LockedError when another live process holds it; a lock left by a
	// dead process is taken over, and its holder returned as stale.
	Lock(ctx context.Context, plan string, me Holder) (release func() error, stale *Holder, err error)
	Create(ctx context.Context, plan, runID string) (RunWriter, error)
	Append(ctx context.Context, plan, runID string) (RunWriter, error)
	// Runs lists a plan's runs, newest first.
	Runs(ctx context.Context, plan string) ([]RunInfo, error)
	Events(ctx context.Context, plan, runID string) ([]event.Event, error)
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
	s := fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.Local().Format("2006-01-02 15:04:05"))
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
