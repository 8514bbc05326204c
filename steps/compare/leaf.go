package compare

import (
	"context"
	"fmt"
	"strings"

	"github.com/planrun/planrun/internal/pgkit"
)

// cmpLeafRow is a row of a small range: its key and its hash.
type cmpLeafRow struct {
	vals []*string // nil: NULL
	hash int64
}

func (r cmpLeafRow) id() string {
	parts := make([]string, len(r.vals))
	for i, v := range r.vals {
		if v == nil {
			parts[i] = "\x01"
		} else {
			parts[i] = *v
		}
	}
	return strings.Join(parts, "\x00")
}

// leaf reads the keys and row hashes of a small range on both sides and
// records the rows that differ.
func (t *cmpTableSum) leaf(ctx context.Context, pools [2]*cmpPool, r cmpRange) error {
	var rows [2][]cmpLeafRow
	err := cmpOnBoth(func(i int) error {
		s := t.sides[i]
		sql := fmt.Sprintf("SELECT %s, %s FROM ONLY %s", t.keyText(), s.hash, pgkit.Qualified(s.rel.schema, s.rel.name))
		if c := t.cond(r); c != "" {
			sql += " WHERE " + c
		}
		sql += fmt.Sprintf(" ORDER BY %s LIMIT %d", t.orderBy(), cmpLeafMax+1)
		var err error
		rows[i], err = t.readKeys(ctx, pools[i], s, "read the keys of", sql, true)
		return err
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.chunks += 2
	t.mu.Unlock()
	if len(rows[0]) > cmpLeafMax || len(rows[1]) > cmpLeafMax {
		t.addNote("a key range of more than %d rows could not be split: is the key unique on both sides?", cmpLeafMax)
		return nil
	}
	found, merged := t.diffRows(rows)
	if len(found) == 0 {
		return nil
	}
	t.mu.Lock()
	if len(t.ranges) < cmpMaxKeys {
		t.ranges = append(t.ranges, t.rangeText(r, merged))
	}
	room := cmpMaxKeys - len(t.keys)
	t.keys = append(t.keys, found[:min(room, len(found))]...)
	t.mu.Unlock()
	if len(found) > room {
		t.addNote("more rows differ than the %d named", cmpMaxKeys)
	}
	return nil
}

// diffRows merges two lists of rows in the same key order into one, in
// that order, and lists the rows that differ: keys present on both sides
// with another hash changed, keys only on the source missing on the
// target, keys only on the target extra (a key repeated on one side more
// often than on the other is missing or extra that often).
func (t *cmpTableSum) diffRows(rows [2][]cmpLeafRow) (diff []CompareKey, merged []cmpLeafRow) {
	var left [2]map[string]int // how many rows with the key each side has not merged yet
	for i := range 2 {
		left[i] = map[string]int{}
		for _, r := range rows[i] {
			left[i][r.id()]++
		}
	}
	add := func(r cmpLeafRow, kind string) { diff = append(diff, t.describeKey(r.vals, kind)) }
	src, tgt := rows[0], rows[1]
	for len(src) > 0 || len(tgt) > 0 {
		if len(src) > 0 {
			merged = append(merged, src[0])
		} else {
			merged = append(merged, tgt[0])
		}
		switch {
		case len(src) > 0 && len(tgt) > 0 && src[0].id() == tgt[0].id():
			if src[0].hash != tgt[0].hash {
				add(src[0], "changed")
			}
			left[0][src[0].id()]--
			left[1][tgt[0].id()]--
			src, tgt = src[1:], tgt[1:]
		case len(src) > 0 && left[1][src[0].id()] == 0:
			add(src[0], "missing")
			left[0][src[0].id()]--
			src = src[1:]
		case len(tgt) > 0 && left[0][tgt[0].id()] == 0:
			merged[len(merged)-1] = tgt[0]
			add(tgt[0], "extra")
			left[1][tgt[0].id()]--
			tgt = tgt[1:]
		default:
			// Both sides have both keys, in another order: both sides sort
			// the same way, so this cannot happen; take the source's next.
			add(src[0], "missing")
			left[0][src[0].id()]--
			src = src[1:]
		}
	}
	return diff, merged
}

// describeKey names a row: "id=42", "order_id=7, line=2".
func (t *cmpTableSum) describeKey(vals []*string, kind string) CompareKey {
	k := CompareKey{Kind: kind, Values: make([]string, len(vals))}
	parts := make([]string, len(vals))
	for i, v := range vals {
		k.Values[i] = "NULL"
		if v != nil {
			k.Values[i] = *v
		}
		parts[i] = t.key[i].name + "=" + k.Values[i]
	}
	k.Key = strings.Join(parts, ", ")
	return k
}

// rangeText names a range that differs: "id 1000..1063" for an integer
// range, else from its first to its last key on either side.
func (t *cmpTableSum) rangeText(r cmpRange, merged []cmpLeafRow) string {
	names := make([]string, len(t.key))
	for i, k := range t.key {
		names[i] = k.name
	}
	cols := strings.Join(names, ", ")
	if len(t.key) > 1 {
		cols = "(" + cols + ")"
	}
	if t.arith() && !r.top {
		return fmt.Sprintf("%s %d..%d", cols, r.ilo, r.ihi)
	}
	value := func(r cmpLeafRow) string {
		k := t.describeKey(r.vals, "")
		if len(r.vals) == 1 {
			return k.Values[0]
		}
		return "(" + strings.Join(k.Values, ", ") + ")"
	}
	return fmt.Sprintf("%s %s..%s", cols, value(merged[0]), value(merged[len(merged)-1]))
}
