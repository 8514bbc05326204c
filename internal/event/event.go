// Package event is the vocabulary of a run: what the engine reports, the
// CLI renders and the journal records.
package event

import "time"

// Event types, in the order a run emits them.
const (
	RunStarted       = "run_started"
	StepStarted      = "step_started"
	StepLog          = "step_log"
	StepRetrying     = "step_retrying"
	StepProgress     = "step_progress" // frequent; rendered live, recorded now and then (the CLI samples it)
	StepFinished     = "step_finished"
	RollbackStarted  = "rollback_started"
	RollbackFinished = "rollback_finished"
	RunFinished      = "run_finished"
)

// Status of a step, a rollback or a run.
type Status string

// Statuses.
const (
	StatusSucceeded   Status = "succeeded"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"   // when = false
	StatusCancelled   Status = "cancelled" // interrupted while running
	StatusNotRun      Status = "not_run"   // never started: an earlier failure stopped the run
	StatusReused      Status = "reused"    // completed in an earlier run of the same plan (resume)
	StatusInterrupted Status = "interrupted"
	StatusRolledBack  Status = "rolled_back"
	StatusRunning     Status = "running"    // a run whose process is alive (it holds the lock)
	StatusUnfinished  Status = "unfinished" // a run whose process died before it finished
)

// Event is one thing that happened in a run. The CLI renders events as
// text or JSON lines; the journal records them. Everything in an event is
// already redacted.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Run     string    `json:"run,omitempty"`
	Step    string    `json:"step,omitempty"`
	Uses    string    `json:"uses,omitempty"`
	Status  Status    `json:"status,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Seconds float64   `json:"seconds,omitempty"`
	Message string    `json:"message,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Stack is a panicking step type's stack: recorded for whoever
	// debugs it, not shown on the terminal.
	Stack string `json:"stack,omitempty"`
	// Unchanged: the step failed before it changed anything (step_finished),
	// so there is nothing for its rollback to undo.
	Unchanged  bool           `json:"unchanged,omitempty"`
	Output     any            `json:"output,omitempty"`
	Assertions []AssertResult `json:"assertions,omitempty"`
	Progress   *Progress      `json:"progress,omitempty"`

	// run_started and run_finished
	Plan         string            `json:"plan,omitempty"`
	Hash         string            `json:"hash,omitempty"`
	Steps        []string          `json:"steps,omitempty"`
	Fingerprints map[string]string `json:"fingerprints,omitempty"` // per step, to name what changed before a resume
	Resumed      bool              `json:"resumed,omitempty"`      // this run_started continues an earlier run
	Downtime     *float64          `json:"downtime_seconds,omitempty"`
	By           *Runner           `json:"by,omitempty"`   // who started this run_started's process
	Vars         map[string]any    `json:"vars,omitempty"` // the variables' values; sensitive ones "(sensitive)"
}

// Runner is who started a run (or resumed it, or rolled it back).
type Runner struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// AssertResult is the verdict of one assertion.
type AssertResult struct {
	That     string      `json:"that"`
	Severity string      `json:"severity"`
	Passed   bool        `json:"passed"`
	Message  string      `json:"message,omitempty"`
	Values   []ReadValue `json:"values,omitempty"` // what the condition read, when it failed
	Error    string      `json:"error,omitempty"`  // the condition could not be evaluated
}

// ReadValue is one value an assertion read.
type ReadValue struct {
	Expr  string `json:"expr"`
	Value string `json:"value"`
}

// Progress is how far a long step (copy, restore) has come.
type Progress struct {
	Unit    string         `json:"unit"`            // what Done and Total count: "bytes", "rows"
	Done    int64          `json:"done"`            // so far
	Total   int64          `json:"total,omitempty"` // expected; 0 when unknown
	Rate    float64        `json:"rate,omitempty"`  // units per second, recent
	ETA     float64        `json:"eta_seconds,omitempty"`
	Items   []ProgressItem `json:"items,omitempty"`   // the parts in flight (tables)
	Message string         `json:"message,omitempty"` // the phase: "schema", "data", "indexes"
}

// ProgressItem is one part of a step's work, such as a table being copied.
type ProgressItem struct {
	Name  string `json:"name"`
	Done  int64  `json:"done"`
	Total int64  `json:"total,omitempty"`
	Rows  int64  `json:"rows,omitempty"`
}
