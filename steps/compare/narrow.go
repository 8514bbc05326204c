package compare

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// This file narrows a table whose checksums differ to its first differing
// rows. The table is split into key ranges, each range checksummed on both
// sides (one scan grouping rows by range: rows are never sorted), and every
// range that differs is split again, cmpFanout ways, until it holds at most
// cmpLeafRows rows; then the (key, row hash) pairs of that range are read
// from both sides, in key order, and diffed. Ranges are explored in key
// order and the search stops at cmpMaxKeys differing rows.
//
// Both sides must put every row in the same range, so keys are compared the
// same way on both: integer keys arithmetically (a range of a whole table
// is split evenly between the smallest and the largest key), keys of
// built-in types by value, in their own type, and every other key (text,
// enums, domains...) by its text, byte by byte (COLLATE "C"), which no
// collation setting changes. The boundaries of non-integer ranges are keys
// sampled from the side with more rows in the range. Comparing text keys
// in "C" means their index cannot serve range conditions: narrowing a huge
// text-keyed table scans it once per level.

// cmpKeyCol is a key column as narrowing compares it.
type cmpKeyCol struct {
	name    string
	integer bool   // int2, int4 or int8 on both sides: split arithmetically
	cast    string // the built-in type its values are compared as; "" to compare their text byte by byte
}

// cmpKeyCast maps built-in types that compare the same on any server to the
// type their values are cast to in literals.
var cmpKeyCast = map[uint32]string{
	20: "int8", 21: "int8", 23: "int8", 1700: "numeric", 700: "float4", 701: "float8", 2950: "uuid",
	1082: "date", 1114: "timestamp", 1184: "timestamptz", 1083: "time", 16: "bool", 26: "oid", 17: "bytea",
}

// cmpChooseKey picks the source's key, else the target's, if its columns
// are on both sides.
func cmpChooseKey(table string, sides [2]*cmpSide, cols [2]map[string]cmpColumn) []cmpKeyCol {
	for _, s := range sides {
		names := s.cat.keys[table]
		var key []cmpKeyCol
		for _, n := range names {
			src, okS := cols[0][n]
			tgt, okT := cols[1][n]
			if !okS || !okT {
				key = nil
				break
			}
			k := cmpKeyCol{name: n}
			if c := cmpKeyCast[src.typid]; c != "" && c == cmpKeyCast[tgt.typid] {
				k.cast, k.integer = c, c == "int8"
			}
			key = append(key, k)
		}
		if len(key) > 0 {
			return key
		}
	}
	return nil
}

// order is the SQL the column is compared and sorted by.
func (k cmpKeyCol) order() string {
	if k.cast != "" {
		return pgkit.QuoteIdent(k.name)
	}
	return "(" + pgkit.QuoteIdent(k.name) + `::text) COLLATE "C"`
}

// literal quotes a value read as text for comparing with order().
func (k cmpKeyCol) literal(v string) string {
	l := "'" + strings.ReplaceAll(v, "'", "''") + "'"
	if k.cast != "" {
		l += "::" + k.cast
	}
	return l
}

// cmpRange is a key range of a table.
type cmpRange struct {
	top      bool     // the whole table: rows with a NULL key column too
	ilo, ihi int64    // integer keys: the bounds, both included
	lo, hi   []string // other keys: lo included, hi excluded; nil when unbounded
	rows     [2]int64 // rows in it on each side
}

// arith reports whether the table's ranges are integer ranges.
func (t *cmpTableSum) arith() bool { return len(t.key) == 1 && t.key[0].integer }

// cmpNarrow finds the first differing rows of a table whose checksums differ.
func cmpNarrow(ctx context.Context, pools [2]*cmpPool, t *cmpTableSum, o *compareOptions) error {
	if len(t.key) == 0 {
		return t.narrowByHash(ctx, pools)
	}
	top := cmpRange{top: true, rows: [2]int64{t.agg[0].rows, t.agg[1].rows}}
	parts := int(min(cmpMaxParts, max(cmpFanout, (max(top.rows[0], top.rows[1])+o.chunkRows-1)/o.chunkRows)))
	if err := t.narrow(ctx, pools, top, parts, o); err != nil {
		return err
	}
	if len(t.keys) == 0 {
		t.addNote("the rows that differ could not be named")
	}
	return nil
}

func (t *cmpTableSum) narrow(ctx context.Context, pools [2]*cmpPool, r cmpRange, parts int, o *compareOptions) error {
	if max(r.rows[0], r.rows[1]) <= cmpLeafRows {
		return t.leaf(ctx, pools, r)
	}
	buckets, sub, err := t.split(ctx, pools, r, parts, o)
	if err != nil || buckets[0] == "" {
		if err == nil {
			err = t.leaf(ctx, pools, r) // cannot be split further
		}
		return err
	}
	cond := t.cond(r)
	aggs, differ, err := t.bucketSums(ctx, pools,
		func(s *cmpTableSide) string { return buckets[s.side] },
		func(*cmpTableSide) string { return cond })
	if err != nil {
		return err
	}
	for _, b := range differ {
		if b < 0 {
			t.addNote("rows whose key has a NULL column differ; they have no key to name")
			continue
		}
		if len(t.keys) >= cmpMaxKeys {
			t.addNote("more rows differ than the %d named", cmpMaxKeys)
			return nil
		}
		s := sub(b)
		s.rows = [2]int64{aggs[0][b].rows, aggs[1][b].rows}
		if s.rows == r.rows {
			// All the rows fell in one part: a key repeated on a side
			// without the unique index. Splitting again would not help.
			err = t.leaf(ctx, pools, s)
		} else {
			err = t.narrow(ctx, pools, s, cmpFanout, o)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bucketSums checksums the rows of a condition on both sides grouped by
// bucket (each given as the side's SQL), counts the checksums computed,
// and lists the buckets whose totals differ, in order.
func (t *cmpTableSum) bucketSums(ctx context.Context, pools [2]*cmpPool, bucket, cond func(*cmpTableSide) string) ([2]map[int64]cmpAgg, []int64, error) {
	var aggs [2]map[int64]cmpAgg
	err := cmpOnBoth(func(i int) error {
		var err error
		aggs[i], err = pools[i].aggregate(ctx, t.sides[i], bucket(t.sides[i]), cond(t.sides[i]))
		return err
	})
	if err != nil {
		return aggs, nil, err
	}
	t.mu.Lock()
	t.chunks += len(aggs[0]) + len(aggs[1])
	t.mu.Unlock()
	all := maps.Clone(aggs[0])
	maps.Copy(all, aggs[1])
	var differ []int64
	for _, b := range slices.Sorted(maps.Keys(all)) {
		if !aggs[0][b].equal(aggs[1][b]) {
			differ = append(differ, b)
		}
	}
	return aggs, differ, nil
}

// cond is the SQL condition of a range ("" for the whole table).
func (t *cmpTableSum) cond(r cmpRange) string {
	if r.top {
		return ""
	}
	if t.arith() {
		return fmt.Sprintf("%s BETWEEN (%d) AND (%d)", pgkit.QuoteIdent(t.key[0].name), r.ilo, r.ihi)
	}
	var conds []string
	if r.lo != nil {
		conds = append(conds, t.keyRow()+" >= "+t.literalRow(r.lo))
	}
	if r.hi != nil {
		conds = append(conds, t.keyRow()+" < "+t.literalRow(r.hi))
	}
	return strings.Join(conds, " AND ")
}

// keyRow is the key as a row value compared with literalRow.
func (t *cmpTableSum) keyRow() string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = k.order()
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (t *cmpTableSum) literalRow(vals []string) string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = k.literal(vals[i])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// keyText selects the key's values as text, named as given.
func (t *cmpTableSum) keyText(names ...string) string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = pgkit.QuoteIdent(k.name) + "::text"
		if i < len(names) {
			parts[i] += " AS " + names[i]
		}
	}
	return strings.Join(parts, ", ")
}

// readKeys runs a query selecting a key's values as text (and the row
// hash, with hash) on one side; what says what for, in errors.
func (t *cmpTableSum) readKeys(ctx context.Context, p *cmpPool, s *cmpTableSide, what, sql string, hash bool) ([]cmpLeafRow, error) {
	var out []cmpLeafRow
	err := p.do(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := t.scanKeys(ctx, tx, sql, hash, &out); err != nil {
			return fmt.Errorf("%s %s in database %s: %w", what, s.rel.key(), p.side.db.Name, err)
		}
		return nil
	})
	return out, err
}

func (t *cmpTableSum) scanKeys(ctx context.Context, tx pgx.Tx, sql string, hash bool, out *[]cmpLeafRow) error {
	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row := cmpLeafRow{vals: make([]*string, len(t.key))}
		dest := make([]any, 0, len(t.key)+1)
		for j := range row.vals {
			dest = append(dest, &row.vals[j])
		}
		if hash {
			dest = append(dest, &row.hash)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		*out = append(*out, row)
	}
	return rows.Err()
}

func (t *cmpTableSum) orderBy() string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = k.order()
	}
	return strings.Join(parts, ", ")
}

// split cuts a range into parts: the SQL of each row's part on each side
// (-1 for a NULL key) and the range of each part. buckets[0] is "" when
// the range cannot be split.
func (t *cmpTableSum) split(ctx context.Context, pools [2]*cmpPool, r cmpRange, parts int, o *compareOptions) (buckets [2]string, sub func(int64) cmpRange, err error) {
	if t.arith() {
		if r.top {
			ok, err := t.keyBounds(ctx, pools, &r)
			if err != nil || !ok {
				return buckets, nil, err
			}
		}
		span := r.ihi - r.ilo
		if span < 0 { // wider than int8: split by sampled keys instead
			t.key[0].integer = false
			return t.split(ctx, pools, r, parts, o)
		}
		if span == 0 {
			return buckets, nil, nil
		}
		w := span/int64(parts) + 1
		for i := range 2 {
			buckets[i] = fmt.Sprintf("coalesce((%s::int8 - (%d)) / %d, -1)", pgkit.QuoteIdent(t.key[0].name), r.ilo, w)
		}
		return buckets, func(b int64) cmpRange {
			from := r.ilo + b*w // b*w <= span: no overflow
			to := r.ihi
			if from <= r.ihi-(w-1) {
				to = from + w - 1
			}
			return cmpRange{ilo: from, ihi: to}
		}, nil
	}
	side := 0
	if r.rows[1] > r.rows[0] {
		side = 1
	}
	bounds, err := t.boundaries(ctx, pools[side], t.sides[side], r, parts, o)
	if err != nil || len(bounds) == 0 {
		return buckets, nil, err
	}
	for i, s := range t.sides {
		tree := cmpBucketTree(t, bounds, 0, len(bounds)+1)
		if s.keyNull != "" {
			tree = fmt.Sprintf("CASE WHEN %s THEN -1 ELSE %s END", s.keyNull, tree)
		}
		buckets[i] = tree
	}
	return buckets, func(b int64) cmpRange {
		s := cmpRange{lo: r.lo, hi: r.hi}
		if b > 0 {
			s.lo = bounds[b-1]
		}
		if int(b) < len(bounds) {
			s.hi = bounds[b]
		}
		return s
	}, nil
}

// cmpBucketTree numbers the parts lo..hi-1 that bounds cut a range into,
// by binary search: part j starts at bounds[j-1].
func cmpBucketTree(t *cmpTableSum, bounds [][]string, lo, hi int) string {
	if hi-lo == 1 {
		return fmt.Sprint(lo)
	}
	mid := (lo + hi) / 2
	return fmt.Sprintf("CASE WHEN %s < %s THEN %s ELSE %s END",
		t.keyRow(), t.literalRow(bounds[mid-1]), cmpBucketTree(t, bounds, lo, mid), cmpBucketTree(t, bounds, mid, hi))
}

// keyBounds reads the smallest and largest integer key on both sides into r.
func (t *cmpTableSum) keyBounds(ctx context.Context, pools [2]*cmpPool, r *cmpRange) (bool, error) {
	var lo, hi [2]*int64
	err := cmpOnBoth(func(i int) error {
		s := t.sides[i]
		sql := fmt.Sprintf("SELECT min(%[1]s)::int8, max(%[1]s)::int8 FROM ONLY %[2]s", pgkit.QuoteIdent(t.key[0].name), pgkit.Qualified(s.rel.schema, s.rel.name))
		return pools[i].do(ctx, func(ctx context.Context, tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&lo[i], &hi[i]); err != nil {
				return fmt.Errorf("key range of %s in database %s: %w", s.rel.key(), pools[i].side.db.Name, err)
			}
			return nil
		})
	})
	if err != nil {
		return false, err
	}
	r.ilo, r.ihi = math.MaxInt64, math.MinInt64
	for i := range 2 {
		if lo[i] != nil {
			r.ilo, r.ihi = min(r.ilo, *lo[i]), max(r.ihi, *hi[i])
		}
	}
	return lo[0] != nil || lo[1] != nil, nil
}

// boundaries picks up to parts-1 keys that cut a range on one side into
// parts of about equal rows: from a sample when the range is a table of
// more than 20 chunks (sorting all its keys would cost more than reading
// it), else every so many keys in order.
func (t *cmpTableSum) boundaries(ctx context.Context, p *cmpPool, s *cmpTableSide, r cmpRange, parts int, o *compareOptions) ([][]string, error) {
	rows := max(r.rows[s.side], 1)
	from := pgkit.Qualified(s.rel.schema, s.rel.name)
	var conds []string
	if c := t.cond(r); c != "" {
		conds = append(conds, c)
	}
	if s.keyNull != "" {
		conds = append(conds, "NOT ("+s.keyNull+")")
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	var sql string
	sampled := r.top && rows > 20*o.chunkRows
	if sampled {
		// About 32 keys per part; REPEATABLE: the same boundaries each run.
		pct := min(100, 100*32*float64(parts)/float64(rows))
		sql = fmt.Sprintf("SELECT %s FROM ONLY %s TABLESAMPLE BERNOULLI (%f) REPEATABLE (0)%s ORDER BY %s", t.keyText(), from, pct, where, t.orderBy())
	} else {
		step := (rows + int64(parts) - 1) / int64(parts)
		cols := make([]string, len(t.key))
		for i := range cols {
			cols[i] = fmt.Sprintf("planrun_k%d", i)
		}
		sql = fmt.Sprintf("SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) AS planrun_rn FROM ONLY %s%s) s WHERE planrun_rn > 1 AND (planrun_rn - 1) %% %d = 0 ORDER BY planrun_rn",
			strings.Join(cols, ", "), t.keyText(cols...), t.orderBy(), from, where, step)
	}
	found, err := t.readKeys(ctx, p, s, "split into key ranges", sql, false)
	if err != nil {
		return nil, err
	}
	var keys [][]string
	for _, r := range found {
		key := make([]string, len(r.vals))
		for i, v := range r.vals {
			key[i] = *v // NULL keys were left out
		}
		keys = append(keys, key)
	}
	if sampled && len(keys) > 0 {
		var picked [][]string
		for j := 1; j < parts; j++ {
			picked = append(picked, keys[j*len(keys)/parts])
		}
		keys = picked
	}
	// A key repeated (on a side without the unique index) would make an empty part.
	return slices.CompactFunc(keys, slices.Equal[[]string]), nil
}
