package compare

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// CompareArgs are the arguments of compare.
type CompareArgs struct {
	Source         *pgkit.Database `hcl:"source" doc:"The database copied from."`
	Target         *pgkit.Database `hcl:"target" doc:"The database copied to."`
	Jobs           *int            `hcl:"jobs,optional" doc:"How many queries run at once on each side, each on its own connection (default 4)."`
	Schemas        []string        `hcl:"schemas,optional" doc:"Compare only these schemas (default: every schema but pg_catalog, information_schema and pg_toast)."`
	ExcludeSchemas []string        `hcl:"exclude_schemas,optional" doc:"Schemas left out of the comparison."`
	Tables         []string        `hcl:"tables,optional" doc:"Compare only these tables and their columns, indexes and constraints (\"schema.table\" or \"table\", with * and ? wildcards; views and sequences follow schemas only)."`
	ExcludeTables  []string        `hcl:"exclude_tables,optional" doc:"Tables left out of the comparison, written as in tables."`
	Counts         *bool           `hcl:"counts,optional" doc:"Count the rows of every table exactly on both sides (default true); false compares the schema only."`
	Data           *string         `hcl:"data,optional" doc:"How table data is compared: \"counts\" (default: exact row counts) or \"checksum\" (a checksum of every row, computed in both databases, which also counts; a difference is narrowed by key range to the first differing keys)."`
	ChunkRows      *int            `hcl:"chunk_rows,optional" doc:"With data = \"checksum\": about how many rows each key range holds when a table whose data differs is split to find the rows that differ (default 100000)."`
}

// CompareOutput is the output of compare. Every list is sorted; tables and
// sequences are named "schema.name", objects on a table
// "schema.name on schema.table".
type CompareOutput struct {
	Tables          []CompareTable     `json:"tables" doc:"Every table on either side with its exact row count on each (null on the side that lacks it, or with counts = false); a partitioned table counts the rows of its partitions."`
	Mismatched      []string           `json:"mismatched" doc:"Tables whose row counts differ, whose data differs (data = \"checksum\") or that exist on one side only."`
	MissingTables   []string           `json:"missing_tables" doc:"Tables on the source that the target lacks."`
	ExtraTables     []string           `json:"extra_tables" doc:"Tables on the target that the source lacks."`
	Columns         CompareColumns     `json:"columns" doc:"Column differences in the tables present on both sides."`
	Indexes         CompareIndexes     `json:"indexes" doc:"Index differences."`
	Constraints     CompareConstraints `json:"constraints" doc:"Primary key, unique, check, exclusion and trigger constraint differences."`
	ForeignKeys     CompareDefs        `json:"foreign_keys" doc:"Foreign key differences."`
	Sequences       []CompareSequence  `json:"sequences" doc:"Every sequence on either side with the last value it handed out on each."`
	SequencesBehind []string           `json:"sequences_behind" doc:"Sequences the target lacks or that would hand out values the source already handed out."`
	Extensions      CompareDefs        `json:"extensions" doc:"Extension differences (name, version and schema)."`
	Views           CompareObjects     `json:"views" doc:"View and materialized view differences."`
	Settings        CompareDefs        `json:"settings" doc:"Differences in the settings each database gives its sessions: ALTER DATABASE ... SET (\"search_path = ...\") and ALTER ROLE ... IN DATABASE ... SET (\"role alice: work_mem = ...\"), a role's only where the role exists on both sides. pg_dump/pg_restore carry neither: a lost search_path breaks unqualified calls into the schemas it names (Heroku's heroku_ext)."`
	Checksums       []CompareChecksum  `json:"checksums" doc:"With data = \"checksum\": every table on either side with whether its data matches and, when not, where it differs (empty with data = \"counts\")."`
	Equal           bool               `json:"equal" doc:"Nothing differs: every count, checksum and sequence matches and every list of differences is empty."`
	Seconds         float64            `json:"seconds" doc:"How long the comparison took."`
}

// CompareTable is one table's row counts.
type CompareTable struct {
	Schema     string `json:"schema" doc:"The table's schema."`
	Name       string `json:"name" doc:"The table's name."`
	SourceRows *int64 `json:"source_rows" doc:"Exact row count on the source; null when the source lacks the table or counts = false."`
	TargetRows *int64 `json:"target_rows" doc:"Exact row count on the target; null when the target lacks the table or counts = false."`
	Match      bool   `json:"match" doc:"The table exists on both sides with the same row count."`
}

// CompareChecksum is one table's data checksum on both sides.
type CompareChecksum struct {
	Schema           string       `json:"schema" doc:"The table's schema."`
	Name             string       `json:"name" doc:"The table's name."`
	Match            bool         `json:"match" doc:"The table exists on both sides and every row is the same on both (compared over the columns both sides have)."`
	SourceRows       *int64       `json:"source_rows" doc:"Rows on the source; null when the source lacks the table."`
	TargetRows       *int64       `json:"target_rows" doc:"Rows on the target; null when the target lacks the table."`
	Key              []string     `json:"key" doc:"The key columns a difference is narrowed by (the primary key, else a unique key on NOT NULL columns); empty when the table has none, and then a difference is narrowed by the rows' hashes and its rows named by all their columns."`
	Chunks           int          `json:"chunks" doc:"How many checksums were computed for the table, both sides counted: one of the whole table on each, then one per key range (or hash bucket, without a key) while narrowing a difference."`
	MismatchedRanges []string     `json:"mismatched_ranges" doc:"The smallest key ranges found to differ, in which differing_keys were found (\"id 1000..1999\", \"(order_id, line) (7, 1)..(93, 2)\"), at most 10; empty for a table without a key."`
	DifferingKeys    []CompareKey `json:"differing_keys" doc:"The first differing rows in key order, at most 10. Without a key: rows named by all their columns (values cut at 100 bytes), missing ones first; a changed row is one missing and one extra."`
	Note             string       `json:"note" doc:"Why a difference could not be narrowed to keys, which columns were left out as on one side only, or \"\"."`
}

// CompareKey is a row that differs, named by its key (by all its columns
// in a table without one).
type CompareKey struct {
	Key    string   `json:"key" doc:"The key, as column=value pairs: \"id=42\", \"order_id=7, line=2\" (every column, for a table without a key)."`
	Values []string `json:"values" doc:"The key's values as text, in key column order."`
	Kind   string   `json:"kind" doc:"\"changed\" (on both sides, different), \"missing\" (on the source only) or \"extra\" (on the target only)."`
}

// CompareSequence is one sequence's value on both sides.
type CompareSequence struct {
	Schema      string `json:"schema" doc:"The sequence's schema."`
	Name        string `json:"name" doc:"The sequence's name."`
	SourceValue *int64 `json:"source_value" doc:"The last value the source handed out (start minus increment when never used); null when the source lacks it."`
	TargetValue *int64 `json:"target_value" doc:"The last value the target handed out (start minus increment when never used); null when the target lacks it."`
}

// CompareObjects lists objects present on one side only.
type CompareObjects struct {
	Missing []string `json:"missing" doc:"On the source, not on the target."`
	Extra   []string `json:"extra" doc:"On the target, not on the source."`
}

// CompareDefs lists objects present on one side only or defined differently.
type CompareDefs struct {
	Missing []string `json:"missing" doc:"On the source, not on the target."`
	Extra   []string `json:"extra" doc:"On the target, not on the source."`
	Changed []string `json:"changed" doc:"On both sides but defined differently, each with both definitions."`
}

// CompareColumns lists column differences.
type CompareColumns struct {
	Missing        []string `json:"missing" doc:"Columns (schema.table.column) on the source, not on the target."`
	Extra          []string `json:"extra" doc:"Columns on the target, not on the source."`
	TypeChanged    []string `json:"type_changed" doc:"Columns whose type differs, with both types."`
	NotNullChanged []string `json:"not_null_changed" doc:"Columns NOT NULL on one side only."`
	DefaultChanged []string `json:"default_changed" doc:"Columns whose default, identity or generation expression differs (a lost nextval default breaks inserts)."`
}

// CompareIndexes lists index differences.
type CompareIndexes struct {
	Missing []string `json:"missing" doc:"Indexes on the source, not on the target."`
	Extra   []string `json:"extra" doc:"Indexes on the target, not on the source."`
	Changed []string `json:"changed" doc:"Indexes defined differently, with both definitions."`
	Invalid []string `json:"invalid" doc:"Indexes invalid on the target (a failed concurrent build): the planner ignores them and a unique one enforces nothing."`
}

// CompareConstraints lists constraint differences.
type CompareConstraints struct {
	Missing  []string `json:"missing" doc:"Constraints on the source, not on the target."`
	Extra    []string `json:"extra" doc:"Constraints on the target, not on the source."`
	Changed  []string `json:"changed" doc:"Constraints defined differently, with both definitions; NOT VALID counts as part of the definition."`
	NotValid []string `json:"not_valid" doc:"Constraints of any kind, foreign keys included, that are NOT VALID on the target: its existing rows were never checked."`
}

var Type = steptype.Def[CompareArgs, CompareOutput]{
	Summary:    "Compares two databases: exact row counts or data checksums (in parallel, in one snapshot per side), columns, indexes, constraints, foreign keys, sequences, extensions and views.",
	IsReadOnly: true,
	Fn:         Run,
	ArgChecks:  map[string]func(string) error{"data": steptype.CheckOneOf("counts", "checksum")},
}

// compareOptions are the arguments, checked and with defaults applied.
type compareOptions struct {
	jobs                    int
	counts                  bool // count rows (data = "counts" or "checksum")
	checksum                bool // data = "checksum"
	chunkRows               int64
	schemas, excludeSchemas []string // never nil: they are query parameters
	tables, excludeTables   []string
}

func Run(ctx context.Context, env *steptype.Env, a *CompareArgs) (*CompareOutput, error) {
	return RunInSnapshot(ctx, env, a, "")
}

// RunInSnapshot is Run with the source read in sourceSnapshot, a snapshot
// exported by a transaction the caller keeps open until it returns (""
// takes one of its own): capture's verify compares the target with the
// source as of the point the target was replayed to.
func RunInSnapshot(ctx context.Context, env *steptype.Env, a *CompareArgs, sourceSnapshot string) (*CompareOutput, error) {
	start := time.Now()
	o, err := newCompareOptions(a)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	// Both sides at once: a failure on one cancels the other. Each side
	// keeps its snapshot open until the end, for the checksum workers.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var src, tgt *cmpSide
	defer func() { src.close(ctx) }()
	defer func() { tgt.close(ctx) }()
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		if src, err = cmpInspect(ctx, env, a.Source, o, sourceSnapshot); err != nil {
			cancel(fmt.Errorf("source: %w", err))
		}
	})
	wg.Go(func() {
		var err error
		if tgt, err = cmpInspect(ctx, env, a.Target, o, ""); err != nil {
			cancel(fmt.Errorf("target: %w", err))
		}
	})
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	var sums []*cmpTableSum
	if o.checksum {
		if sums, err = cmpChecksum(ctx, env, src, tgt, o); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	out := cmpDiff(src, tgt)
	cmpAddChecksums(out, sums)
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

func newCompareOptions(a *CompareArgs) (*compareOptions, error) {
	if a.Source == nil || a.Target == nil {
		return nil, errors.New("source and target are both required")
	}
	o := &compareOptions{
		jobs:           4,
		counts:         a.Counts == nil || *a.Counts,
		chunkRows:      100000,
		schemas:        append([]string{}, a.Schemas...),
		excludeSchemas: append([]string{}, a.ExcludeSchemas...),
		tables:         a.Tables,
		excludeTables:  a.ExcludeTables,
	}
	if a.Jobs != nil {
		if *a.Jobs < 1 {
			return nil, fmt.Errorf("jobs must be at least 1, not %d", *a.Jobs)
		}
		o.jobs = *a.Jobs
	}
	if a.Data != nil {
		switch *a.Data {
		case "counts":
		case "checksum":
			if !o.counts {
				return nil, errors.New(`data = "checksum" compares data, counts = false compares the schema only: give one or the other`)
			}
			o.checksum = true
		default:
			return nil, fmt.Errorf(`data must be "counts" or "checksum", not %q`, *a.Data)
		}
	}
	if a.ChunkRows != nil {
		if *a.ChunkRows < 1 {
			return nil, fmt.Errorf("chunk_rows must be at least 1, not %d", *a.ChunkRows)
		}
		o.chunkRows = int64(*a.ChunkRows)
	}
	for _, p := range append(append([]string{}, a.Tables...), a.ExcludeTables...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("table pattern %q: %w", p, err)
		}
	}
	return o, nil
}

// keepTable applies tables and exclude_tables.
func (o *compareOptions) keepTable(schema, name string) bool {
	return (len(o.tables) == 0 || cmpMatch(o.tables, schema, name)) && !cmpMatch(o.excludeTables, schema, name)
}

// cmpMatch reports whether a pattern names the table: "schema.table"
// patterns match the qualified name, bare ones the table in any schema.
func cmpMatch(patterns []string, schema, name string) bool {
	for _, p := range patterns {
		subject := name
		if strings.Contains(p, ".") {
			subject = schema + "." + name
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

// cmpSide is what compare learned about one database, and the open
// transaction whose snapshot its workers share.
type cmpSide struct {
	db       *pgkit.Database
	conn     *pgx.Conn
	snapshot string // "" when the server could not export one
	cat      *cmpCatalog
	rows     map[string]int64 // exact counts of plain tables and partitions; nil with counts = false
}

// close ends the side's transaction and connection; nil does nothing.
func (s *cmpSide) close(ctx context.Context) {
	if s != nil && s.conn != nil {
		pgkit.Close(ctx, s.conn)
	}
}

// cmpSettings are set in every transaction compare opens.
const cmpSettings = `
SET LOCAL search_path = pg_catalog;      -- catalog renderings then qualify every name alike on both sides
SET LOCAL row_security = off;            -- a count that row-level security would filter fails instead (as in pg_dump)
SET LOCAL statement_timeout = 0;         -- the step's timeout bounds the work, not a server default meant for the application
SET LOCAL idle_in_transaction_session_timeout = 0; -- the exporting transaction sits idle while the workers count or checksum
`

// cmpInspect opens one database's side of the comparison: a transaction
// whose snapshot it exports, the catalogs read in it, and (with data =
// "counts") every table counted in it. Counting and checksum connections
// import the snapshot (as pg_dump --jobs does), so the data and the schema
// describe a single instant even while the application writes. The side
// stays open until closed, even when an error is returned. With a
// snapshot given, the side reads in it and its workers import it.
func cmpInspect(ctx context.Context, env *steptype.Env, db *pgkit.Database, o *compareOptions, snapshot string) (*cmpSide, error) {
	conn, err := pgkit.Connect(ctx, env, db, true)
	if err != nil {
		return nil, err
	}
	s := &cmpSide{db: db, conn: conn}
	major, err := pgkit.ServerMajor(ctx, conn)
	if err != nil {
		return s, fmt.Errorf("database %s: %w", db.Name, err)
	}
	if major < 12 {
		return s, fmt.Errorf("database %s runs PostgreSQL %d; compare needs 12 or newer", db.Name, major)
	}
	tx, err := cmpBegin(ctx, conn, snapshot)
	if err != nil {
		return s, fmt.Errorf("database %s: begin a read-only transaction: %w", db.Name, err)
	}
	if snapshot != "" {
		s.snapshot = snapshot
	} else if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&s.snapshot); err != nil {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		// Some poolers and old standbys cannot export snapshots: each count
		// or checksum is still exact, only not all taken at the same instant.
		env.Logf("database %s: cannot share one snapshot between connections (%v); each table is read exactly but at its own time", db.Name, err)
		_ = tx.Rollback(ctx)
		if tx, err = cmpBegin(ctx, conn, ""); err != nil {
			return s, fmt.Errorf("database %s: begin a read-only transaction: %w", db.Name, err)
		}
	}
	if s.cat, err = cmpReadCatalog(ctx, tx, o); err != nil {
		return s, fmt.Errorf("read the catalogs of database %s: %w", db.Name, err)
	}
	if o.counts && !o.checksum {
		if s.rows, err = cmpCount(ctx, env, db, s.snapshot, s.cat.countable(), o.jobs); err != nil {
			return s, err
		}
	}
	return s, nil
}

// cmpBegin starts a REPEATABLE READ READ ONLY transaction, in the
// exported snapshot when one is given.
func cmpBegin(ctx context.Context, conn *pgx.Conn, snapshot string) (pgx.Tx, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	sql := cmpSettings
	if snapshot != "" {
		sql = pgkit.SetSnapshotSQL(snapshot) + ";" + sql
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

// cmpCount counts the given tables exactly, jobs at a time, each worker on
// its own connection inside the side's snapshot. Biggest tables come first
// so that one huge table does not start last.
func cmpCount(ctx context.Context, env *steptype.Env, db *pgkit.Database, snapshot string, tables []cmpRelation, jobs int) (map[string]int64, error) {
	rows := make(map[string]int64, len(tables))
	if len(tables) == 0 {
		return rows, nil
	}
	jobs = min(jobs, len(tables))
	start := time.Now()
	env.Logf("database %s: counting the rows of %s, %d at a time", db.Name, plural.Of(len(tables), "table"), jobs)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	pgkit.RunWorkers(ctx, cancel, jobs, tables, func(work <-chan cmpRelation) error {
		return cmpCountWorker(ctx, env, db, snapshot, work, func(t cmpRelation, n int64) {
			mu.Lock()
			rows[t.key()] = n
			mu.Unlock()
		})
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	env.Logf("database %s: counted %s in %.1fs", db.Name, plural.Of(len(tables), "table"), time.Since(start).Seconds())
	return rows, nil
}

// cmpCountWorker counts the tables it receives until work is closed.
func cmpCountWorker(ctx context.Context, env *steptype.Env, db *pgkit.Database, snapshot string, work <-chan cmpRelation, record func(cmpRelation, int64)) error {
	conn, err := pgkit.Connect(ctx, env, db, true)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	tx, err := cmpBegin(ctx, conn, snapshot)
	if err != nil {
		return fmt.Errorf("database %s: begin a read-only transaction in the shared snapshot: %w", db.Name, err)
	}
	for t := range work {
		var n int64
		// ONLY: a parent's rows are counted once, here, and its
		// children's in their own queries.
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM ONLY "+pgkit.Qualified(t.schema, t.name)).Scan(&n); err != nil {
			return fmt.Errorf("count the rows of %s in database %s: %w%s", t.key(), db.Name, err, cmpRowSecurityHint(err, t))
		}
		record(t, n)
	}
	return nil
}

// cmpRowSecurityHint explains a count that row-level security refused
// (compare reads with row_security off, so that it fails rather than count
// filtered rows). After a restore the target role owns the table, and a
// FORCE that the restore recreated binds it: the fix is the owner's.
func cmpRowSecurityHint(err error, t cmpRelation) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "row-level security") {
		return ""
	}
	q := pgkit.Qualified(t.schema, t.name)
	return fmt.Sprintf(" (row-level security binds the role compare connects as: it does not own the table, or the table FORCEs row level security on its owner, "+
		"as after a restore that recreated FORCE on a table the target role owns without BYPASSRLS; as the owner, run ALTER TABLE %[1]s NO FORCE ROW LEVEL SECURITY; before compare, and ALTER TABLE %[1]s FORCE ROW LEVEL SECURITY; once it passed, or compare as a role with BYPASSRLS)", q)
}
