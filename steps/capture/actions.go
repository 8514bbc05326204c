package capture

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	copystep "github.com/planrun/planrun/steps/copy"
	"github.com/planrun/planrun/steps/steptype"
)

// runStart refuses what it cannot capture, installs the capture, copies
// the source in one snapshot and records that snapshot as the boundary.
func (r *run) runStart(ctx context.Context) error {
	if ok, err := capturing(ctx, r.src); err != nil {
		return steptype.Refused(fmt.Errorf("source %s: %w", r.srcName, err))
	} else if ok {
		return steptype.Refused(fmt.Errorf("source %s already has a schema %s: a capture is running, or an earlier one was cut off. Run capture with action = \"stop\" first; nothing was changed", r.srcName, schema))
	}
	if ok, err := capturing(ctx, r.dst); err != nil {
		return steptype.Refused(fmt.Errorf("target %s: %w", r.dstName, err))
	} else if ok && !r.a.Clean {
		return steptype.Refused(fmt.Errorf("target %s has a schema %s from an earlier capture: run capture with action = \"stop\", or set clean = true; nothing was changed", r.dstName, schema))
	}
	tables, err := r.discover(ctx)
	if err != nil {
		return steptype.Refused(err)
	}
	r.tables = tables
	for _, t := range tables {
		r.out.Tables = append(r.out.Tables, t.String())
	}
	if len(r.fullRow) > 0 {
		r.out.FullRow = r.fullRow
		r.env.Logf("full_row_match: %s without a key, matched on the target by every column (each UPDATE and DELETE scans the table there): %s",
			plural.Of(len(r.fullRow), "table"), shortList(r.fullRow, 10))
	}
	if r.a.Clean {
		if _, err := r.dst.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgkit.QuoteIdent(schema)+" CASCADE"); err != nil {
			return steptype.Refused(fmt.Errorf("target %s: clean: drop schema %s: %w", r.dstName, schema, err))
		}
	}
	// An earlier attempt's copy state: its snapshot is gone, the copy
	// starts over.
	if err := copystep.RemoveState(r.env.StateDir); err != nil {
		return steptype.Refused(err)
	}
	if err := r.install(ctx, tables); err != nil {
		return steptype.Refused(fmt.Errorf("%w; nothing was created", err)) // one transaction: rolled back whole
	}
	r.out.Created = append(r.out.Created, "schema "+schema+" on "+r.srcName, fmt.Sprintf("triggers on %s", plural.Of(len(tables), "table")))
	r.env.Logf("capturing %s of %s: %s", plural.Of(len(tables), "table"), r.srcName, shortList(r.out.Tables, 10))
	if err := r.copyInSnapshot(ctx); err != nil {
		return r.undoStart(ctx, err)
	}
	if _, err := r.dst.Exec(ctx, fmt.Sprintf(targetSchemaSQL, pgkit.QuoteIdent(schema), literal(r.out.Boundary)), pgx.QueryExecModeSimpleProtocol); err != nil {
		return r.undoStart(ctx, fmt.Errorf("target %s: record the replay boundary: %w", r.dstName, err))
	}
	r.out.Created = append(r.out.Created, "schema "+schema+" on "+r.dstName)
	return r.lag(ctx, r.out.Boundary)
}

// copyInSnapshot runs the copy in a snapshot exported by a transaction
// that also reads it as a pg_snapshot: the first replay boundary. A
// change is in the copy if and only if its transaction is visible in it.
func (r *run) copyInSnapshot(ctx context.Context) error {
	conn, err := pgkit.Connect(ctx, r.env, r.a.Source, false)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("source %s: begin the snapshot: %w", r.srcName, err)
	}
	defer pgkit.Rollback(ctx, tx)
	if h, ok := beforeSnapshotHooks.Load(r.env); ok {
		h.(func())()
	}
	var exported string
	// One statement: both are the transaction's snapshot.
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot(), pg_catalog.pg_current_snapshot()::text").Scan(&exported, &r.out.Boundary); err != nil {
		return fmt.Errorf("source %s: export a snapshot (a pooler in transaction mode cannot): %w", r.srcName, err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			pgkit.Rollback(ctx, tx)
		}
	}
	from := copystep.From{Snapshot: exported, Imported: release, SkipSchema: schema, SkipTriggerPrefix: triggerPrefix}
	if len(r.a.Tables) > 0 {
		for _, t := range r.tables {
			from.Tables = append(from.Tables, copystep.ExactTable(t.schema, t.name))
		}
	}
	out, err := r.copy.Run(ctx, r.env, from)
	r.out.Copy = out
	release()
	if err != nil {
		return fmt.Errorf("initial copy %s to %s: %w; the target holds part of the copy: empty it (or set clean = true) before starting again", r.srcName, r.dstName, err)
	}
	return nil
}

// undoStart removes what a failed start created on the source.
func (r *run) undoStart(ctx context.Context, cause error) error {
	cctx, cancel := withCleanup(ctx)
	defer cancel()
	if r.src.IsClosed() {
		src, err := pgkit.Connect(cctx, r.env, r.a.Source, false)
		if err != nil {
			return fmt.Errorf("%w; then could not connect to remove the capture (%v): run capture with action = \"stop\"", cause, err)
		}
		defer pgkit.Close(cctx, src)
		r.src = src
	}
	if _, err := r.dropSource(cctx); err != nil {
		return fmt.Errorf("%w; then could not remove the capture (%v): run capture with action = \"stop\"", cause, err)
	}
	r.out.Created = []string{}
	return fmt.Errorf("%w; the capture was removed from the source again", cause)
}

// runCatchUp replays until caught up (or for follow).
func (r *run) runCatchUp(ctx context.Context) error {
	if err := r.registry(ctx); err != nil {
		return err
	}
	if err := r.prepareTarget(ctx); err != nil {
		return err
	}
	deadline := r.start.Add(r.maxWait)
	for {
		res, err := r.applyBatch(ctx, "")
		if err != nil {
			return err
		}
		if res.epochDone {
			if err := r.lag(ctx, res.boundary); err != nil {
				return err
			}
			r.out.CaughtUp = r.out.LagRows == 0 || r.out.LagSeconds < r.maxLag.Seconds()
			if r.follow == 0 && r.out.CaughtUp {
				break
			}
		}
		now := time.Now()
		if r.follow > 0 && now.Sub(r.start) >= r.follow {
			break
		}
		if r.follow == 0 && now.After(deadline) {
			return fmt.Errorf("not caught up after max_wait %s: %d changes behind, the oldest %.1fs old (the writes outpace the replay: raise batch_rows, or catch up while the load is lower)",
				r.maxWait, r.out.LagRows, r.out.LagSeconds)
		}
		if res.applied < r.batch {
			if err := pauseFor(ctx, pollInterval); err != nil {
				return err
			}
		}
	}
	r.progress(true)
	r.env.Logf("caught up: %s applied, %d behind (%.1fs)", plural.Of(r.out.Applied, "change"), r.out.LagRows, r.out.LagSeconds)
	return nil
}

// runCutover fences the writes, drains the log, checks the tables'
// definitions, sets the sequences and checks the data. The fence stays
// on.
func (r *run) runCutover(ctx context.Context) error {
	if err := r.registry(ctx); err != nil {
		return err
	}
	if err := r.prepareTarget(ctx); err != nil {
		return err
	}
	if err := r.checkDefinitions(ctx); err != nil {
		return err
	}
	if r.verify == "changed" {
		at, err := r.verifyRecorded(ctx)
		if err != nil {
			return err
		}
		if at == "" {
			return refuseUnverified(r.dstName)
		}
		r.out.VerifiedAt = at
	}
	fenced := time.Now()
	if r.a.Fence == nil || *r.a.Fence {
		if err := r.fence(ctx); err != nil {
			return err
		}
		fenced = time.Now()
		r.out.Fenced, r.out.FencedAt = true, fenced.UTC().Format(time.RFC3339Nano)
		r.out.Created = append(r.out.Created, fmt.Sprintf("write fence on %s", plural.Of(len(r.tables), "table")))
		r.env.Logf("writes to the %d captured tables of %s are fenced; draining the log", len(r.tables), r.srcName)
	} else {
		r.env.Logf("fence = false: draining the log of %s, whose writers the plan must have stopped", r.srcName)
	}
	deadline := time.Now().Add(r.maxWait)
	drained := false
	for fresh := false; !drained; {
		res, err := r.applyBatch(ctx, "")
		if err != nil {
			return err
		}
		fresh = fresh || res.newEpoch // an epoch that began after the fence
		drained = fresh && res.epochDone
		r.progress(false)
		if !drained && time.Now().After(deadline) {
			return fmt.Errorf("the log was not drained within max_wait %s (%d changes applied meanwhile)", r.maxWait, r.out.Applied)
		}
	}
	if err := r.lag(ctx, r.out.Boundary); err != nil {
		return err
	}
	if r.out.LagRows != 0 {
		if !r.out.Fenced {
			return fmt.Errorf("source %s: %d changes arrived during the drain: with fence = false the application's writers must be stopped first (Heroku's maintenance mode stops the web dynos, not workers or schedulers)", r.srcName, r.out.LagRows)
		}
		return fmt.Errorf("source %s: %d changes are still in the log after the drain: a write got past the fence", r.srcName, r.out.LagRows)
	}
	if err := r.checkDefinitions(ctx); err != nil {
		return err
	}
	if err := r.setSequences(ctx); err != nil {
		return err
	}
	r.out.CaughtUp = true
	r.progress(true)
	drainedIn := time.Since(fenced)
	err := r.verifyAtCutover(ctx)
	r.out.FenceSeconds = time.Since(fenced).Seconds()
	if err != nil {
		return err
	}
	stays := "the fence stays on for the switch"
	if !r.out.Fenced {
		stays = "not fenced (fence = false)"
	}
	r.env.Logf("drained: %s applied, %s set, in %.2fs; %s; %s",
		plural.Of(r.out.Applied, "change"), plural.Of(r.out.Sequences, "sequence"), drainedIn.Seconds(), r.verifiedLine(time.Since(fenced)-drainedIn), stays)
	return nil
}

// fence creates the write fence: a BEFORE statement trigger on every
// captured table that raises.
func (r *run) fence(ctx context.Context) error {
	var b strings.Builder
	for _, t := range r.tables {
		// Dropped first: a cutover run again finds its fence (CREATE OR
		// REPLACE TRIGGER needs PostgreSQL 14). ENABLE ALWAYS: replica
		// sessions are fenced too.
		fence := pgkit.QuoteIdent(triggerPrefix + "_fence")
		fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %[1]s ON %[2]s;\nCREATE TRIGGER %[1]s BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %[2]s FOR EACH STATEMENT EXECUTE FUNCTION %[3]s.fence();\nALTER TABLE %[2]s ENABLE ALWAYS TRIGGER %[1]s;\n",
			fence, t.qualified(), pgkit.QuoteIdent(schema))
	}
	// Creating the fence waits for every transaction that has written to
	// a captured table: once it commits, none is left, and none can start.
	return r.withLocks(ctx, "fence the writes", r.tables, b.String())
}

// setSequences sets every target sequence the source has to the source's
// state (read now that nothing writes), capture's own left out.
func (r *run) setSequences(ctx context.Context) error {
	srcSeqs, err := pgkit.ReadSequences(ctx, r.src, nil)
	if err != nil {
		return fmt.Errorf("source %s: %w", r.srcName, err)
	}
	dstSeqs, err := pgkit.ReadSequences(ctx, r.dst, nil)
	if err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	onTarget := map[string]bool{}
	for _, s := range dstSeqs {
		onTarget[s.Key()] = true
	}
	b := &pgx.Batch{}
	for _, s := range srcSeqs {
		if s.Schema != schema && onTarget[s.Key()] {
			b.Queue("SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)", s.Key(), s.Value, s.Called)
		}
	}
	if b.Len() > 0 {
		if err := r.dst.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("target %s: set the sequences: %w", r.dstName, err)
		}
	}
	r.out.Sequences = b.Len()
	return nil
}

// runUnfence removes the fence: cutover's rollback.
func (r *run) runUnfence(ctx context.Context) error {
	ok, err := capturing(ctx, r.src)
	if err != nil {
		return fmt.Errorf("source %s: %w", r.srcName, err)
	}
	if !ok { // stop removed it with everything else
		return nil
	}
	if err := r.registry(ctx); err != nil {
		return err
	}
	var b strings.Builder
	for _, t := range r.tables {
		fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\n", pgkit.QuoteIdent(triggerPrefix+"_fence"), t.qualified())
	}
	if err := r.withLocks(ctx, "lift the fence", r.tables, b.String()); err != nil {
		return err
	}
	r.out.Dropped = append(r.out.Dropped, fmt.Sprintf("write fence on %s", plural.Of(len(r.tables), "table")))
	r.env.Logf("writes to %s are allowed again", r.srcName)
	return nil
}

// runStop removes the capture from both sides; nothing to remove is fine.
func (r *run) runStop(ctx context.Context) error {
	if ok, _ := capturing(ctx, r.src); ok {
		if err := r.registry(ctx); err != nil {
			return err
		}
	}
	dropped, err := r.dropSource(ctx)
	if err != nil {
		return err
	}
	if dropped {
		r.out.Dropped = append(r.out.Dropped, "schema "+schema+" on "+r.srcName+" (with its log, functions and triggers)")
	}
	ok, err := capturing(ctx, r.dst)
	if err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	if ok {
		if _, err := r.dst.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgkit.QuoteIdent(schema)+" CASCADE"); err != nil {
			return fmt.Errorf("target %s: drop schema %s: %w", r.dstName, schema, err)
		}
		r.out.Dropped = append(r.out.Dropped, "schema "+schema+" on "+r.dstName)
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
