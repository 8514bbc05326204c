package compare

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// This file narrows a table without a key (no primary key, no unique key
// on NOT NULL columns) whose checksums differ. With no key to split by,
// rows are split by bits of their own hash: each level groups the rows of
// a bucket by the next bits (one scan per level and side), and a bucket
// that differs is split again until it holds at most cmpLeafRows rows.
// There, both sides' row hashes are counted and compared as multisets, and
// each hash one side has more of is named by the row's columns: a changed
// row shows as one missing and one extra.

const (
	cmpHashBits      = 12  // bits of the hash a level splits by at most: 4096 buckets
	cmpKeylessValLen = 100 // longer values are cut in the rows named
)

// narrowByHash names the first rows that differ in a table without a key.
func (t *cmpTableSum) narrowByHash(ctx context.Context, pools [2]*cmpPool) error {
	t.addNote("no primary key or unique key on NOT NULL columns: the rows that differ are named by all their columns, and a changed row shows as missing and extra")
	if len(t.cols) == 0 {
		return nil
	}
	rows := max(t.agg[0].rows, t.agg[1].rows)
	if err := t.hashLevel(ctx, pools, "", 0, rows); err != nil {
		return err
	}
	// Found in the order of their hashes: list them missing first, then
	// extra, each by their columns' text.
	t.mu.Lock()
	defer t.mu.Unlock()
	slices.SortStableFunc(t.keys, func(a, b CompareKey) int {
		if c := strings.Compare(b.Kind, a.Kind); c != 0 { // "missing" before "extra"
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return nil
}

// hashLevel splits the rows of cond (rows of them on the side with more) by
// the hash bits from shift on.
func (t *cmpTableSum) hashLevel(ctx context.Context, pools [2]*cmpPool, cond string, shift int, rows int64) error {
	bits := 0
	for bits < cmpHashBits && shift+bits < 64 && rows > int64(cmpLeafRows)<<bits {
		bits++
	}
	if bits == 0 {
		return t.hashLeaf(ctx, pools, cond)
	}
	bucket := func(s *cmpTableSide) string {
		return fmt.Sprintf("((%s) >> %d) & %d", s.hash, shift, (1<<bits)-1)
	}
	aggs, differ, err := t.bucketSums(ctx, pools, bucket, func(s *cmpTableSide) string { return sideCond(cond, s) })
	if err != nil {
		return err
	}
	for _, b := range differ {
		if len(t.keys) >= cmpMaxKeys {
			t.addNote("more rows differ than the %d named", cmpMaxKeys)
			return nil
		}
		// The same condition text on both sides: aggregate and the leaf
		// substitute each side's hash for the placeholder.
		sub := fmt.Sprintf("%s = %d", bucket(&cmpTableSide{hash: cmpHashPlaceholder}), b)
		if cond != "" {
			sub = cond + " AND " + sub
		}
		if err := t.hashLevel(ctx, pools, sub, shift+bits, max(aggs[0][b].rows, aggs[1][b].rows)); err != nil {
			return err
		}
	}
	return nil
}

// cmpHashPlaceholder stands for a side's row hash in a condition shared by
// both sides; sideCond puts the side's own in.
const cmpHashPlaceholder = "\x00hash\x00"

func sideCond(cond string, s *cmpTableSide) string {
	return strings.ReplaceAll(cond, cmpHashPlaceholder, s.hash)
}

// hashLeaf compares the row hashes of a small bucket as multisets and names
// the rows one side has more of.
func (t *cmpTableSum) hashLeaf(ctx context.Context, pools [2]*cmpPool, cond string) error {
	var counts [2]map[int64]int64
	err := cmpOnBoth(func(i int) error {
		s := t.sides[i]
		sql := fmt.Sprintf("SELECT %s, count(*) FROM ONLY %s", s.hash, pgkit.Qualified(s.rel.schema, s.rel.name))
		if cond != "" {
			sql += " WHERE " + sideCond(cond, s)
		}
		sql += " GROUP BY 1"
		counts[i] = map[int64]int64{}
		return pools[i].do(ctx, func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
			if err == nil {
				var h, n int64
				_, err = pgx.ForEachRow(rows, []any{&h, &n}, func() error {
					counts[i][h] = n
					return nil
				})
			}
			if err != nil {
				return fmt.Errorf("read the row hashes of %s in database %s: %w", s.rel.key(), pools[i].side.db.Name, err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.chunks += 2
	t.mu.Unlock()
	// Only as many rows as the report still has room for are read and
	// kept: a million copies of one missing row are one count, not a
	// million entries.
	t.mu.Lock()
	room := cmpMaxKeys - len(t.keys)
	t.mu.Unlock()
	var found []CompareKey
	more := false
sides:
	for _, kind := range []string{"missing", "extra"} {
		side := 0
		if kind == "extra" {
			side = 1
		}
		var hashes []int64
		for h, n := range counts[side] {
			if n > counts[1-side][h] {
				hashes = append(hashes, h)
			}
		}
		slices.Sort(hashes)
		for _, h := range hashes {
			if len(found) >= room {
				more = true
				break sides
			}
			row, err := t.rowWithHash(ctx, pools[side], t.sides[side], cond, h)
			if err != nil {
				return err
			}
			described := t.describeRow(row, kind)
			n := counts[side][h] - counts[1-side][h]
			for ; n > 0 && len(found) < room; n-- {
				found = append(found, described)
			}
			if n > 0 {
				more = true
				break sides
			}
		}
	}
	t.mu.Lock()
	room = cmpMaxKeys - len(t.keys)
	if len(found) > room {
		found, more = found[:max(room, 0)], true
	}
	t.keys = append(t.keys, found...)
	t.mu.Unlock()
	if more {
		t.addNote("more rows differ than the %d named", cmpMaxKeys)
	}
	return nil
}

// rowWithHash reads the columns, as text, of a row with the given hash.
func (t *cmpTableSum) rowWithHash(ctx context.Context, p *cmpPool, s *cmpTableSide, cond string, h int64) ([]*string, error) {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = pgkit.QuoteIdent(c) + "::text"
	}
	where := fmt.Sprintf("(%s) = %d", s.hash, h)
	if cond != "" {
		where = sideCond(cond, s) + " AND " + where
	}
	sql := fmt.Sprintf("SELECT %s FROM ONLY %s WHERE %s LIMIT 1", strings.Join(cols, ", "), pgkit.Qualified(s.rel.schema, s.rel.name), where)
	vals := make([]*string, len(t.cols))
	err := p.do(ctx, func(ctx context.Context, tx pgx.Tx) error {
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := tx.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(dest...); err != nil {
			return fmt.Errorf("read a differing row of %s in database %s: %w", s.rel.key(), p.side.db.Name, err)
		}
		return nil
	})
	return vals, err
}

// describeRow names a row of a table without a key by its columns, long
// values cut.
func (t *cmpTableSum) describeRow(vals []*string, kind string) CompareKey {
	k := CompareKey{Kind: kind, Values: make([]string, len(vals))}
	parts := make([]string, len(vals))
	for i, v := range vals {
		k.Values[i] = "NULL"
		if v != nil {
			k.Values[i] = cmpCut(*v)
		}
		parts[i] = t.cols[i] + "=" + k.Values[i]
	}
	k.Key = strings.Join(parts, ", ")
	return k
}

// cmpCut shortens a long value, on a character boundary.
func cmpCut(s string) string {
	if len(s) <= cmpKeylessValLen {
		return s
	}
	cut := 0
	for i := range s {
		if i > cmpKeylessValLen-3 {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}
