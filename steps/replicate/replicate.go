package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/steptype"
)

// ReplicateArgs are the arguments of replicate.
type ReplicateArgs struct {
	Source         *pgkit.Database `hcl:"source" doc:"The database replicated from: the publication and the replication slot are created there. It needs wal_level = logical."`
	Target         *pgkit.Database `hcl:"target" doc:"The database replicated to: the subscription is created there. With initial_copy = \"subscription\", its tables must exist (restore the schema first) and be empty when copy_data is true; with \"copy\", it must be empty (or clean = true): the copy creates the schema."`
	Action         string          `hcl:"action,optional" doc:"start (default): create the publication and the subscription if absent, wait for the initial copy and for the target to catch up; catch_up: wait until the target has applied everything the source had written when the step began (the cut-over barrier, once writes have stopped); stop: drop the subscription, its slot and the publication (nothing to drop is fine)."`
	Tables         []string        `hcl:"tables,optional" doc:"Replicate only these tables (\"schema.table\", or \"table\" for the search path); default: every table (FOR ALL TABLES; a table created later is published too, but the target must create it and ALTER SUBSCRIPTION ... REFRESH PUBLICATION)."`
	Publication    string          `hcl:"publication,optional" doc:"The publication's name on the source (default \"planrun\")."`
	Subscription   string          `hcl:"subscription,optional" doc:"The subscription's name on the target (default \"planrun\")."`
	Slot           string          `hcl:"slot,optional" doc:"The replication slot's name on the source: slot names are shared by the whole source server, so the default is the subscription and target database names plus a hash of the target's address, such as planrun_app_1a2b3c4d. Lower-case letters, digits and _, at most 63."`
	SourceConninfo string          `hcl:"source_conninfo,optional" doc:"How the target server reaches the source, when that differs from the source's URL (another host name inside the target's network): a libpq connection string or URL. Its password is redacted like the databases'. Default: built from the source's URL."`
	CopyData       *bool           `hcl:"copy_data,optional" doc:"With initial_copy = \"subscription\": let the subscription copy each table's existing rows before streaming changes (default true); false when the target already holds the rows as of the slot's creation."`
	MaxWait        string          `hcl:"max_wait,optional" doc:"How long start and catch_up wait for the target to catch up before failing (default \"1h\"). With initial_copy = \"copy\", the copy itself is not counted (the step's timeout bounds it)."`

	InitialCopy        string  `hcl:"initial_copy,optional" doc:"How start fills the target before streaming: subscription (the default: PostgreSQL's table-sync workers copy the tables, max_sync_workers_per_subscription at a time, whole, into tables whose indexes exist) or copy (planrun's copy step, in the snapshot of the slot it creates: the schema, rows in parallel and in chunks, indexes built after the rows, constraints, sequences, large objects; then the subscription streams what was committed after the snapshot). Used by start only."`
	Jobs               *int    `hcl:"jobs,optional" doc:"initial_copy = \"copy\": how many table chunks are copied at once (default 4), as copy's jobs."`
	IndexJobs          *int    `hcl:"index_jobs,optional" doc:"initial_copy = \"copy\": how many indexes and constraints are built at once (default: jobs), as copy's index_jobs."`
	SplitBytes         string  `hcl:"split_bytes,optional" doc:"initial_copy = \"copy\": tables bigger than this are copied in chunks at once (default \"1GB\"), as copy's split_bytes."`
	LargeObjects       *bool   `hcl:"large_objects,optional" doc:"initial_copy = \"copy\": copy large objects as of the snapshot (default true, false when tables is given), as copy's large_objects. Changes to them after it are not replicated."`
	MaintenanceWorkMem *string `hcl:"maintenance_work_mem,optional" doc:"initial_copy = \"copy\": maintenance_work_mem of each index-building session (default \"256MB\"), as copy's maintenance_work_mem."`
	Clean              bool    `hcl:"clean,optional" doc:"initial_copy = \"copy\": drop the copied tables and the objects of the copied schema that the target already has, as copy's clean = true (a rehearsal run again after a rollback). Without it, start refuses a target that is not empty."`
}

// ReplicateOutput is the output of replicate.
type ReplicateOutput struct {
	Action        string               `json:"action" doc:"What ran: start, catch_up or stop."`
	Publication   string               `json:"publication" doc:"The publication's name on the source."`
	Subscription  string               `json:"subscription" doc:"The subscription's name on the target."`
	Slot          string               `json:"slot" doc:"The replication slot's name on the source."`
	Tables        int                  `json:"tables" doc:"How many tables the subscription replicates (partitions count one each); 0 for stop."`
	LagBytes      int64                `json:"lag_bytes" doc:"How far the target was behind the source at the end, in bytes of WAL (source's current WAL position minus the slot's confirmed position); 0 for stop."`
	CaughtUpLSN   string               `json:"caught_up_lsn" doc:"The source's WAL position the target was waited for and reached (start, catch_up): every transaction the source committed before it is on the target."`
	Seconds       float64              `json:"seconds" doc:"How long the step took."`
	InitialCopy   string               `json:"initial_copy" doc:"How start filled the target: subscription, copy, or \"\" when it did not (a subscription that existed already; catch_up, stop)."`
	Copy          *copystep.CopyOutput `json:"copy" doc:"The initial copy's output, as the copy step's, when initial_copy = \"copy\" ran it; null otherwise."`
	NotReplicated []ReplicateGap       `json:"not_replicated" doc:"What logical replication does not carry and the target will lack unless copied another way (start only)."`
	Created       []string             `json:"created" doc:"What this run created, such as \"publication planrun\" (start)."`
	Dropped       []string             `json:"dropped" doc:"What this run dropped, such as \"slot planrun_app_1a2b3c4d\" (stop)."`
}

// ReplicateGap is one kind of thing logical replication leaves out.
type ReplicateGap struct {
	Kind    string   `json:"kind" doc:"unlogged_tables, large_objects, sequences, materialized_views or schema_changes."`
	Objects []string `json:"objects" doc:"The objects, as schema.name (empty for large objects and schema changes)."`
	Count   int      `json:"count" doc:"How many there are."`
	Note    string   `json:"note" doc:"What to do about it."`
}

// Type is the replicate step type.
var Type = steptype.Def[ReplicateArgs, ReplicateOutput]{
	Summary: "Keeps the target in sync with the source by logical replication (a publication on the source, a subscription on the target) for a zero-downtime move: start waits for the initial copy and catch-up, catch_up is the cut-over barrier, stop (also its rollback) drops them.",
	Fn:      runReplicate,
	ArgChecks: map[string]func(string) error{
		"action":               steptype.CheckOneOf("", "start", "catch_up", "stop"),
		"initial_copy":         steptype.CheckOneOf("", "subscription", "copy"),
		"max_wait":             steptype.CheckDuration,
		"split_bytes":          steptype.CheckSize(1<<20, "1MB"),
		"maintenance_work_mem": steptype.CheckSize(0, ""),
		"slot":                 func(s string) error { return checkSlotNameIfGiven(s) },
	},
}

const (
	defaultReplicateName    = "planrun"
	defaultReplicateMaxWait = time.Hour
	// replicateErrorLimit is how many new worker errors (PostgreSQL 15+
	// counts them) make a wait give up: one may be a blip, several in a
	// row are a loop the subscription never leaves on its own.
	replicateErrorLimit = 3
)

// replication is one run of replicate: its resolved arguments and connections.
type replication struct {
	a                      *ReplicateArgs
	env                    *steptype.Env
	pub, sub, slot         string
	slotGiven              bool
	copyData               bool
	initialCopy            string             // subscription or copy
	copy                   *copystep.Prepared // initial_copy = "copy": the copy, its arguments checked
	maxWait                time.Duration
	src, dst               *pgx.Conn
	srcMajor, dstMajor     int
	start                  time.Time
	out                    *ReplicateOutput
	srcName, dstName       string
	createdPub, createdSub bool
	slotMayExist           bool        // initial_copy = "copy": this run created the slot, or tried to
	wanted                 []replTable // tables, resolved on the source
	published              []string    // the published tables, quoted schema.name
}

func runReplicate(ctx context.Context, env *steptype.Env, a *ReplicateArgs) (*ReplicateOutput, error) {
	r, err := newReplication(env, a)
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	if r.src, err = pgkit.Connect(ctx, env, a.Source, false); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	defer pgkit.Close(ctx, r.src)
	if r.dst, err = pgkit.Connect(ctx, env, a.Target, false); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	defer pgkit.Close(ctx, r.dst)
	if r.srcMajor, err = pgkit.ServerMajor(ctx, r.src); err != nil {
		return nil, fmt.Errorf("replicate: source %s: %w", r.srcName, err)
	}
	if r.dstMajor, err = pgkit.ServerMajor(ctx, r.dst); err != nil {
		return nil, fmt.Errorf("replicate: target %s: %w", r.dstName, err)
	}
	if r.srcMajor < 10 || r.dstMajor < 10 {
		return nil, fmt.Errorf("replicate: logical replication needs PostgreSQL 10 or newer on both sides; source %s runs %d, target %s runs %d",
			r.srcName, r.srcMajor, r.dstName, r.dstMajor)
	}
	switch r.a.Action {
	case "start":
		err = r.runStart(ctx)
	case "catch_up":
		err = r.runCatchUp(ctx)
	case "stop":
		err = r.runStop(ctx)
	}
	r.out.Seconds = time.Since(r.start).Seconds()
	if err != nil {
		return r.out, fmt.Errorf("replicate: %w", err)
	}
	return r.out, nil
}

// checkSlotNameIfGiven checks a slot name; "" picks the default.
func checkSlotNameIfGiven(s string) error {
	if s == "" {
		return nil
	}
	return checkSlotName(s)
}

// newReplication checks the arguments and fills in the defaults.
func newReplication(env *steptype.Env, a *ReplicateArgs) (*replication, error) {
	if a.Source == nil || a.Target == nil {
		return nil, errors.New("give source and target databases")
	}
	if a.Action == "" {
		a.Action = "start"
	}
	if err := steptype.CheckOneOf("start", "catch_up", "stop")(a.Action); err != nil {
		return nil, fmt.Errorf("action: %w", err)
	}
	r := &replication{a: a, env: env, start: time.Now(), srcName: a.Source.Name, dstName: a.Target.Name,
		pub: a.Publication, sub: a.Subscription, slot: a.Slot, slotGiven: a.Slot != "", copyData: true, maxWait: defaultReplicateMaxWait}
	if r.pub == "" {
		r.pub = defaultReplicateName
	}
	if r.sub == "" {
		r.sub = defaultReplicateName
	}
	for _, n := range []struct{ what, name string }{{"publication", r.pub}, {"subscription", r.sub}} {
		if len(n.name) > maxIdentLen {
			return nil, fmt.Errorf("%s %q is longer than %d bytes: PostgreSQL would cut it", n.what, n.name, maxIdentLen)
		}
	}
	if err := r.copyOptions(); err != nil {
		return nil, err
	}
	if a.MaxWait != "" {
		d, err := steptype.ParseDuration(a.MaxWait, false)
		if err != nil {
			return nil, fmt.Errorf("max_wait: %w", err)
		}
		r.maxWait = d
	}
	if r.slotGiven {
		if err := checkSlotName(r.slot); err != nil {
			return nil, err
		}
	} else {
		cfg, err := pgkit.ConnConfig(env, a.Target, false)
		if err != nil {
			return nil, err
		}
		r.slot = defaultSlotName(r.sub, cfg.Database, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	}
	if a.SourceConninfo != "" {
		if err := pgkit.CheckSyntax(a.SourceConninfo); err != nil {
			return nil, fmt.Errorf("source_conninfo: %w", err)
		}
	}
	r.out = &ReplicateOutput{Action: a.Action, Publication: r.pub, Subscription: r.sub, Slot: r.slot,
		NotReplicated: []ReplicateGap{}, Created: []string{}, Dropped: []string{}}
	return r, nil
}

// runStart creates what is missing, then waits for the initial copy and
// for the target to catch up.
func (r *replication) runStart(ctx context.Context) error {
	if err := r.checkSource(ctx); err != nil {
		return err
	}
	existing, err := r.subscription(ctx)
	if err != nil {
		return err
	}
	if existing != nil && !r.slotGiven && existing.slot != "" {
		r.slot, r.out.Slot = existing.slot, existing.slot // a re-run adopts the slot it made
	}
	if r.initialCopy == "copy" && existing == nil {
		if err := r.startWithCopy(ctx); err != nil {
			return err
		}
		if err := r.gaps(ctx); err != nil {
			return err
		}
		return r.waitCaughtUp(ctx)
	}
	if err := r.publish(ctx, false); err != nil {
		return err
	}
	if err := r.subscribe(ctx, existing); err != nil {
		if r.createdPub {
			// A failed first start leaves nothing behind: the publication
			// made a moment ago goes too.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, derr := r.src.Exec(cctx, "DROP PUBLICATION IF EXISTS "+pgkit.QuoteIdent(r.pub)); derr != nil {
				r.env.Logf("could not drop publication %s again: %v", r.pub, derr)
			} else {
				r.out.Created = []string{}
			}
		}
		return err
	}
	if err := r.gaps(ctx); err != nil {
		return err
	}
	return r.waitCaughtUp(ctx)
}

// runCatchUp waits until the target has applied what the source had
// written when it began.
func (r *replication) runCatchUp(ctx context.Context) error {
	s, err := r.subscription(ctx)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("there is no subscription %s in target %s: run replicate with action = \"start\" first", r.sub, r.dstName)
	}
	if !s.enabled {
		return fmt.Errorf("subscription %s in target %s is disabled: it would never catch up (ALTER SUBSCRIPTION %s ENABLE)", r.sub, r.dstName, pgkit.QuoteIdent(r.sub))
	}
	if s.slot == "" {
		return fmt.Errorf("subscription %s in target %s has no replication slot (slot_name = NONE)", r.sub, r.dstName)
	}
	r.slot, r.out.Slot = s.slot, s.slot
	return r.waitCaughtUp(ctx)
}

// runStop drops the subscription (and with it its slot on the source) and
// the publication. Nothing to drop is fine: stop is also start's rollback,
// which may run after a start that created nothing.
func (r *replication) runStop(ctx context.Context) error {
	s, err := r.subscription(ctx)
	if err != nil {
		return err
	}
	if s != nil {
		if s.slot != "" {
			r.slot, r.out.Slot = s.slot, s.slot
		}
		if err := r.dropSubscription(ctx, s); err != nil {
			return err
		}
	}
	// A slot left by a subscription dropped without it (or by a crash
	// between creating the slot and the subscription).
	if err := r.dropSlot(ctx, r.slot, s == nil); err != nil {
		return err
	}
	return r.dropPublication(ctx)
}

// checkSource refuses a source that cannot publish.
func (r *replication) checkSource(ctx context.Context) error {
	var walLevel string
	var inRecovery bool
	if err := r.src.QueryRow(ctx, "SELECT current_setting('wal_level'), pg_is_in_recovery()").Scan(&walLevel, &inRecovery); err != nil {
		return fmt.Errorf("source %s: read wal_level: %w", r.srcName, err)
	}
	if walLevel != "logical" {
		return fmt.Errorf("source %s has wal_level = %s; logical replication needs wal_level = logical "+
			"(set it in postgresql.conf and restart; on AWS RDS or Aurora set rds.logical_replication = 1 in the parameter group and reboot; "+
			"on Cloud SQL set the flag cloudsql.logical_decoding = on)", r.srcName, walLevel)
	}
	if inRecovery {
		return fmt.Errorf("source %s is a standby (in recovery): publish from the primary", r.srcName)
	}
	return nil
}

// slotExists reads whether the slot is on the source and, when it is not,
// makes sure there is room for it.
func (r *replication) slotExists(ctx context.Context) (bool, error) {
	var exists bool
	var used, max int
	err := r.src.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1),
		(SELECT count(*) FROM pg_replication_slots), current_setting('max_replication_slots')::int`, r.slot).Scan(&exists, &used, &max)
	if err != nil {
		return false, fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	if !exists && used >= max {
		return false, fmt.Errorf("source %s has no free replication slot (%d of max_replication_slots = %d in use): raise max_replication_slots (a restart) or drop unused slots",
			r.srcName, used, max)
	}
	return exists, nil
}

// subInfo is an existing subscription.
type subInfo struct {
	oid          uint32
	enabled      bool
	slot         string // "" for slot_name = NONE
	publications []string
}

// subscription reads the subscription in the target database, nil if none.
func (r *replication) subscription(ctx context.Context) (*subInfo, error) {
	var s subInfo
	var slot *string
	err := r.dst.QueryRow(ctx, `SELECT s.oid, s.subenabled, s.subslotname::text, s.subpublications::text[]
		FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
		WHERE d.datname = current_database() AND s.subname = $1`, r.sub).Scan(&s.oid, &s.enabled, &slot, &s.publications)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: read subscription %s: %w", r.dstName, r.sub, err)
	}
	if slot != nil {
		s.slot = *slot
	}
	return &s, nil
}
