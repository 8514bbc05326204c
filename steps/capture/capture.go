package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/compare"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/steptype"
)

// CaptureArgs are the arguments of capture.
type CaptureArgs struct {
	Source       *pgkit.Database `hcl:"source" doc:"The database captured from. Its role needs only to own the captured tables (no superuser, no REPLICATION, no extension): it creates the schema planrun_capture (the change log, the trigger functions) and triggers on the tables. PostgreSQL 13 or newer."`
	Target       *pgkit.Database `hcl:"target" doc:"The database the changes are replayed into. start fills it with planrun's copy (it must be empty, or clean = true); the replay position is kept there, in the schema planrun_capture. Its role should be allowed to SET session_replication_role (a superuser, rds_superuser), so that the target's own triggers and foreign keys do not fire on replayed rows; without it they do, and a warning says so."`
	Action       string          `hcl:"action,optional" doc:"start (default): refuse tables without a primary key or a unique key on NOT NULL columns, create the log and the triggers, copy the source in one snapshot and record it as the replay boundary; catch_up: replay the log until the target is caught up (lag under max_lag) or, with follow, keep replaying for that long; verify: while the application writes, replay up to a snapshot of the source, checksum every captured table on both sides (the source in that snapshot) and record the match, from which cutover checks only the rows changed since; cutover: fence the source's writes on the captured tables (a trigger that raises), replay what is left, check the tables' definitions, set the target's sequences and check the data as verify says, leaving the fence on for the switch; unfence: remove the fence (cutover's rollback); stop: drop the triggers, the functions, the log and the schema on the source and the bookkeeping on the target (start's rollback; nothing to drop is fine)."`
	Tables       []string        `hcl:"tables,optional" doc:"start: capture (and copy) only these tables, \"schema.table\" or \"table\" for the search path; default: every table the source role owns. The target must then have their schemas."`
	BatchRows    *int            `hcl:"batch_rows,optional" doc:"How many changes are applied in one target transaction (default 5000)."`
	MaxLag       string          `hcl:"max_lag,optional" doc:"catch_up: caught up once the oldest change not yet applied is younger than this (default \"1s\"); an empty log is always caught up."`
	Follow       string          `hcl:"follow,optional" doc:"catch_up: keep replaying for this long, then return (caught up or not), instead of returning once caught up: a sync running beside the plan's other steps."`
	MaxWait      string          `hcl:"max_wait,optional" doc:"catch_up and cutover: fail if not caught up (drained, for cutover) within this (default \"1h\" for catch_up, \"5m\" for cutover)."`
	LockTimeout  string          `hcl:"lock_timeout,optional" doc:"start, cutover, unfence and stop: how long creating or dropping the triggers may wait for each table's lock, held by the application's open transactions (default \"200ms\", below deadlock_timeout, so that a deadlock with a writer costs this step a try and the writer nothing); tried again for 30s, or 10 times this. While it waits, new writes to that table queue behind it."`
	Jobs         *int            `hcl:"jobs,optional" doc:"start: how many table chunks the initial copy copies at once (default 4), as copy's jobs; verify and cutover: how many checksum queries run at once on each side, as compare's jobs."`
	Fence        *bool           `hcl:"fence,optional" doc:"cutover: fence the writes with a trigger on every captured table (default true). false when the plan has stopped every writer itself (the platform's maintenance mode, scaled-down workers): cutover then drains and fails if changes still arrive."`
	Verify       string          `hcl:"verify,optional" doc:"cutover: how the data is checked with writes fenced, after the drain: changed (default): only the rows changed since the last verify action, each read by key on both sides (a table truncated since is checksummed whole), which needs a verify recorded since start (else cutover refuses before fencing); full: a checksum of every captured table; none: no data check (the plan checks it itself)."`
	FullRowMatch bool            `hcl:"full_row_match,optional" doc:"start: capture tables without a primary key or a unique key on NOT NULL columns too (refused by default), as logical replication's REPLICA IDENTITY FULL does: an UPDATE or DELETE finds its row on the target by every column's text (one of identical rows), which scans the table: keep such tables small. Their every UPDATE and DELETE logs the whole old row, and the cut-over checks them whole."`
	Clean        bool            `hcl:"clean,optional" doc:"start: let the copy drop the copied tables that the target has first (a rehearsal run again), as copy's clean = true, and drop an earlier run's bookkeeping on the target."`
}

// CaptureOutput is the output of capture.
type CaptureOutput struct {
	Action       string                 `json:"action" doc:"What ran: start, catch_up, cutover, unfence or stop."`
	Tables       []string               `json:"tables" doc:"The captured tables, schema.name."`
	Applied      int64                  `json:"applied" doc:"How many changes this run applied to the target."`
	AppliedTotal int64                  `json:"applied_total" doc:"How many changes have been applied since start."`
	NotFound     int64                  `json:"not_found" doc:"How many replayed DELETEs (and UPDATEs that moved a row to another key) found no row on the target: it had diverged (a write to the target, say); each is named in the log, and verify or cutover's check finds what else differs."`
	Batches      int                    `json:"batches" doc:"How many target transactions this run committed."`
	LagRows      int64                  `json:"lag_rows" doc:"Changes committed on the source and not yet applied, at the end."`
	LagSeconds   float64                `json:"lag_seconds" doc:"Age of the oldest of them (0 when none)."`
	LagMax       float64                `json:"lag_max_seconds" doc:"The largest lag in seconds measured during this run (after each epoch: catch_up, cutover)."`
	Boundary     string                 `json:"boundary" doc:"The replay boundary at the end: the source snapshot (pg_snapshot) whose transactions are all on the target."`
	CaughtUp     bool                   `json:"caught_up" doc:"Whether the lag was under max_lag at the end (cutover: drained, always true on success)."`
	Fenced       bool                   `json:"fenced" doc:"Whether the source's writes on the captured tables are fenced at the end."`
	FencedAt     string                 `json:"fenced_at" doc:"cutover: when the fence took hold (RFC 3339); writes fail from then until unfence or stop."`
	FenceSeconds float64                `json:"fence_seconds" doc:"cutover: how long the step ran with writes fenced (drain, checks, sequences), or with fence = false from the start of the drain; the window lasts on until the switch."`
	Sequences    int                    `json:"sequences" doc:"cutover: how many target sequences were set from the source."`
	Verify       string                 `json:"verify" doc:"verify: full; cutover: what its data check was (changed, full or none); empty otherwise."`
	VerifiedRows int64                  `json:"verified_rows" doc:"verify and cutover: how many source rows the data check compared (changed: the rows changed since the last verify)."`
	VerifiedAt   string                 `json:"verified_at" doc:"verify: when the match was recorded; cutover with verify = changed: when the verify its check starts from was recorded (RFC 3339)."`
	Differing    []string               `json:"differing" doc:"verify and cutover: the first rows found to differ (at most 10), \"schema.table key (missing|extra|changed)\"; the step fails when there is one."`
	Checksum     *compare.CompareOutput `json:"checksum" doc:"verify, and cutover's whole-table checks: the comparison's output, as the compare step's; null otherwise."`
	Seconds      float64                `json:"seconds" doc:"How long the step took."`
	FullRow      []string               `json:"full_row" doc:"start: the tables without a key captured with full_row_match, whose rows are matched on the target by every column."`
	Copy         *copystep.CopyOutput   `json:"copy" doc:"start: the initial copy's output, as the copy step's; null otherwise."`
	Created      []string               `json:"created" doc:"What this run created."`
	Dropped      []string               `json:"dropped" doc:"What this run dropped."`
}

// Type is the capture step type.
var Type = steptype.Def[CaptureArgs, CaptureOutput]{
	Summary: "Keeps the target in sync with a source that cannot publish (Heroku) by triggers and a change log that the table owner can create: start captures and copies, catch_up replays, cutover fences writes and drains, stop (also its rollback) removes everything.",
	Fn:      runCapture,
	ArgChecks: map[string]func(string) error{
		"action":       steptype.CheckOneOf("", "start", "catch_up", "verify", "cutover", "unfence", "stop"),
		"verify":       steptype.CheckOneOf("", "changed", "full", "none"),
		"max_lag":      steptype.CheckDuration,
		"follow":       steptype.CheckDuration,
		"max_wait":     steptype.CheckDuration,
		"lock_timeout": steptype.CheckDuration,
	},
}

const (
	// schema is capture's own schema, on both sides.
	schema = "planrun_capture"
	// triggerPrefix starts the name of every trigger capture creates, so
	// that the copy leaves them out.
	triggerPrefix   = "planrun_capture"
	defaultBatch    = 5000
	lockBudget      = 30 * time.Second
	pollInterval    = 100 * time.Millisecond
	progressEvery   = 500 * time.Millisecond
	minServerMajor  = 13 // pg_current_xact_id, pg_snapshot
	defaultLockWait = 200 * time.Millisecond
)

// run is one run of capture.
type run struct {
	a                 *CaptureArgs
	env               *steptype.Env
	src, dst          *pgx.Conn
	batch             int
	maxLag, follow    time.Duration
	maxWait, lockWait time.Duration
	out               *CaptureOutput
	start             time.Time
	srcName, dstName  string
	copy              *copystep.Prepared
	replicaRole       bool // the target's apply sessions run as session_replication_role = replica
	lastProgress      time.Time
	tables            []*table // the captured tables, from the source's registry
	appliedAtRunStart int64
	verify            string   // cutover's data check
	fullRow           []string // start: the tables matched by every column
}

func runCapture(ctx context.Context, env *steptype.Env, a *CaptureArgs) (*CaptureOutput, error) {
	r, err := newRun(env, a)
	if err != nil {
		return nil, steptype.Refused(fmt.Errorf("capture: %w", err))
	}
	if r.src, err = pgkit.Connect(ctx, env, a.Source, false); err != nil {
		return nil, steptype.Refused(fmt.Errorf("capture: %w", err))
	}
	defer pgkit.Close(ctx, r.src)
	if r.dst, err = pgkit.Connect(ctx, env, a.Target, false); err != nil {
		return nil, steptype.Refused(fmt.Errorf("capture: %w", err))
	}
	defer pgkit.Close(ctx, r.dst)
	major, err := pgkit.ServerMajor(ctx, r.src)
	if err != nil {
		return nil, steptype.Refused(fmt.Errorf("capture: source %s: %w", r.srcName, err))
	}
	if major < minServerMajor {
		return nil, steptype.Refused(fmt.Errorf("capture: source %s runs PostgreSQL %d; capture needs %d or newer (pg_current_xact_id, pg_snapshot)", r.srcName, major, minServerMajor))
	}
	switch a.Action {
	case "start":
		err = r.runStart(ctx)
	case "catch_up":
		err = r.runCatchUp(ctx)
	case "verify":
		err = r.runVerify(ctx)
	case "cutover":
		err = r.runCutover(ctx)
	case "unfence":
		err = r.runUnfence(ctx)
	case "stop":
		err = r.runStop(ctx)
	}
	r.out.Seconds = time.Since(r.start).Seconds()
	if err != nil {
		return r.out, fmt.Errorf("capture: %w", err)
	}
	return r.out, nil
}

// newRun checks the arguments and fills in the defaults.
func newRun(env *steptype.Env, a *CaptureArgs) (*run, error) {
	if a.Source == nil || a.Target == nil {
		return nil, errors.New("give source and target databases")
	}
	if a.Action == "" {
		a.Action = "start"
	}
	if err := steptype.CheckOneOf("start", "catch_up", "verify", "cutover", "unfence", "stop")(a.Action); err != nil {
		return nil, fmt.Errorf("action: %w", err)
	}
	r := &run{a: a, env: env, batch: defaultBatch, maxLag: time.Second, lockWait: defaultLockWait, start: time.Now(),
		srcName: a.Source.Name, dstName: a.Target.Name, verify: a.Verify,
		out: &CaptureOutput{Action: a.Action, Tables: []string{}, Created: []string{}, Dropped: []string{}, Differing: []string{}, FullRow: []string{}}}
	switch {
	case a.Fence != nil && a.Action != "cutover":
		return nil, errors.New(`fence: only for action = "cutover"`)
	case a.Verify != "" && a.Action != "cutover":
		return nil, errors.New(`verify: only for action = "cutover" (action = "verify" is the full check that runs while the application writes)`)
	case a.Action == "verify":
		r.out.Verify = "full"
	case a.Action == "cutover":
		if r.verify == "" {
			r.verify = "changed"
		}
		if err := steptype.CheckOneOf("changed", "full", "none")(r.verify); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	if a.Action == "cutover" {
		r.maxWait = 5 * time.Minute
	} else {
		r.maxWait = time.Hour
	}
	if a.BatchRows != nil {
		if *a.BatchRows < 1 {
			return nil, fmt.Errorf("batch_rows must be at least 1, not %d", *a.BatchRows)
		}
		r.batch = *a.BatchRows
	}
	for _, d := range []struct {
		name, value string
		into        *time.Duration
	}{{"max_lag", a.MaxLag, &r.maxLag}, {"follow", a.Follow, &r.follow}, {"max_wait", a.MaxWait, &r.maxWait}, {"lock_timeout", a.LockTimeout, &r.lockWait}} {
		if d.value == "" {
			continue
		}
		v, err := steptype.ParseDuration(d.value, d.name == "max_lag")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.into = v
	}
	if len(a.Tables) > 0 && a.Action != "start" {
		return nil, errors.New("tables: only for action = \"start\" (the other actions work on what start captured)")
	}
	if a.Action == "start" {
		p, err := copystep.Prepare(&copystep.CopyArgs{Source: a.Source, Target: a.Target, Jobs: a.Jobs, Clean: a.Clean})
		if err != nil {
			return nil, fmt.Errorf("initial copy: %w", err)
		}
		r.copy = p
	} else if a.Clean || a.FullRowMatch {
		return nil, errors.New("clean, full_row_match: only for action = \"start\"")
	} else if a.Jobs != nil && a.Action != "verify" && a.Action != "cutover" {
		return nil, errors.New("jobs: only for action = \"start\", \"verify\" and \"cutover\"")
	}
	if a.Jobs != nil && *a.Jobs < 1 {
		return nil, fmt.Errorf("jobs must be at least 1, not %d", *a.Jobs)
	}
	return r, nil
}

// withCleanup gives a statement that undoes something a way to run after
// a cancellation, bounded.
func withCleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}
