package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/compare"
	"github.com/planrun/planrun/steps/steptype"
)

// wholeTable is touched's key for every row of a table: after a
// TRUNCATE, and for any change to a table without a key.
const wholeTable = ""

// touchedKeysPerQuery is how many touched rows one query reads per side.
const touchedKeysPerQuery = 5000

// maxDiffering is how many differing rows an output names.
const maxDiffering = 10

type touchedKey struct {
	tab int
	key string
}

// touchedBy lists, as the columns of an insert into touched, the rows
// that changes touch, each once.
func touchedBy(changes []change, byID map[int]*table) (tabs []int32, keys []string) {
	seen := map[touchedKey]bool{}
	add := func(t *table, key string) {
		if k := (touchedKey{t.id, key}); !seen[k] {
			seen[k] = true
			tabs, keys = append(tabs, int32(t.id)), append(keys, key)
		}
	}
	for _, c := range changes {
		t := byID[c.tab]
		switch c.op {
		case "I":
			add(t, t.keyOf(c.newRow))
		case "U":
			if c.oldKey == nil && len(t.key) == 0 {
				continue // not applied (see applyChanges)
			}
			if c.oldKey != nil {
				add(t, t.keyIn(c.oldKey))
			}
			add(t, t.keyOf(c.newRow))
		case "D":
			add(t, t.keyIn(c.oldKey))
		case "T":
			add(t, wholeTable)
		}
	}
	return tabs, keys
}

// keyOf is the key of a logged row (its values in the log's column
// order), as touched keeps it; a table without a key is checked whole.
func (t *table) keyOf(row []*string) string {
	if len(t.key) == 0 {
		return wholeTable
	}
	vals := make([]*string, len(t.key))
	for i, at := range t.keyAt {
		if at >= 0 && at < len(row) {
			vals[i] = row[at]
		}
	}
	return keyLiteral(vals)
}

// keyIn is touched's key for a logged old key.
func (t *table) keyIn(oldKey []*string) string {
	if len(t.key) == 0 {
		return wholeTable
	}
	return keyLiteral(oldKey)
}

// keyLiteral writes key values as a text[] literal.
func keyLiteral(vals []*string) string {
	items := make([]string, len(vals))
	for i, v := range vals {
		if v == nil {
			items[i] = "NULL"
		} else {
			items[i] = quoteArrayItems([]string{*v})
		}
	}
	return "{" + strings.Join(items, ",") + "}"
}

// runVerify compares every captured table's data on both sides while the
// application writes: the source in one snapshot, the target replayed to
// exactly that snapshot and held there (its bookkeeping row locked, so
// that no other replay moves it) until the comparison ends. A match is
// recorded as the new verified point and empties touched, from which the
// cut-over then checks only the rows changed since.
func (r *run) runVerify(ctx context.Context) error {
	if err := r.registry(ctx); err != nil {
		return err
	}
	if err := r.prepareTarget(ctx); err != nil {
		return err
	}
	for try := 1; ; try++ {
		held, err := r.verifyOnce(ctx)
		if err != nil || held {
			return err
		}
		if try == verifyTries {
			return fmt.Errorf("target %s: another capture step moved the replay on %d times before verify could hold it: run verify while no catch_up runs", r.dstName, try)
		}
		r.env.Logf("another capture step moved the replay of %s on; verifying again", r.dstName)
	}
}

// beforeHoldHooks lets a test move the replay on between verify's
// replay and its hold. Keyed by env: it never fires in another test.
var beforeHoldHooks sync.Map // *steptype.Env -> func()

// verifyTries is how often verify starts over when another replay moved
// the target past its snapshot before it could hold it.
const verifyTries = 3

// verifyOnce is one attempt of verify; held is false when another
// capture step moved the replay past the snapshot first.
func (r *run) verifyOnce(ctx context.Context) (held bool, err error) {
	conn, err := pgkit.Connect(ctx, r.env, r.a.Source, true)
	if err != nil {
		return false, err
	}
	defer pgkit.Close(ctx, conn)
	snap, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, fmt.Errorf("source %s: begin the snapshot: %w", r.srcName, err)
	}
	defer pgkit.Rollback(ctx, snap)
	var exported, at string
	if err := snap.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot(), pg_catalog.pg_current_snapshot()::text").Scan(&exported, &at); err != nil {
		return false, fmt.Errorf("source %s: export a snapshot (a pooler in transaction mode cannot): %w", r.srcName, err)
	}
	for {
		res, err := r.applyBatch(ctx, at)
		if err != nil {
			return false, err
		}
		if res.epochDone && res.boundary == at {
			break
		}
		r.progress(false)
	}
	if h, ok := beforeHoldHooks.Load(r.env); ok {
		h.(func())()
	}
	hold, err := r.dst.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("target %s: %w", r.dstName, err)
	}
	defer pgkit.Rollback(ctx, hold)
	var boundary string
	if err := hold.QueryRow(ctx, "SELECT boundary FROM "+pgkit.QuoteIdent(schema)+".state FOR UPDATE").Scan(&boundary); err != nil {
		return false, fmt.Errorf("target %s: read the replay position: %w", r.dstName, err)
	}
	if boundary != at {
		return false, nil
	}
	r.env.Logf("target %s replayed to the source's snapshot; comparing %s by checksum", r.dstName, plural.Of(len(r.tables), "table"))
	compared, err := r.compareTables(ctx, r.tables, exported)
	if err != nil {
		return false, err
	}
	// A difference also forgets an earlier verify: a cut-over must not
	// narrow its check to the rows changed since a point now known wrong.
	differs := r.checksumResult(compared)
	record := "verified = boundary, verified_at = pg_catalog.now()"
	if differs != nil {
		record = "verified = NULL, verified_at = NULL"
	}
	if _, err := hold.Exec(ctx, "UPDATE "+pgkit.QuoteIdent(schema)+".state SET "+record+"; DELETE FROM "+pgkit.QuoteIdent(schema)+".touched",
		pgx.QueryExecModeSimpleProtocol); err != nil {
		return false, errors.Join(differs, fmt.Errorf("target %s: record the verify: %w", r.dstName, err))
	}
	if err := hold.Commit(ctx); err != nil {
		return false, errors.Join(differs, fmt.Errorf("target %s: record the verify: %w", r.dstName, err))
	}
	if differs != nil {
		return false, differs
	}
	pgkit.Rollback(ctx, snap)
	r.out.VerifiedAt = time.Now().UTC().Format(time.RFC3339Nano)
	r.env.Logf("verified: %s, %s, equal on both sides", plural.Of(len(r.tables), "table"), plural.Of(r.out.VerifiedRows, "row"))
	return true, r.lag(ctx, at)
}

// compareTables runs compare's checksum over tables, the source read in
// sourceSnapshot ("" for its own).
func (r *run) compareTables(ctx context.Context, tables []*table, sourceSnapshot string) (*compare.CompareOutput, error) {
	data := "checksum"
	a := &compare.CompareArgs{Source: r.a.Source, Target: r.a.Target, Data: &data, Jobs: r.a.Jobs, ExcludeSchemas: []string{schema}}
	for _, t := range tables {
		a.Tables = append(a.Tables, exactPattern(t.schema)+"."+exactPattern(t.name))
	}
	out, err := compare.RunInSnapshot(ctx, r.env, a, sourceSnapshot)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	r.out.Checksum = out
	return out, nil
}

// checksumResult counts the rows compare checked and fails, naming the
// first differing rows, when any table's data differs.
func (r *run) checksumResult(out *compare.CompareOutput) error {
	for _, c := range out.Checksums {
		if c.SourceRows != nil {
			r.out.VerifiedRows += *c.SourceRows
		}
		if c.Match {
			continue
		}
		name := c.Schema + "." + c.Name
		if len(c.DifferingKeys) == 0 {
			r.addDiffering(name + " (" + cmp.Or(c.Note, "its data differs") + ")")
		}
		for _, k := range c.DifferingKeys {
			r.addDiffering(fmt.Sprintf("%s %s (%s)", name, k.Key, k.Kind))
		}
	}
	if len(r.out.Differing) > 0 {
		return fmt.Errorf("the target differs from the source: %s", strings.Join(r.out.Differing, "; "))
	}
	return nil
}

func (r *run) addDiffering(what string) {
	if len(r.out.Differing) < maxDiffering {
		r.out.Differing = append(r.out.Differing, what)
	}
}

// exactPattern escapes compare's wildcards in a name.
func exactPattern(name string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(name)
}

// verifyAtCutover checks the target against the fenced source, as
// cutover's verify says: every captured table (full), or only the rows
// touched since the last full verify (changed), each read by key on both
// sides; a table truncated since is checksummed whole.
func (r *run) verifyAtCutover(ctx context.Context) error {
	r.out.Verify = r.verify
	switch r.verify {
	case "none":
		return nil
	case "full":
		out, err := r.compareTables(ctx, r.tables, "")
		if err != nil {
			return err
		}
		return r.checksumResult(out)
	}
	var whole []*table
	for _, t := range r.tables {
		keys, err := r.touchedKeys(ctx, t)
		if err != nil {
			return err
		}
		if len(keys) > 0 && keys[0] == wholeTable {
			whole = append(whole, t)
			continue
		}
		if err := r.checkTable(ctx, t, keys); err != nil {
			return err
		}
	}
	if len(whole) > 0 {
		out, err := r.compareTables(ctx, whole, "")
		if err != nil {
			return err
		}
		if err := r.checksumResult(out); err != nil {
			return err
		}
	}
	if len(r.out.Differing) > 0 {
		return fmt.Errorf("the target differs from the source in rows changed since the last verify: %s", strings.Join(r.out.Differing, "; "))
	}
	return nil
}

// touchedKeys reads the keys of t's rows touched since the last verify,
// in order (the empty key, the whole table, first).
func (r *run) touchedKeys(ctx context.Context, t *table) ([]string, error) {
	rows, err := r.dst.Query(ctx, "SELECT key FROM "+pgkit.QuoteIdent(schema)+".touched WHERE tab = $1 ORDER BY key COLLATE \"C\"", t.id)
	if err != nil {
		return nil, fmt.Errorf("target %s: read the rows changed since the last verify: %w", r.dstName, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("target %s: read the rows changed since the last verify: %w", r.dstName, err)
	}
	return keys, nil
}

// rowDigest is one side's view of a row named by key.
type rowDigest struct {
	present bool
	digest  string
}

// checkTable compares the rows of t with keys on both sides,
// touchedKeysPerQuery at a time.
func (r *run) checkTable(ctx context.Context, t *table, keys []string) error {
	conns := [2]*pgx.Conn{r.src, r.dst}
	names := [2]string{"source " + r.srcName, "target " + r.dstName}
	var queries [2]string
	for i, conn := range conns {
		q, err := digestQuery(ctx, conn, t)
		if err != nil {
			return fmt.Errorf("%s: read the columns of %s: %w", names[i], t, err)
		}
		queries[i] = q
	}
	for len(keys) > 0 {
		n := min(len(keys), touchedKeysPerQuery)
		if err := r.checkRows(ctx, t, conns, names, queries, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// checkRows reads the rows of t with keys on both sides, at once, and
// notes every one that differs.
func (r *run) checkRows(ctx context.Context, t *table, conns [2]*pgx.Conn, names, queries [2]string, keys []string) error {
	var sides [2]map[string]rowDigest
	var errs [2]error
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() { sides[i], errs[i] = readDigests(ctx, conn, queries[i], keys) })
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			return fmt.Errorf("%s: read the rows of %s changed since the last verify: %w", name, t, errs[i])
		}
	}
	r.out.VerifiedRows += int64(len(keys))
	for _, k := range keys {
		s, d := sides[0][k], sides[1][k]
		kind := ""
		switch {
		case s.present && !d.present:
			kind = "missing"
		case !s.present && d.present:
			kind = "extra"
		case s.digest != d.digest:
			kind = "changed"
		}
		if kind != "" {
			r.addDiffering(fmt.Sprintf("%s %s (%s)", t, describeKey(t.key, k), kind))
			if len(r.out.Differing) == maxDiffering {
				return nil
			}
		}
	}
	return nil
}

// digestQuery is the query that reads, on one side, whether each keyed
// row of t is there and a digest of its text (the session settings pinned
// alike on both sides); the keys are $1.
func digestQuery(ctx context.Context, conn *pgx.Conn, t *table) (string, error) {
	types, _, err := readColumns(ctx, conn, t)
	if err != nil {
		return "", err
	}
	var on, cols []string
	for i, k := range t.key {
		on = append(on, fmt.Sprintf("t.%s = (k.key::pg_catalog.text[])[%d]::%s", pgkit.QuoteIdent(k), i+1, types[k]))
	}
	for _, c := range t.columns {
		cols = append(cols, "t."+pgkit.QuoteIdent(c))
	}
	return fmt.Sprintf(`SELECT k.key, t.%s IS NOT NULL, coalesce(pg_catalog.md5(ROW(%s)::text), '')
	FROM pg_catalog.unnest($1::text[]) AS k(key) LEFT JOIN %s t ON %s`,
		pgkit.QuoteIdent(t.key[0]), strings.Join(cols, ", "), t.qualified(), strings.Join(on, " AND ")), nil
}

// readDigests runs a digestQuery for keys.
func readDigests(ctx context.Context, conn *pgx.Conn, query string, keys []string) (map[string]rowDigest, error) {
	rows, err := conn.Query(ctx, query, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]rowDigest, len(keys))
	var key string
	var d rowDigest
	_, err = pgx.ForEachRow(rows, []any{&key, &d.present, &d.digest}, func() error {
		out[key] = d
		return nil
	})
	return out, err
}

// readColumns reads, on one side, the type of each of t's columns and
// whether it is generated; no columns when the side lacks the table.
func readColumns(ctx context.Context, conn *pgx.Conn, t *table) (types map[string]string, generated map[string]bool, err error) {
	rows, err := conn.Query(ctx, `SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attgenerated <> '' FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, t.qualified())
	if err != nil {
		return nil, nil, err
	}
	types, generated = map[string]string{}, map[string]bool{}
	var name, typ string
	var gen bool
	_, err = pgx.ForEachRow(rows, []any{&name, &typ, &gen}, func() error {
		types[name], generated[name] = typ, gen
		return nil
	})
	return types, generated, err
}

// describeKey names a row by its key: "id=42", "a=1, b=x".
func describeKey(columns []string, literal string) string {
	var vals []string
	if err := pgtype.NewMap().Scan(pgtype.TextArrayOID, pgtype.TextFormatCode, []byte(literal), &vals); err != nil || len(vals) != len(columns) {
		return literal
	}
	parts := make([]string, len(columns))
	for i, c := range columns {
		parts[i] = c + "=" + vals[i]
	}
	return strings.Join(parts, ", ")
}

// verifyRecorded reads when the last full verify was recorded; "" when
// none was.
func (r *run) verifyRecorded(ctx context.Context) (string, error) {
	var at *time.Time
	if err := r.dst.QueryRow(ctx, "SELECT verified_at FROM "+pgkit.QuoteIdent(schema)+".state").Scan(&at); err != nil {
		return "", fmt.Errorf("target %s: read the last verify: %w", r.dstName, err)
	}
	if at == nil {
		return "", nil
	}
	return at.UTC().Format(time.RFC3339Nano), nil
}

// refuseUnverified is cutover's refusal, before the fence, to narrow a
// check to rows changed since a verify that never ran.
func refuseUnverified(target string) error {
	return steptype.Refused(fmt.Errorf(`verify = "changed" checks the rows changed since the last full verify, and target %s has none recorded: `+
		`run capture with action = "verify" while the application runs (it does not fence), or set verify = "full" (every captured table, checksummed while writes are fenced) or "none"; nothing was fenced`, target))
}

// verifiedLine says what cutover's data check did, for the log.
func (r *run) verifiedLine(took time.Duration) string {
	switch r.verify {
	case "none":
		return "no data check (verify = \"none\")"
	case "full":
		return fmt.Sprintf("every captured row checked (%s) in %.2fs", plural.Of(r.out.VerifiedRows, "row"), took.Seconds())
	}
	return fmt.Sprintf("%s changed since the verify of %s checked in %.2fs", plural.Of(r.out.VerifiedRows, "row"), r.out.VerifiedAt, took.Seconds())
}
