package replicate

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// subscribe creates the subscription (and with it the slot on the source)
// or checks the one there.
func (r *replication) subscribe(ctx context.Context, existing *subInfo) error {
	conninfo, err := r.conninfo()
	if err != nil {
		return err
	}
	if existing != nil {
		return r.reuseSubscription(ctx, existing, conninfo)
	}
	slotExists, err := r.slotExists(ctx)
	if err != nil {
		return err
	}
	if slotExists {
		return fmt.Errorf("source %s already has a replication slot %s, and target %s has no subscription %s using it: another target may use it; "+
			"give another slot, or if it is a leftover, drop it on the source: SELECT pg_drop_replication_slot('%s')", r.srcName, r.slot, r.dstName, r.sub, r.slot)
	}
	if r.copyData {
		if err := r.checkTargetEmpty(ctx); err != nil {
			return err
		}
	}
	if err := r.createSubscription(ctx, conninfo, true); err != nil {
		return err
	}
	if r.copyData {
		r.out.InitialCopy = "subscription"
	}
	return nil
}

// createSubscription creates the subscription: with createSlot, its slot
// too (CREATE SUBSCRIPTION makes it); without, on the slot that exists.
func (r *replication) createSubscription(ctx context.Context, conninfo string, createSlot bool) error {
	var stmt string
	err := r.dst.QueryRow(ctx, `SELECT format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I WITH (slot_name = %L, copy_data = %s, create_slot = %s, enabled = true)',
		$1::text, $2::text, $3::text, $4::text, $5::text, $6::text)`, r.sub, conninfo, r.pub, r.slot, fmt.Sprint(r.copyData), fmt.Sprint(createSlot)).Scan(&stmt)
	if err != nil {
		return fmt.Errorf("target %s: create subscription %s: %w", r.dstName, r.sub, redactErr(err, conninfo))
	}
	if createSlot {
		r.env.Logf("creating subscription %s on %s (slot %s on %s); it waits for transactions open on the source to end", r.sub, r.dstName, r.slot, r.srcName)
	} else {
		r.env.Logf("creating subscription %s on %s, on slot %s on %s", r.sub, r.dstName, r.slot, r.srcName)
	}
	// Not in a transaction block: CREATE SUBSCRIPTION creates the slot
	// through a connection of its own and refuses to run inside one.
	if _, err := r.dst.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("target %s: create subscription %s: %w", r.dstName, r.sub, redactErr(err, conninfo))
	}
	r.createdSub = true
	r.out.Created = append(r.out.Created, "subscription "+r.sub)
	if createSlot {
		r.out.Created = append(r.out.Created, "slot "+r.slot)
	}
	return nil
}

// reuseSubscription checks that a subscription found on a re-run is the
// one asked for, and enables it if it was disabled.
func (r *replication) reuseSubscription(ctx context.Context, s *subInfo, conninfo string) error {
	var diffs []string
	if len(s.publications) != 1 || s.publications[0] != r.pub {
		diffs = append(diffs, fmt.Sprintf("it subscribes to publication(s) %s, not %s", strings.Join(s.publications, ", "), r.pub))
	}
	if s.slot == "" {
		diffs = append(diffs, "it has no slot (slot_name = NONE)")
	} else if r.slotGiven && s.slot != r.slot {
		diffs = append(diffs, fmt.Sprintf("its slot is %s, not %s", s.slot, r.slot))
	}
	// subconninfo is readable by superusers only; others skip this check.
	var current string
	if err := r.dst.QueryRow(ctx, "SELECT subconninfo FROM pg_subscription WHERE oid = $1", s.oid).Scan(&current); err == nil {
		if have, want := pgkit.Where(current), pgkit.Where(conninfo); have != want {
			diffs = append(diffs, fmt.Sprintf("it connects to %s, not %s", have, want))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("target %s already has a subscription %s with other settings: %s. Drop it (action = \"stop\") or name another subscription",
			r.dstName, r.sub, strings.Join(diffs, "; "))
	}
	var slotExists bool
	if err := r.src.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", s.slot).Scan(&slotExists); err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	if !slotExists {
		return fmt.Errorf("subscription %s in target %s uses slot %s, which source %s no longer has: the changes since it went are lost; "+
			"run action = \"stop\", empty the target's tables and start again", r.sub, r.dstName, s.slot, r.srcName)
	}
	if !s.enabled {
		if _, err := r.dst.Exec(ctx, "ALTER SUBSCRIPTION "+pgkit.QuoteIdent(r.sub)+" ENABLE"); err != nil {
			return fmt.Errorf("target %s: enable subscription %s: %w", r.dstName, r.sub, err)
		}
		r.env.Logf("subscription %s was disabled: enabled it", r.sub)
	}
	r.env.Logf("subscription %s on %s already exists with these settings (slot %s)", r.sub, r.dstName, s.slot)
	return nil
}

// checkTargetEmpty refuses target tables that already hold rows: the
// initial copy would add the source's rows to them.
func (r *replication) checkTargetEmpty(ctx context.Context) error {
	var full []string
	batch := &pgx.Batch{}
	for _, t := range r.published {
		batch.Queue("SELECT EXISTS (SELECT FROM ONLY " + t + ")").QueryRow(func(row pgx.Row) error {
			var has bool
			if err := row.Scan(&has); err != nil {
				return fmt.Errorf("read %s: %w", t, err)
			}
			if has {
				full = append(full, t)
			}
			return nil
		})
	}
	if err := r.dst.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("target %s: %w", r.dstName, err)
	}
	if len(full) > 0 {
		return fmt.Errorf("target %s: %d table(s) already hold rows: %s. The initial copy (copy_data = true) would add the source's rows to them "+
			"(duplicate keys): empty them (TRUNCATE), or set copy_data = false if they already hold the source's rows as of now", r.dstName, len(full), strings.Join(full, ", "))
	}
	return nil
}

// dropSubscription drops the subscription; DROP SUBSCRIPTION connects to
// the source to drop the slot too. When it cannot (the target no longer
// reaches the source), the subscription is detached from its slot and
// dropped, and the slot is dropped through planrun's own connection.
func (r *replication) dropSubscription(ctx context.Context, s *subInfo) error {
	_, err := r.dst.Exec(ctx, "DROP SUBSCRIPTION IF EXISTS "+pgkit.QuoteIdent(r.sub))
	if err == nil {
		r.out.Dropped = append(r.out.Dropped, "subscription "+r.sub)
		if s.slot != "" {
			r.out.Dropped = append(r.out.Dropped, "slot "+s.slot)
		}
		r.env.Logf("dropped subscription %s on %s and its slot %s on %s", r.sub, r.dstName, s.slot, r.srcName)
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("target %s: drop subscription %s: %w", r.dstName, r.sub, err)
	}
	r.env.Logf("DROP SUBSCRIPTION %s failed (%v): detaching it from its slot and dropping the slot from here", r.sub, err)
	for _, stmt := range []string{
		"ALTER SUBSCRIPTION " + pgkit.QuoteIdent(r.sub) + " DISABLE",
		"ALTER SUBSCRIPTION " + pgkit.QuoteIdent(r.sub) + " SET (slot_name = NONE)",
		"DROP SUBSCRIPTION " + pgkit.QuoteIdent(r.sub),
	} {
		if _, err2 := r.dst.Exec(ctx, stmt); err2 != nil {
			return fmt.Errorf("target %s: drop subscription %s: %w (after %v)", r.dstName, r.sub, err2, err)
		}
	}
	r.out.Dropped = append(r.out.Dropped, "subscription "+r.sub)
	// The table-sync slots of an initial copy cut short.
	rows, err := r.src.Query(ctx, `SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE $1`, fmt.Sprintf(`pg\_%d\_sync\_%%`, s.oid))
	if err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	syncSlots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("source %s: read replication slots: %w", r.srcName, err)
	}
	for _, slot := range append([]string{s.slot}, syncSlots...) {
		if err := r.dropSlot(ctx, slot, false); err != nil {
			return err
		}
	}
	return nil
}
