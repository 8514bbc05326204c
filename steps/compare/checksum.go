package compare

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// This file computes compare's data checksums (data = "checksum").
//
// Every row is hashed inside its database to a 64-bit value, and a set of
// rows is summarised by count(*) and the exact sum of its row hashes. The
// sum does not depend on row order, so nothing is sorted, any split of a
// table adds up to the same totals, and a changed, missing or extra row
// changes the sum unless 64-bit hashes happen to cancel (about 2^-64;
// 2^-32 for a change confined to one timestamp or time value, see
// cmpNativeHash).
// sum(int8) accumulates in 128 bits on the server at about the cost of
// count(*); md5 or sha256 of each row would cost several times more.
//
// First pass: every table is checksummed whole, jobs tables at a time on
// each side, both sides at once, and PostgreSQL splits a big table between
// its parallel workers as it does for count(*). Splitting tables into
// chunks here was measured and rejected: ctid range scans read through
// shared buffers, evicting the server's working set, and cost a third
// more CPU than a sequential scan (which uses a small ring of buffers);
// key range scans read a table whose key is not in physical order (uuid)
// once per chunk; and grouping rows by key range adds 40% to the scan.
// Only tables whose totals differ are split, by key range, and narrowed to
// their first differing rows (compare_narrow.go).

const (
	cmpMaxKeys  = 10     // differing keys (and ranges) reported per table
	cmpLeafRows = 1000   // a key range with this few rows is diffed row by row
	cmpFanout   = 16     // how many parts a mismatched key range is split into
	cmpMaxParts = 4096   // how many key ranges a whole table is split into at most
	cmpLeafMax  = 100000 // rows fetched from a key range that cannot be split further
)

// cmpChecksumSettings are set in every checksum transaction, after cmpSettings.
const cmpChecksumSettings = `
SET LOCAL jit = off;                        -- the per-row work is in hash functions JIT cannot inline: optimising them costs more than it saves
SET LOCAL lc_monetary = 'C';                -- money prints with the locale's currency symbol; pinnedSettings fix the other renderings
SET LOCAL standard_conforming_strings = on; -- key values are quoted into the SQL as literals
`

// cmpAgg sums up a set of rows: how many, and the exact sum of their hashes.
type cmpAgg struct {
	rows int64
	sum  *big.Int // nil for zero
}

func (a *cmpAgg) add(b cmpAgg) {
	a.rows += b.rows
	if b.sum != nil {
		if a.sum == nil {
			a.sum = new(big.Int)
		}
		a.sum.Add(a.sum, b.sum)
	}
}

func (a cmpAgg) equal(b cmpAgg) bool {
	zero := new(big.Int)
	x, y := a.sum, b.sum
	if x == nil {
		x = zero
	}
	if y == nil {
		y = zero
	}
	return a.rows == b.rows && x.Cmp(y) == 0
}

// cmpParseAgg reads count(*) and sum()::text.
func cmpParseAgg(rows int64, sum string) (cmpAgg, error) {
	s, ok := new(big.Int).SetString(sum, 10)
	if !ok {
		return cmpAgg{}, fmt.Errorf("unexpected checksum %q", sum)
	}
	return cmpAgg{rows: rows, sum: s}, nil
}

// cmpTableSum is one table's checksum work and its result.
type cmpTableSum struct {
	rel   cmpRelation      // the source's, else the target's
	sides [2]*cmpTableSide // source, target; nil where the table is missing
	key   []cmpKeyCol      // empty: no usable key
	cols  []string         // the columns hashed: those on both sides, by name
	notes []string
	mixed bool // partitioned on one side only: counted, not compared

	mu     sync.Mutex
	agg    [2]cmpAgg
	chunks int
	ranges []string
	keys   []CompareKey
}

// cmpTableSide is what one side needs to checksum its copy of a table.
type cmpTableSide struct {
	side    int // 0 source, 1 target
	rel     cmpRelation
	hash    string // the SQL of a row's hash on this side
	keyNull string // SQL true when the key has a NULL column; "" when it cannot
}

func (t *cmpTableSum) addNote(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	note := fmt.Sprintf(format, args...)
	if !slices.Contains(t.notes, note) {
		t.notes = append(t.notes, note)
	}
}

// cmpPlanChecksums decides, for every plain table on either side, which
// columns are hashed and how, and the key differences are narrowed by.
func cmpPlanChecksums(src, tgt *cmpSide) []*cmpTableSum {
	sides := [2]*cmpSide{src, tgt}
	tables := map[string]*cmpTableSum{}
	for i, s := range sides {
		for key, r := range s.cat.relations {
			if r.kind != "r" {
				continue
			}
			t := tables[key]
			if t == nil {
				t = &cmpTableSum{rel: r}
				tables[key] = t
			}
			t.sides[i] = &cmpTableSide{side: i, rel: r, hash: "0::int8"}
		}
	}
	var byTable [2]map[string]map[string]cmpColumn // table → column name → column
	for i, s := range sides {
		byTable[i] = map[string]map[string]cmpColumn{}
		for _, c := range s.cat.columns {
			if byTable[i][c.table] == nil {
				byTable[i][c.table] = map[string]cmpColumn{}
			}
			byTable[i][c.table][c.name] = c
		}
	}
	out := make([]*cmpTableSum, 0, len(tables))
	for key, t := range tables {
		out = append(out, t)
		if t.sides[0] == nil || t.sides[1] == nil {
			continue // only counted: the table itself is the difference
		}
		cols := [2]map[string]cmpColumn{byTable[0][key], byTable[1][key]}
		// Columns by name in byte order: the same list on both sides
		// whatever order the tables declare them in.
		var common, only []string
		for _, name := range cmpUnion(cols[0], cols[1]) {
			_, s := cols[0][name]
			_, g := cols[1][name]
			if s && g {
				common = append(common, name)
			} else {
				only = append(only, name)
			}
		}
		if len(only) > 0 {
			t.notes = append(t.notes, "columns on one side only, not checksummed: "+strings.Join(only, ", "))
		}
		t.cols = common
		for i := range 2 {
			t.sides[i].hash = cmpRowHash(common, cols[i], cols[1-i])
		}
		t.key = cmpChooseKey(key, sides, cols)
		for i := range 2 {
			var null []string
			for _, k := range t.key {
				if !cols[i][k.name].notNull {
					null = append(null, pgkit.QuoteIdent(k.name)+" IS NULL")
				}
			}
			t.sides[i].keyNull = strings.Join(null, " OR ")
		}
	}
	return out
}

// cmpChecksum checksums every plain table on both sides, narrows the
// tables whose data differs to their first differing rows, fills both
// sides' row counts, and returns one result per table, partitioned
// tables included.
func cmpChecksum(ctx context.Context, env *steptype.Env, src, tgt *cmpSide, o *compareOptions) ([]*cmpTableSum, error) {
	start := time.Now()
	sums := cmpPlanChecksums(src, tgt)
	sides := [2]*cmpSide{src, tgt}
	var work [2][]*cmpTableSum
	var bytes int64
	for i := range sides {
		for _, t := range sums {
			if t.sides[i] != nil {
				work[i] = append(work[i], t)
				bytes += t.sides[i].rel.bytes
			}
		}
		// Biggest first, so that one huge table does not start last.
		sort.SliceStable(work[i], func(a, b int) bool { return work[i][a].sides[i].rel.bytes > work[i][b].sides[i].rel.bytes })
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pools [2]*cmpPool
	for i, s := range sides {
		pools[i] = cmpStartPool(ctx, cancel, env, s, max(1, min(o.jobs, len(work[i]))))
	}
	defer func() {
		cancel(nil) // idle workers stop at once
		pools[0].close()
		pools[1].close()
	}()
	progress := &cmpProgress{env: env}
	progress.start("checksums on both sides", len(work[0])+len(work[1]), bytes)
	env.Logf("checksumming %s on the source and %d on the target, %d at a time on each", plural.Of(len(work[0]), "table"), len(work[1]), o.jobs)

	err := cmpOnBoth(func(i int) error {
		return cmpParallel(ctx, o.jobs, len(work[i]), func(ctx context.Context, n int) error {
			t := work[i][n]
			progress.begin(t.rel.key())
			defer progress.end(t.rel.key(), t.sides[i].rel.bytes)
			agg, err := pools[i].aggregate(ctx, t.sides[i], "", "")
			if err != nil {
				return err
			}
			t.mu.Lock()
			defer t.mu.Unlock()
			t.agg[i] = agg[0]
			t.chunks++
			return nil
		})
	})
	if err != nil {
		return nil, cmpCause(ctx, err)
	}
	progress.report(true)

	var differ []*cmpTableSum
	for _, t := range sums {
		switch {
		case t.sides[0] == nil || t.sides[1] == nil || t.agg[0].equal(t.agg[1]):
		default:
			differ = append(differ, t)
		}
	}
	if len(differ) > 0 {
		sort.Slice(differ, func(a, b int) bool { return differ[a].rel.key() < differ[b].rel.key() })
		env.Logf("narrowing the differences in %s", plural.Of(len(differ), "table"))
		progress.start("narrowing differences", len(differ), 0)
		err := cmpParallel(ctx, o.jobs, len(differ), func(ctx context.Context, n int) error {
			progress.begin(differ[n].rel.key())
			defer progress.end(differ[n].rel.key(), 0)
			return cmpNarrow(ctx, pools, differ[n], o)
		})
		if err != nil {
			return nil, cmpCause(ctx, err)
		}
		progress.report(true)
	}

	for i, s := range sides {
		s.rows = map[string]int64{}
		for _, t := range sums {
			if t.sides[i] != nil {
				s.rows[t.rel.key()] = t.agg[i].rows
			}
		}
	}
	sums = append(sums, cmpPartitioned(sides, sums)...)
	env.Logf("checksummed %s in %.1fs", plural.Of(len(sums), "table"), time.Since(start).Seconds())
	return sums, nil
}

// cmpCause prefers the error that cancelled the work to the context errors
// it caused elsewhere.
func cmpCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// cmpPartitioned sums a partitioned table's partitions (and theirs, for
// several levels) on each side: the same rows on both sides match even
// when the partition bounds differ. A table partitioned on one side only
// is counted, not compared: its partitions have no counterparts to plan
// their hashes with.
func cmpPartitioned(sides [2]*cmpSide, plain []*cmpTableSum) []*cmpTableSum {
	byKey := map[string]*cmpTableSum{}
	for _, t := range plain {
		byKey[t.rel.key()] = t
	}
	var parents []*cmpTableSum
	for i, s := range sides {
		for key, r := range s.cat.relations {
			if r.kind != "p" {
				continue
			}
			t := byKey[key]
			switch {
			case t == nil:
				t = &cmpTableSum{rel: r, notes: []string{"partitioned: its rows are checksummed in its partitions"}}
				byKey[key] = t
				parents = append(parents, t)
			case t.rel.kind == "r":
				t.mixed = true
				t.notes = append(t.notes, "partitioned on one side only: its rows are counted, not compared")
			}
			t.sides[i] = &cmpTableSide{side: i, rel: r}
		}
	}
	// On a side where the table is partitioned, its totals are its
	// partitions' there; its chunks are those of its partitions on either side.
	var total func(t *cmpTableSum, side int, seen map[*cmpTableSum]bool) cmpAgg
	total = func(t *cmpTableSum, side int, seen map[*cmpTableSum]bool) cmpAgg {
		if sides[side].cat.relations[t.rel.key()].kind != "p" {
			seen[t] = true
			return t.agg[side]
		}
		var sum cmpAgg
		for key, r := range sides[side].cat.relations {
			if r.parent == t.rel.key() && byKey[key] != nil {
				sum.add(total(byKey[key], side, seen))
			}
		}
		return sum
	}
	for _, t := range byKey {
		seen := map[*cmpTableSum]bool{}
		for i, s := range sides {
			if r, ok := s.cat.relations[t.rel.key()]; ok && r.kind == "p" {
				t.agg[i] = total(t, i, seen)
			}
		}
		delete(seen, t)
		for p := range seen {
			t.chunks += p.chunks
		}
	}
	return parents
}

// cmpAddChecksums adds the checksum results to the output: every table,
// and the tables whose data differs to mismatched.
func cmpAddChecksums(out *CompareOutput, sums []*cmpTableSum) {
	out.Checksums = []CompareChecksum{}
	mismatched := map[string]bool{}
	for _, k := range out.Mismatched {
		mismatched[k] = true
	}
	for _, t := range sums {
		c := CompareChecksum{
			Schema: t.rel.schema, Name: t.rel.name, Key: []string{},
			Chunks:           t.chunks,
			MismatchedRanges: append([]string{}, t.ranges...),
			DifferingKeys:    append([]CompareKey{}, t.keys...),
			Note:             strings.Join(t.notes, "; "),
		}
		for _, k := range t.key {
			c.Key = append(c.Key, k.name)
		}
		if t.sides[0] != nil {
			c.SourceRows = &t.agg[0].rows
		}
		if t.sides[1] != nil {
			c.TargetRows = &t.agg[1].rows
		}
		c.Match = t.sides[0] != nil && t.sides[1] != nil && !t.mixed && t.agg[0].equal(t.agg[1])
		if !c.Match {
			out.Equal = false
			mismatched[t.rel.key()] = true
		}
		out.Checksums = append(out.Checksums, c)
	}
	sort.Slice(out.Checksums, func(a, b int) bool {
		x, y := out.Checksums[a], out.Checksums[b]
		return x.Schema+"."+x.Name < y.Schema+"."+y.Name
	})
	out.Mismatched = cmpKeys(mismatched)
}
