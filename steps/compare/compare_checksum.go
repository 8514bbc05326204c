package compare

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
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

// cmpNativeHash is how built-in types are hashed without printing them
// (printing a timestamptz costs three times hashing it), each so that
// two values hash alike exactly when their texts are the same. A column
// is hashed natively only when its types on both sides share a class:
// int2, int4 and int8 hash equal values alike, so an int → bigint
// migration still compares equal. Every other type hashes its text, which
// the pinned session settings make the same on both sides: numeric (its
// hash ignores the sign and trailing zeros: -5 = 5, 1.0 = 1.00), jsonb
// (its hash ignores where arrays end: [[1],2] = [[1,2]]), interval ('1
// day' = '24 hours'), enums (hashed by OID, which differs between
// databases), arrays, composites, extension types. The SQL takes the
// column as %[1]s and the column's seed as %[2]d.
//
// PostgreSQL folds a 64-bit value to 32 bits before hashing it, so -1 and
// 4294967295 would hash alike as int8 (an unsigned-conversion bug a copy
// could make): int8 values also mix in their high half. Timestamps keep
// the fold: a change to one timestamp alone goes unnoticed with a chance
// of about one in 2^32.
var cmpNativeHash = map[uint32]struct{ class, sql string }{
	20:   {"int", "hashint8extended(%[1]s::int8, %[2]d) # (%[1]s::int8 >> 32)"},
	21:   {"int", "hashint4extended(%[1]s, %[2]d)"},
	23:   {"int", "hashint4extended(%[1]s, %[2]d)"},
	26:   {"oid", "hashoidextended(%[1]s, %[2]d)"},
	16:   {"bool", "hashint4extended(%[1]s::int4, %[2]d)"},
	2950: {"uuid", "uuid_hash_extended(%[1]s, %[2]d)"},
	1114: {"timestamp", "timestamp_hash_extended(%[1]s, %[2]d)"},
	// AT TIME ZONE INTERVAL '0' relabels the instant as a timestamp by
	// arithmetic; ::timestamp would convert through the time zone, which
	// costs more than the hash.
	1184: {"timestamptz", "timestamp_hash_extended(%[1]s AT TIME ZONE INTERVAL '0', %[2]d)"},
	1083: {"time", "time_hash_extended(%[1]s, %[2]d)"},
	// Days since 2000 for finite dates (date has no hash function of its own to call).
	1082: {"date", `CASE WHEN isfinite(%[1]s) THEN hashint4extended(%[1]s - DATE '2000-01-01', %[2]d) ELSE hashtextextended(%[1]s::text, %[2]d) END`},
	// The hash equates -0 and 0, which print apart.
	700: {"float4", `CASE WHEN %[1]s = 0 THEN hashtextextended(%[1]s::text, %[2]d) ELSE hashfloat4extended(%[1]s, %[2]d) END`},
	701: {"float8", `CASE WHEN %[1]s = 0 THEN hashtextextended(%[1]s::text, %[2]d) ELSE hashfloat8extended(%[1]s, %[2]d) END`},
	// COLLATE "C": bytes, even under a nondeterministic collation whose hash folds case.
	25:   {"text", `hashtextextended(%[1]s COLLATE "C", %[2]d)`},
	1043: {"text", `hashtextextended(%[1]s COLLATE "C", %[2]d)`},
	1042: {"text", `hashbpcharextended(%[1]s COLLATE "C", %[2]d)`}, // trailing blanks dropped, as bpchar::text does
}

// cmpWideInt is the int class's SQL when either side's column is int8:
// the narrower side's values then hash as the wider side's do.
const cmpWideInt = 20

const cmpTextHash = `hashtextextended(%[1]s::text COLLATE "C", %[2]d)`

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

// cmpRowHash is the SQL of a row's 64-bit hash on one side: the hashes of
// the columns XORed, each hashed with its own seed (its place in the
// list) so that values moved between columns change it, and each NULL
// standing for its own constant.
func cmpRowHash(names []string, mine, theirs map[string]cmpColumn) string {
	if len(names) == 0 {
		return "0::int8"
	}
	parts := make([]string, len(names))
	for i, name := range names {
		c := mine[name]
		parts[i] = cmpColumnHash(c, theirs[name], i+1)
	}
	return strings.Join(parts, " # ")
}

// cmpColumnHash is the SQL of one column's 64-bit hash on the side whose
// column is mine, seeded with the column's place in the list.
func cmpColumnHash(mine, theirs cmpColumn, seed int) string {
	format := cmpTextHash
	if n, ok := cmpNativeHash[mine.typid]; ok && n.class == cmpNativeHash[theirs.typid].class {
		format = n.sql
		if n.class == "int" && (mine.typid == cmpWideInt || theirs.typid == cmpWideInt) {
			format = cmpNativeHash[cmpWideInt].sql
		}
	}
	h := fmt.Sprintf(format, pgkit.QuoteIdent(mine.name), seed)
	if !mine.notNull {
		// A NULL stands for a constant of its own in each column.
		h = fmt.Sprintf("coalesce(%s, %d)", h, int64(cmpMix(uint64(seed))))
	}
	return "(" + h + ")"
}

// cmpMix is splitmix64's finaliser: a NULL's stand-in for each column.
func cmpMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
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
	env.Logf("checksumming %d tables on the source and %d on the target, %d at a time on each", len(work[0]), len(work[1]), o.jobs)

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
		env.Logf("narrowing the differences in %d tables", len(differ))
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
	env.Logf("checksummed %d tables in %.1fs", len(sums), time.Since(start).Seconds())
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

// cmpPool runs queries on one side, on connections that each hold a
// read-only transaction in the side's snapshot. The first failure cancels
// the whole comparison: its transaction is unusable, and so is the result.
type cmpPool struct {
	side  *cmpSide
	tasks chan cmpTask
	ctx   context.Context // the comparison's: done when a worker failed
	wg    sync.WaitGroup
}

type cmpTask struct {
	fn   func(ctx context.Context, tx pgx.Tx) error
	done chan error // buffered: a worker never waits for the caller
}

// cmpStartPool connects workers to a side; a worker that fails cancels
// ctx with its error. Close the pool to wait for them.
func cmpStartPool(ctx context.Context, cancel context.CancelCauseFunc, env *steptype.Env, side *cmpSide, workers int) *cmpPool {
	p := &cmpPool{side: side, tasks: make(chan cmpTask), ctx: ctx}
	for range workers {
		p.wg.Go(func() {
			if err := p.work(ctx, env); err != nil {
				cancel(err)
			}
		})
	}
	return p
}

func (p *cmpPool) work(ctx context.Context, env *steptype.Env) error {
	db := p.side.db
	conn, err := pgkit.Connect(ctx, env, db, true)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	tx, err := cmpBegin(ctx, conn, p.side.snapshot)
	if err == nil {
		_, err = tx.Exec(ctx, cmpChecksumSettings)
	}
	if err != nil {
		return fmt.Errorf("database %s: begin a read-only transaction in the shared snapshot: %w", db.Name, err)
	}
	for {
		select {
		case t, ok := <-p.tasks:
			if !ok {
				return nil
			}
			err := t.fn(ctx, tx)
			t.done <- err
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// do runs fn on one of the pool's connections and waits for it. An error
// fn returns cancels the whole comparison, so it should say what failed.
func (p *cmpPool) do(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	t := cmpTask{fn: fn, done: make(chan error, 1)}
	select {
	case p.tasks <- t:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	select {
	case err := <-t.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

// close stops the workers once their tasks are done; nil does nothing.
func (p *cmpPool) close() {
	if p != nil {
		close(p.tasks)
		p.wg.Wait()
	}
}

// aggregate checksums the rows of a table on this side that satisfy cond
// ("" for all), grouped by bucket (an SQL integer; "" for one group, 0).
func (p *cmpPool) aggregate(ctx context.Context, s *cmpTableSide, bucket, cond string) (map[int64]cmpAgg, error) {
	if bucket == "" {
		bucket = "0"
	}
	sql := fmt.Sprintf("SELECT %s, count(*), coalesce(sum(%s), 0)::text FROM ONLY %s", bucket, s.hash, pgkit.Qualified(s.rel.schema, s.rel.name))
	if cond != "" {
		sql += " WHERE " + cond
	}
	if bucket != "0" {
		sql += " GROUP BY 1"
	}
	out := map[int64]cmpAgg{}
	err := p.do(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// The simple protocol: every query differs, so preparing each would
		// only add a round trip and churn the statement cache.
		rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			var b, n int64
			var sum string
			_, err = pgx.ForEachRow(rows, []any{&b, &n, &sum}, func() error {
				a, err := cmpParseAgg(n, sum)
				out[b] = a
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("checksum %s in database %s: %w", s.rel.key(), p.side.db.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bucket == "0" && len(out) == 0 {
		out[0] = cmpAgg{} // no GROUP BY: always one row, but be safe
	}
	return out, nil
}

// cmpOnBoth runs fn for the source (0) and the target (1) at once.
func cmpOnBoth(fn func(side int) error) error {
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

// cmpParallel calls fn for 0..n-1, at most workers at a time, and stops at
// the first error.
func cmpParallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// cmpProgress reports how many tables and bytes are done in the current
// phase and which tables are in flight, at most four times a second.
type cmpProgress struct {
	env                     *steptype.Env
	mu                      sync.Mutex // also keeps reports in order
	phase                   string
	tablesDone, tablesTotal int
	bytesDone, bytesTotal   int64
	inFlight                map[string]int
	last                    time.Time
}

// start begins a phase.
func (p *cmpProgress) start(phase string, tables int, bytes int64) {
	p.mu.Lock()
	p.phase, p.tablesDone, p.tablesTotal, p.bytesDone, p.bytesTotal = phase, 0, tables, 0, bytes
	p.inFlight = map[string]int{}
	p.mu.Unlock()
	p.report(true)
}

func (p *cmpProgress) begin(table string) {
	p.mu.Lock()
	p.inFlight[table]++
	p.mu.Unlock()
	p.report(false)
}

func (p *cmpProgress) end(table string, bytes int64) {
	p.mu.Lock()
	p.tablesDone++
	p.bytesDone += bytes
	if p.inFlight[table]--; p.inFlight[table] == 0 {
		delete(p.inFlight, table)
	}
	p.mu.Unlock()
	p.report(false)
}

func (p *cmpProgress) report(force bool) {
	if p.env == nil || p.env.Progress == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	ev := event.Progress{Unit: "bytes", Done: p.bytesDone, Total: p.bytesTotal,
		Message: fmt.Sprintf("%s, %d of %d tables", p.phase, p.tablesDone, p.tablesTotal)}
	if p.bytesTotal == 0 {
		ev.Unit, ev.Done, ev.Total = "tables", int64(p.tablesDone), int64(p.tablesTotal)
	}
	for _, name := range cmpKeys(p.inFlight) {
		ev.Items = append(ev.Items, event.ProgressItem{Name: name})
	}
	p.env.Progress(ev)
}
