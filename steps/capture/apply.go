package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// The target's bookkeeping: one row, updated in the same transaction as
// the changes it accounts for.
//
//   - boundary: the source snapshot whose transactions are all applied
//     (the copy's at first);
//   - epoch_to: the snapshot the epoch under way replays up to, when it
//     took more than one batch (NULL between epochs);
//   - after_pos: the last log position applied of that epoch;
//   - verified, verified_at: the boundary at which the last full verify
//     found the target equal to the source, and when (NULL before one).
//
// touched holds the key of every row a change has been applied to since
// the last full verify (an empty key for a TRUNCATE: the whole table), so
// that the cut-over can check those rows alone. Before the first verify
// it stays empty: the cut-over's narrowed check needs one, and the long
// first catch-up then costs no more.
const targetSchemaSQL = `CREATE SCHEMA %[1]s;
COMMENT ON SCHEMA %[1]s IS 'planrun capture: the replay position; planrun capture action = "stop" removes it';
CREATE TABLE %[1]s.state (
	one bool PRIMARY KEY DEFAULT true CHECK (one),
	boundary text NOT NULL,
	epoch_to text,
	after_pos bigint NOT NULL DEFAULT 0,
	applied bigint NOT NULL DEFAULT 0,
	verified text,
	verified_at timestamptz,
	started timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated timestamptz NOT NULL DEFAULT pg_catalog.now());
CREATE TABLE %[1]s.touched (tab int NOT NULL, key text NOT NULL, PRIMARY KEY (tab, key));
INSERT INTO %[1]s.state (boundary) VALUES (%[2]s);`

// applySQL is how one table's changes are written on the target.
type applySQL struct {
	upsert, delete, truncate string
}

// change is one row of the source's log.
type change struct {
	pos            int64
	tab            int
	op             string
	oldKey, newRow []*string
}

// testHooks lets a test act inside a batch's target transaction, after
// its changes and before its commit (to cut it off there). Keyed by env:
// it never fires in another test.
var testHooks sync.Map // *steptype.Env -> func(applied int)

// beforeSnapshotHooks lets a test write to the source between the
// triggers' creation and start's snapshot.
var beforeSnapshotHooks sync.Map // *steptype.Env -> func()

// prepareTarget builds the statements that write each table on the
// target and finds out whether the target lets its sessions replay as
// a replica.
func (r *run) prepareTarget(ctx context.Context) error {
	var ok bool
	if err := r.dst.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1)", schema).Scan(&ok); err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	if !ok {
		return fmt.Errorf("target %s has no schema %s: capture's start did not finish there; run capture with action = \"stop\", then start again", r.dstName, schema)
	}
	for _, t := range r.tables {
		types, generated, err := readColumns(ctx, r.dst, t)
		if err != nil {
			return fmt.Errorf("target %s: read the columns of %s: %w", r.dstName, t, err)
		}
		if len(types) == 0 {
			return fmt.Errorf("target %s has no table %s: the changes captured for it have nowhere to go", r.dstName, t)
		}
		var missing []string
		for _, c := range t.columns {
			if types[c] == "" || generated[c] {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("target %s: table %s lacks the columns %s (or generates them) that the source writes: the target's definition differs from the source's", r.dstName, t, strings.Join(missing, ", "))
		}
		isKey := map[string]bool{}
		var keyEq, quotedKey []string
		t.keyAt = make([]int, len(t.key))
		for i, k := range t.key {
			t.keyAt[i] = slices.Index(t.columns, k)
			isKey[k] = true
			quotedKey = append(quotedKey, pgkit.QuoteIdent(k))
			keyEq = append(keyEq, fmt.Sprintf("%s = ($1::text[])[%d]::%s", pgkit.QuoteIdent(k), i+1, types[k]))
		}
		var insert, values, set []string
		for i, c := range t.columns {
			insert = append(insert, pgkit.QuoteIdent(c))
			values = append(values, fmt.Sprintf("r[%d]::%s", i+1, types[c]))
			if !isKey[c] {
				set = append(set, pgkit.QuoteIdent(c)+" = EXCLUDED."+pgkit.QuoteIdent(c))
			}
		}
		conflict := "DO NOTHING"
		if len(set) > 0 {
			conflict = "DO UPDATE SET " + strings.Join(set, ", ")
		}
		q := t.qualified()
		// OVERRIDING SYSTEM VALUE: an identity column GENERATED ALWAYS
		// takes the source's value.
		insertRow := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM (SELECT $1::text[] AS r) AS v",
			q, strings.Join(insert, ", "), strings.Join(values, ", "))
		t.apply = &applySQL{
			upsert:   insertRow + fmt.Sprintf(" ON CONFLICT (%s) %s", strings.Join(quotedKey, ", "), conflict),
			delete:   fmt.Sprintf("DELETE FROM %s WHERE %s", q, strings.Join(keyEq, " AND ")),
			truncate: "TRUNCATE ONLY " + q + " CASCADE",
		}
		if len(t.key) == 0 {
			// full_row_match: a row is found by every column's text, one
			// of identical rows at a time.
			var asText []string
			for _, c := range t.columns {
				asText = append(asText, pgkit.QuoteIdent(c)+"::text")
			}
			t.apply.upsert = insertRow
			t.apply.delete = fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = (SELECT ctid FROM %[1]s WHERE ARRAY[%[2]s] = $1::text[] LIMIT 1)",
				q, strings.Join(asText, ", "))
		}
	}
	// A replica session fires neither the target's triggers (the
	// application's own, which already fired on the source and whose
	// effects are replayed too) nor its foreign keys, as logical
	// replication's apply does. It needs a superuser, or the right to set
	// it (rds_superuser has it).
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	_, err = tx.Exec(ctx, "SET LOCAL session_replication_role = replica")
	pgkit.Rollback(ctx, tx)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		r.replicaRole = true
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		r.env.Logf("warning: target %s does not let its role set session_replication_role: the target's own triggers fire on replayed rows, and its foreign keys are checked", r.dstName)
	default:
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	return nil
}

// replayState is the target's bookkeeping row.
type replayState struct {
	boundary string
	epochTo  *string
	afterPos int64
	applied  int64
	verified bool // a full verify is recorded: touched is kept
}

// batchResult is what one batch did.
type batchResult struct {
	applied   int
	epochDone bool
	newEpoch  bool   // this batch took the epoch's end snapshot
	boundary  string // after the batch
}

// applyBatch replays the next batch of the log in one target transaction
// that also moves the bookkeeping. A batch that ends an epoch makes its
// end snapshot the boundary; the source's log rows it covers are then
// deleted (after the commit: a crash before the deletion leaves rows the
// boundary already skips). A new epoch ends at until when given (verify
// replays to the snapshot it compares in), else at the source's current
// snapshot.
func (r *run) applyBatch(ctx context.Context, until string) (*batchResult, error) {
	if err := r.checkDefinitions(ctx); err != nil {
		return nil, err
	}
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", r.dstName, err)
	}
	defer pgkit.Rollback(ctx, tx)
	var st replayState
	if err := tx.QueryRow(ctx, "SELECT boundary, epoch_to, after_pos, applied, verified IS NOT NULL FROM "+pgkit.QuoteIdent(schema)+".state FOR UPDATE").
		Scan(&st.boundary, &st.epochTo, &st.afterPos, &st.applied, &st.verified); err != nil {
		return nil, fmt.Errorf("target %s: read the replay position: %w", r.dstName, err)
	}
	res := &batchResult{}
	to := ""
	if st.epochTo != nil {
		to = *st.epochTo
	} else if until != "" {
		to, res.newEpoch = until, true
	} else {
		if err := r.src.QueryRow(ctx, "SELECT pg_catalog.pg_current_snapshot()::text").Scan(&to); err != nil {
			return nil, fmt.Errorf("source %s: take a snapshot: %w", r.srcName, err)
		}
		res.newEpoch = true
	}
	rows, err := r.src.Query(ctx, `SELECT pos, tab, op::text, old_key, new_row FROM `+pgkit.QuoteIdent(schema)+`.log
		WHERE pos > $3 AND xid < pg_catalog.pg_snapshot_xmax($2::pg_snapshot) AND xid >= pg_catalog.pg_snapshot_xmin($1::pg_snapshot)
			AND pg_catalog.pg_visible_in_snapshot(xid, $2::pg_snapshot) AND NOT pg_catalog.pg_visible_in_snapshot(xid, $1::pg_snapshot)
		ORDER BY pos LIMIT $4`, st.boundary, to, st.afterPos, r.batch)
	if err != nil {
		return nil, fmt.Errorf("source %s: read the change log: %w", r.srcName, err)
	}
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (change, error) {
		var c change
		return c, row.Scan(&c.pos, &c.tab, &c.op, &c.oldKey, &c.newRow)
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: read the change log: %w", r.srcName, err)
	}
	if r.replicaRole {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return nil, fmt.Errorf("target %s: %w", r.dstName, err)
		}
	}
	if err := r.applyChanges(ctx, tx, changes, st.verified); err != nil {
		return nil, err
	}
	if h, ok := testHooks.Load(r.env); ok {
		h.(func(int))(len(changes))
	}
	res.applied = len(changes)
	if len(changes) < r.batch {
		res.epochDone, res.boundary = true, to
		_, err = tx.Exec(ctx, "UPDATE "+pgkit.QuoteIdent(schema)+".state SET boundary = $1, epoch_to = NULL, after_pos = 0, applied = applied + $2, updated = pg_catalog.now()", to, len(changes))
	} else {
		res.boundary = st.boundary
		_, err = tx.Exec(ctx, "UPDATE "+pgkit.QuoteIdent(schema)+".state SET epoch_to = $1, after_pos = $2, applied = applied + $3, updated = pg_catalog.now()",
			to, changes[len(changes)-1].pos, len(changes))
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: move the replay position: %w", r.dstName, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("target %s: commit a batch of %d changes: %w", r.dstName, len(changes), err)
	}
	r.out.Applied += int64(len(changes))
	r.out.AppliedTotal = st.applied + int64(len(changes))
	r.out.Batches++
	r.out.Boundary = res.boundary
	if res.epochDone {
		if _, err := r.src.Exec(ctx, "DELETE FROM "+pgkit.QuoteIdent(schema)+".log WHERE xid < pg_catalog.pg_snapshot_xmax($1::pg_snapshot) AND pg_catalog.pg_visible_in_snapshot(xid, $1::pg_snapshot)", to); err != nil {
			return nil, fmt.Errorf("source %s: delete the applied changes from the log: %w", r.srcName, err)
		}
	}
	return res, nil
}

// applyChanges writes changes on the target, in log order, in one round
// trip, and with keep adds the rows they touch to touched.
func (r *run) applyChanges(ctx context.Context, tx pgx.Tx, changes []change, keep bool) error {
	if len(changes) == 0 {
		return nil
	}
	byID := make(map[int]*table, len(r.tables))
	for _, t := range r.tables {
		byID[t.id] = t
	}
	b := &pgx.Batch{}
	var notFound []string
	// A delete that finds no row means the target had diverged (no
	// replayed history deletes a row twice): counted and named, and the
	// verify or the cut-over's check says what else differs.
	deleteRow := func(t *table, c change) {
		b.Queue(t.apply.delete, c.oldKey).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 {
				notFound = append(notFound, fmt.Sprintf("%s %s (log position %d)", t, describeKey(t.matchColumns(), keyLiteral(c.oldKey)), c.pos))
			}
			return nil
		})
	}
	for _, c := range changes {
		t := byID[c.tab]
		if t == nil {
			return fmt.Errorf("source %s: log position %d names table %d, which capture does not know", r.srcName, c.pos, c.tab)
		}
		switch c.op {
		case "I":
			b.Queue(t.apply.upsert, c.newRow)
		case "U":
			if c.oldKey == nil && len(t.key) == 0 {
				continue // full_row_match: no column changed, nothing to do
			}
			if c.oldKey != nil { // the key changed: the row moves
				deleteRow(t, c)
			}
			b.Queue(t.apply.upsert, c.newRow)
		case "D":
			deleteRow(t, c)
		case "T":
			b.Queue(t.apply.truncate)
		default:
			return fmt.Errorf("source %s: log position %d: unknown operation %q", r.srcName, c.pos, c.op)
		}
	}
	if keep {
		tabs, keys := touchedBy(changes, byID)
		b.Queue("INSERT INTO "+pgkit.QuoteIdent(schema)+".touched (tab, key) SELECT * FROM unnest($1::int[], $2::text[]) AS u(tab, key) ON CONFLICT DO NOTHING", tabs, keys)
	}
	err := tx.SendBatch(ctx, b).Close()
	if len(notFound) > 0 && err == nil {
		r.out.NotFound += int64(len(notFound))
		r.env.Logf("warning: target %s lacked %s that the source changed, so it had diverged: %s", r.dstName, plural.Of(len(notFound), "row"), shortList(notFound, 3))
	}
	if err != nil {
		return fmt.Errorf("target %s: apply %d changes (log positions %d to %d): %w", r.dstName, len(changes), changes[0].pos, changes[len(changes)-1].pos, err)
	}
	return nil
}

// lag measures what the target lacks: the changes committed on the source
// and not yet applied, and the age of the oldest.
func (r *run) lag(ctx context.Context, boundary string) error {
	var seconds *float64
	err := r.src.QueryRow(ctx, `SELECT count(*), extract(epoch FROM pg_catalog.now() - min(at))::float8 FROM `+pgkit.QuoteIdent(schema)+`.log
		WHERE NOT pg_catalog.pg_visible_in_snapshot(xid, $1::pg_snapshot)`, boundary).Scan(&r.out.LagRows, &seconds)
	if err != nil {
		return fmt.Errorf("source %s: measure the lag: %w", r.srcName, err)
	}
	r.out.LagSeconds = 0
	if seconds != nil {
		r.out.LagSeconds = max(*seconds, 0)
	}
	r.out.LagMax = max(r.out.LagMax, r.out.LagSeconds)
	r.progress(false)
	return nil
}

// progress reports the lag, at most twice a second unless forced.
func (r *run) progress(force bool) {
	if r.env == nil || r.env.Progress == nil || (!force && time.Since(r.lastProgress) < progressEvery) {
		return
	}
	r.lastProgress = time.Now()
	rate := 0.0
	if s := time.Since(r.start).Seconds(); s > 0 {
		rate = float64(r.out.Applied) / s
	}
	r.env.Progress(event.Progress{Unit: "rows", Done: r.out.Applied, Total: r.out.Applied + r.out.LagRows, Rate: rate,
		Message: fmt.Sprintf("lag %d rows, %.1fs", r.out.LagRows, r.out.LagSeconds)})
}

// hookApplied makes the batches of a run with env call f inside their
// target transaction, until the returned func is called (tests only).
func hookApplied(env *steptype.Env, f func(applied int)) (remove func()) {
	testHooks.Store(env, f)
	return func() { testHooks.Delete(env) }
}
