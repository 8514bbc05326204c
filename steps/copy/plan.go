package copy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// copyTable is a table on the source: what the catalogs say, and, while
// its data is copied, how far it has come.
type copyTable struct {
	schema, name         string
	rootSchema, rootName string // the partitioned table at the top of its tree; "" when not a partition
	partitioned          bool   // no data of its own: its partitions are copied
	bytes                int64  // pg_relation_size: the main fork, what a scan reads
	tuples               int64  // reltuples, an estimate (-1: never analyzed)
	columns              []string
	binarySafe           bool // every column's type travels in binary COPY between databases

	// While copying.
	chunks    int          // as planned
	split     atomic.Int32 // chunks added by adaptive splitting
	probe     probeResult  // what the adaptive chunk measured (under mu)
	remaining atomic.Int32
	rows      atomic.Int64
	streamed  atomic.Int64
	mu        sync.Mutex
	started   time.Time
}

func (t *copyTable) key() string       { return t.schema + "." + t.name }
func (t *copyTable) chunkCount() int   { return t.chunks + int(t.split.Load()) }
func (t *copyTable) qualified() string { return pgkit.Qualified(t.schema, t.name) }

// columnList is "(a, b, c)", or "" for a table without columns.
func (t *copyTable) columnList() string {
	if len(t.columns) == 0 {
		return ""
	}
	q := make([]string, len(t.columns))
	for i, c := range t.columns {
		q[i] = pgkit.QuoteIdent(c)
	}
	return " (" + strings.Join(q, ", ") + ")"
}

// listCopyTables reads the source's tables in the snapshot: plain tables,
// partitions and partitioned tables, logged or unlogged; not temporary
// tables, not tables that belong to an extension (the extension creates
// them), not foreign tables (their data is elsewhere).
//
// A column's type travels in binary COPY between two databases when its
// binary form holds no OID that differs between them: built-in types
// (except the reg* types, which are OIDs), enums (sent as their label),
// arrays of built-in types, and domains over those. Arrays of enums and
// composite types embed their element type's OID: text for them.
func listCopyTables(ctx context.Context, tx pgx.Tx) ([]*copyTable, error) {
	const q = `
SELECT n.nspname, c.relname, coalesce(rn.nspname, ''), coalesce(r.relname, ''),
       c.relkind = 'p', pg_catalog.pg_relation_size(c.oid), c.reltuples::int8,
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '{}'),
       NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
         LEFT JOIN pg_catalog.pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
           AND NOT (b.typtype <> 'd' AND CASE
                 WHEN e.oid IS NOT NULL THEN e.oid < 16384 AND e.typname !~ '^reg'
                 ELSE b.oid < 16384 AND b.typname !~ '^reg' OR b.typtype = 'e' END))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class r ON c.relispartition AND r.oid = pg_catalog.pg_partition_root(c.oid)
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*copyTable, error) {
		t := &copyTable{}
		err := r.Scan(&t.schema, &t.name, &t.rootSchema, &t.rootName, &t.partitioned, &t.bytes, &t.tuples, &t.columns, &t.binarySafe)
		return t, err
	})
}

// copyChunk is one part of a table: the rows in a range of its pages, or
// the whole table.
type copyChunk struct {
	table      *copyTable
	index      int
	from, to   int64 // pages [from, to); -1: open-ended
	estimate   int64 // bytes on disk in the range
	binary     bool
	freeze     bool         // empty the table in the same transaction, and load the rows frozen
	adaptive   bool         // a whole table that first copies probePages and measures, then goes on whole or splits the rest
	probeDisk  atomic.Int64 // once split: the disk bytes the probe covered (the rest went to new chunks)
	streamed   atomic.Int64
	rows       atomic.Int64 // rows seen so far (COPY sends one message per row)
	inProgress atomic.Bool
	finished   atomic.Bool
}

// planChunks splits the tables into chunks, biggest first: a table bigger
// than split bytes becomes ranges of its pages (ctid ranges, which a TID
// range scan reads without touching the rest, PostgreSQL 14 and newer),
// in a multiple of jobs when it is that big, so that the workers finish
// together instead of waiting on one last chunk.
//
// A table copied whole that is big enough (tune.minBytes) is adaptive:
// see copyRun.copyAdaptive.
func planChunks(tables []*copyTable, split int64, jobs int, canSplit, binary bool, blockSize int64, tune adaptiveTuning) []*copyChunk {
	var chunks []*copyChunk
	for _, t := range tables {
		n := int64(1)
		if canSplit && t.bytes > split {
			n = (t.bytes + split - 1) / split
			if n > 1 && t.bytes > int64(jobs)*split/2 {
				n = (n + int64(jobs) - 1) / int64(jobs) * int64(jobs)
			}
		}
		pages := t.bytes / blockSize
		if pages < n {
			n = 1
		}
		t.chunks = int(n)
		t.remaining.Store(int32(n))
		b := binary && t.binarySafe
		if n == 1 {
			ch := &copyChunk{table: t, from: -1, to: -1, estimate: t.bytes, binary: b, freeze: true}
			ch.adaptive = canSplit && jobs > 1 && tune.minBytes > 0 && t.bytes >= tune.minBytes && pages >= 2*tune.probePages
			chunks = append(chunks, ch)
			continue
		}
		per := pages / n
		for i := int64(0); i < n; i++ {
			ch := &copyChunk{table: t, index: int(i), from: i * per, to: (i + 1) * per, estimate: per * blockSize, binary: b}
			if i == 0 {
				ch.from = -1 // also whatever sits before page 0: nothing, but no bound is cheaper
			}
			if i == n-1 {
				ch.to = -1 // and whatever lies past the size measured
				ch.estimate = t.bytes - i*per*blockSize
			}
			chunks = append(chunks, ch)
		}
	}
	sort.SliceStable(chunks, func(i, j int) bool { return chunks[i].estimate > chunks[j].estimate })
	return chunks
}

// sourceSQL is the COPY that reads the chunk on the source. A whole table
// is read with COPY table TO, which scans it without the executor; a range
// with a query whose ctid bounds become a TID range scan.
func (ch *copyChunk) sourceSQL() string { return ch.rangeSQL(ch.from, ch.to) }

// rangeSQL reads pages [from, to) of the chunk's table (-1: open-ended).
func (ch *copyChunk) rangeSQL(from, to int64) string {
	t := ch.table
	format := ch.format()
	if from < 0 && to < 0 {
		return fmt.Sprintf("COPY %s%s TO STDOUT (FORMAT %s)", t.qualified(), t.columnList(), format)
	}
	cols := "*"
	if len(t.columns) == 0 {
		cols = ""
	} else {
		q := make([]string, len(t.columns))
		for i, c := range t.columns {
			q[i] = pgkit.QuoteIdent(c)
		}
		cols = strings.Join(q, ", ")
	}
	var where []string
	if from >= 0 {
		where = append(where, fmt.Sprintf("ctid >= '(%d,0)'::pg_catalog.tid", from))
	}
	if to >= 0 {
		where = append(where, fmt.Sprintf("ctid < '(%d,0)'::pg_catalog.tid", to))
	}
	// ONLY: a table with inheritance children holds their rows apart.
	return fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT (FORMAT %s)", cols, t.qualified(), strings.Join(where, " AND "), format)
}

// targetSQL is the COPY that writes the chunk on the target.
func (ch *copyChunk) targetSQL() string {
	opts := "FORMAT " + ch.format()
	if ch.freeze {
		opts += ", FREEZE"
	}
	return fmt.Sprintf("COPY %s%s FROM STDIN (%s)", ch.table.qualified(), ch.table.columnList(), opts)
}

func (ch *copyChunk) format() string {
	if ch.binary {
		return "binary"
	}
	return "text"
}

func (ch *copyChunk) String() string {
	n := ch.table.chunkCount()
	if n == 1 {
		return ch.table.key()
	}
	return fmt.Sprintf("%s (chunk %d of %d)", ch.table.key(), ch.index+1, n)
}

// ownedSequences returns pg_dump patterns for the sequences that the
// tables own (serial and identity columns).
func ownedSequences(ctx context.Context, tx pgx.Tx, tables []*copyTable) ([]string, error) {
	schemas, names := make([]string, len(tables)), make([]string, len(tables))
	for i, t := range tables {
		schemas[i], names[i] = t.schema, t.name
	}
	rows, err := tx.Query(ctx, `
SELECT sn.nspname, s.relname
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.deptype IN ('a', 'i')
  AND (tn.nspname, t.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, schemas, names)
	if err != nil {
		return nil, fmt.Errorf("list the sequences of the tables left out: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgDumpPattern(schema, name), err
	})
}
