package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/steptype"
)

// initial_copy = "copy": start fills the target with planrun's copy step
// instead of the subscription's table-sync workers, the way pgcopydb's
// clone --follow does:
//
//  1. the publication is created (before the slot: pgoutput reads it as of
//     each change it decodes);
//  2. on a replication connection, CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT
//     creates the slot and exports the snapshot of its consistent point:
//     it sees every transaction committed before the point the slot
//     streams from, and none after;
//  3. the copy's coordinating transaction imports that snapshot and exports
//     its own for the workers and pg_dump; the replication connection is
//     closed (the snapshot it exported lives only until then, the slot
//     stays);
//  4. the copy runs as the copy step does: schema, rows, indexes,
//     constraints, sequences, large objects;
//  5. the subscription is created on the slot (create_slot = false,
//     copy_data = false): it streams every change committed after the
//     snapshot, so that no row is missed or applied twice.
//
// A copy cut off by a crash cannot go on: its snapshot ended with the
// process, and the slot streams only what came after it. A later start
// finds the slot without its subscription and says to stop and start
// again on an emptied target; it does not do that itself, since emptying
// the target is the user's call (clean = true makes it so).

// copyOptions checks initial_copy and the copy's arguments.
func (r *replication) copyOptions() error {
	a := r.a
	r.initialCopy = a.InitialCopy
	if r.initialCopy == "" {
		r.initialCopy = "subscription"
	}
	if err := steptype.CheckOneOf("subscription", "copy")(r.initialCopy); err != nil {
		return fmt.Errorf("initial_copy: %w", err)
	}
	if r.initialCopy == "subscription" {
		var given []string
		for _, g := range []struct {
			name string
			set  bool
		}{{"jobs", a.Jobs != nil}, {"index_jobs", a.IndexJobs != nil}, {"split_bytes", a.SplitBytes != ""},
			{"large_objects", a.LargeObjects != nil}, {"maintenance_work_mem", a.MaintenanceWorkMem != nil}, {"clean", a.Clean}} {
			if g.set {
				given = append(given, g.name)
			}
		}
		if len(given) > 0 {
			return fmt.Errorf("%s: only for initial_copy = \"copy\"", strings.Join(given, ", "))
		}
		if a.CopyData != nil {
			r.copyData = *a.CopyData
		}
		return nil
	}
	if a.CopyData != nil && *a.CopyData {
		return errors.New(`copy_data = true contradicts initial_copy = "copy": the copy step copies the rows, the subscription streams what comes after`)
	}
	r.copyData = false
	largeObjects := a.LargeObjects
	if largeObjects == nil {
		lo := len(a.Tables) == 0 // as copy's default: none when tables is given
		largeObjects = &lo
	}
	p, err := copystep.Prepare(&copystep.CopyArgs{Source: a.Source, Target: a.Target, Jobs: a.Jobs, IndexJobs: a.IndexJobs,
		SplitBytes: a.SplitBytes, LargeObjects: largeObjects, MaintenanceWorkMem: a.MaintenanceWorkMem, Clean: a.Clean})
	if err != nil {
		return fmt.Errorf("initial_copy: %w", err)
	}
	r.copy = p
	return nil
}

// startWithCopy creates the publication, the slot with its snapshot, copies
// the source as of that snapshot, and subscribes on the slot. Anything it
// fails at undoes what it created on the source (the target keeps what the
// copy wrote: the error says so).
func (r *replication) startWithCopy(ctx context.Context) error {
	conninfo, err := r.conninfo()
	if err != nil {
		return err
	}
	slotExists, err := r.slotExists(ctx)
	if err != nil {
		return err
	}
	if slotExists {
		return steptype.Refused(fmt.Errorf("source %s has a replication slot %s, and target %s has no subscription %s: an earlier start was cut off after creating it, "+
			"during the initial copy (or another target uses this slot). That copy cannot go on: its snapshot ended with it, and the slot streams only "+
			"what was committed after that snapshot. Run replicate with action = \"stop\" (it drops the slot and the publication), empty the target "+
			"(drop and create the database again, or set clean = true) and start again; nothing was created",
			r.srcName, r.slot, r.dstName, r.sub))
	}
	// What an earlier, failed attempt of this step left: its snapshot is
	// gone, so the copy starts over (into a target the checks find empty).
	if err := copystep.RemoveState(r.env.StateDir); err != nil {
		return err
	}
	if err := r.publish(ctx, true); err != nil {
		return err
	}
	snapshot, release, err := r.createSlotWithSnapshot(ctx)
	if err != nil {
		return r.undoStart(ctx, err)
	}
	defer release()

	from := copystep.From{Snapshot: snapshot, Imported: release,
		// The publication is in the snapshot, but it is the source's means
		// of replicating, not part of the database moved.
		SkipPublication: r.pub}
	if len(r.a.Tables) > 0 {
		from.Tables = make([]string, len(r.wanted))
		for i, t := range r.wanted {
			from.Tables[i] = copystep.ExactTable(t.schema, t.name)
		}
	}
	out, err := r.copy.Run(ctx, r.env, from)
	r.out.Copy = out
	release() // already, unless the copy failed before importing the snapshot
	if err != nil {
		return r.undoStart(ctx, fmt.Errorf("initial copy %s to %s: %w; the target holds part of the copy: empty it (or set clean = true) before starting again",
			r.srcName, r.dstName, err))
	}
	if err := r.createSubscription(ctx, conninfo, false); err != nil {
		return r.undoStart(ctx, err)
	}
	r.out.InitialCopy = "copy"
	return nil
}

// createSlotWithSnapshot creates the slot on a replication connection
// and returns the snapshot it exported, which lives until release closes
// that connection (the slot stays).
func (r *replication) createSlotWithSnapshot(ctx context.Context) (snapshot string, release func(), err error) {
	cfg, err := pgkit.ConnConfig(r.env, r.a.Source, false)
	if err != nil {
		return "", nil, err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return "", nil, fmt.Errorf("source %s: open a replication connection (%s; the role needs REPLICATION, and the server a free max_wal_senders): %w",
			r.srcName, pgkit.Describe(cfg), err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			cctx, cancel := pgkit.CleanupContext(ctx)
			defer cancel()
			_ = conn.Close(cctx)
		})
	}
	r.env.Logf("creating replication slot %s on %s with an exported snapshot; it waits for transactions open on the source to end", r.slot, r.srcName)
	r.slotMayExist = true
	// The slot name passed checkSlotName: only [a-z0-9_]. PostgreSQL 15
	// also takes (SNAPSHOT 'export'); this older form works from 10 on.
	results, err := conn.Exec(ctx, "CREATE_REPLICATION_SLOT "+r.slot+" LOGICAL pgoutput EXPORT_SNAPSHOT").ReadAll()
	if err == nil && (len(results) != 1 || len(results[0].Rows) != 1) {
		err = errors.New("no answer")
	}
	if err != nil {
		release()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // someone else's, made meanwhile
			r.slotMayExist = false
		}
		return "", nil, fmt.Errorf("source %s: create replication slot %s: %w", r.srcName, r.slot, err)
	}
	var point string
	for i, f := range results[0].FieldDescriptions {
		switch f.Name {
		case "consistent_point":
			point = string(results[0].Rows[0][i])
		case "snapshot_name":
			snapshot = string(results[0].Rows[0][i])
		}
	}
	r.out.Created = append(r.out.Created, "slot "+r.slot)
	if snapshot == "" {
		release()
		return "", nil, fmt.Errorf("source %s: create replication slot %s: it exported no snapshot", r.srcName, r.slot)
	}
	r.env.Logf("created replication slot %s on %s at %s: the copy reads the source as of there, the subscription streams what comes after", r.slot, r.srcName, point)
	return snapshot, release, nil
}

// undoStart drops what a failed start with initial_copy = "copy" created
// on the source, and returns cause with what became of it.
func (r *replication) undoStart(ctx context.Context, cause error) error {
	if !r.slotMayExist && !r.createdPub && !r.createdSub {
		return cause
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if r.src.IsClosed() || r.dst.IsClosed() { // cut off by a cancellation
		src, err := pgkit.Connect(cctx, r.env, r.a.Source, false)
		if err != nil {
			return fmt.Errorf("%w; then could not connect to drop the slot and the publication it created (%v): run replicate with action = \"stop\"", cause, err)
		}
		defer pgkit.Close(cctx, src)
		dst, err := pgkit.Connect(cctx, r.env, r.a.Target, false)
		if err != nil {
			return fmt.Errorf("%w; then could not connect to drop the subscription, the slot and the publication it created (%v): run replicate with action = \"stop\"", cause, err)
		}
		defer pgkit.Close(cctx, dst)
		r.src, r.dst = src, dst
	}
	var problems []string
	if r.createdSub {
		if _, err := r.dst.Exec(cctx, "DROP SUBSCRIPTION IF EXISTS "+pgkit.QuoteIdent(r.sub)); err != nil {
			problems = append(problems, fmt.Sprintf("drop subscription %s: %v", r.sub, err))
		}
	}
	if r.slotMayExist {
		if err := r.dropSlot(cctx, r.slot, false); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if r.createdPub {
		if _, err := r.src.Exec(cctx, "DROP PUBLICATION IF EXISTS "+pgkit.QuoteIdent(r.pub)); err != nil {
			problems = append(problems, fmt.Sprintf("drop publication %s: %v", r.pub, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w; then could not undo it (%s): run replicate with action = \"stop\"", cause, strings.Join(problems, "; "))
	}
	r.out.Created, r.out.Dropped = []string{}, []string{}
	return fmt.Errorf("%w; what this start created on the source (slot, publication) was dropped again", cause)
}

// checkTargetForCopy refuses, before anything is created, a target the
// copy cannot fill: without tables, one that is not empty (the copy
// creates the whole schema); with tables, one that has any of them or
// lacks their schemas (the copy then creates only the tables, as copy's
// tables does). clean = true drops what is there instead.
func (r *replication) checkTargetForCopy(ctx context.Context) error {
	if r.copy.Clean() {
		return nil
	}
	if len(r.a.Tables) == 0 {
		rows, err := r.dst.Query(ctx, `
SELECT format('schema %I', n.nspname) FROM pg_namespace n
WHERE n.nspname NOT IN ('public', 'pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
	AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
UNION ALL
SELECT format('%s %I.%I', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
	WHEN 'f' THEN 'foreign table' ELSE 'table' END, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND`+replScope+`
ORDER BY 1`)
		if err != nil {
			return fmt.Errorf("target %s: look for what it holds: %w", r.dstName, err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("target %s: look for what it holds: %w", r.dstName, err)
		}
		if len(found) > 0 {
			return steptype.Refused(fmt.Errorf("target %s is not empty (%s): initial_copy = \"copy\" creates the whole schema, into an empty database. "+
				"Drop and create it again, or set clean = true to drop what the copy brings first; nothing was created", r.dstName, shortList(found, 5)))
		}
		return nil
	}
	var existing, noSchema []string
	batch := &pgx.Batch{}
	for _, t := range r.wanted {
		batch.Queue(`SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1), EXISTS (SELECT FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)`, t.schema, t.name).QueryRow(func(row pgx.Row) error {
			var schema, table bool
			if err := row.Scan(&schema, &table); err != nil {
				return fmt.Errorf("look for %s: %w", t, err)
			}
			if !schema {
				noSchema = append(noSchema, t.String())
			} else if table {
				existing = append(existing, t.String())
			}
			return nil
		})
	}
	if err := r.dst.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	if len(noSchema) > 0 {
		return steptype.Refused(fmt.Errorf("target %s lacks the schema of %s: with tables, the copy creates the tables, not their schemas and types (as copy's tables does); "+
			"create them first, or leave tables out to copy the whole database; nothing was created", r.dstName, shortList(noSchema, 5)))
	}
	if len(existing) > 0 {
		return steptype.Refused(fmt.Errorf("target %s already has %s: initial_copy = \"copy\" creates the tables; drop them, or set clean = true; nothing was created",
			r.dstName, shortList(existing, 5)))
	}
	return nil
}

// shortList joins names, at most n of them.
func shortList(names []string, n int) string {
	if len(names) > n {
		return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
	}
	return strings.Join(names, ", ")
}
