package replicate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/steps/steptype"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are cut silently.
const maxIdentLen = 63

// defaultSlotName derives a slot name that two targets of one source do
// not share: the subscription and target database names, and a hash of
// the target's address (two servers may both have a database "app").
func defaultSlotName(sub, targetDB, targetAddr string) string {
	sum := sha256.Sum256([]byte(sub + "\x00" + targetDB + "\x00" + targetAddr))
	suffix := "_" + hex.EncodeToString(sum[:4])
	var b strings.Builder
	for _, c := range strings.ToLower(sub + "_" + targetDB) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	base := b.String()
	if room := maxIdentLen - len(suffix); len(base) > room {
		base = base[:room]
	}
	return base + suffix
}

// checkSlotName enforces PostgreSQL's rule for slot names.
func checkSlotName(name string) error {
	if name == "" || len(name) > maxIdentLen {
		return fmt.Errorf("slot %q: a slot name has 1 to %d characters", name, maxIdentLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("slot %q: a slot name has only lower-case letters, digits and _", name)
		}
	}
	return nil
}

// dropSlot drops a logical slot of the source database. A leftover (a slot
// no subscription of the target names) still in use is someone else's and
// stays; a subscription's slot in use is waited for: its sender exits
// when the subscription goes.
func (r *replication) dropSlot(ctx context.Context, slot string, leftover bool) error {
	if slot == "" {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ours, active bool
		err := r.src.QueryRow(ctx, `SELECT database = current_database() AND slot_type = 'logical', active
			FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&ours, &active)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("source %s: read replication slot %s: %w", r.srcName, slot, err)
		}
		if !ours || (active && leftover) {
			r.env.Logf("left replication slot %s on %s alone: it is in use or belongs to another database", slot, r.srcName)
			return nil
		}
		if !active {
			if _, err := r.src.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "42704" { // gone meanwhile
					return nil
				}
				if !(errors.As(err, &pgErr) && pgErr.Code == "55006") { // not "is active": a real failure
					return fmt.Errorf("source %s: drop replication slot %s: %w", r.srcName, slot, err)
				}
			} else {
				r.out.Dropped = append(r.out.Dropped, "slot "+slot)
				r.env.Logf("dropped replication slot %s on %s", slot, r.srcName)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("source %s: replication slot %s is still in use after 30s: find its sender in pg_stat_replication", r.srcName, slot)
		}
		if err := steptype.Pause(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("source %s: drop replication slot %s: %w", r.srcName, slot, err)
		}
	}
}
