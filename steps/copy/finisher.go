package copy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
)

// copyFinisher builds a table's indexes (and its primary key, unique and
// exclusion constraints) and analyzes it as soon as its rows are in, and
// adds a foreign key as soon as both its tables are, while other tables
// are still being copied: the one big table that a copy usually waits
// for leaves the target's other cores idle, and they finish the small
// tables meanwhile. The post-data phase then restores what is left: what
// belongs to partitioned tables, triggers, rules, policies, materialized
// view data, and what the finisher had no time for.
//
// It restores the archive's own entries (pg_restore --use-list), so an
// index is created exactly as the full restore would create it; and
// since an index or constraint is created whole or not at all, the
// post-data phase skips those that exist (remainingList).
type copyFinisher struct {
	c       *copyRun
	archive string
	bin     string
	entries []tocEntry
	byTable map[string][]int // schema.table → its index entries (indexes in entries)
	fks     []copyFK         // foreign keys between tables copied here
	queue   chan *copyTable
	done    map[string]bool // tables whose rows are in; read by the finisher's goroutine only

	mu       sync.Mutex
	analyzed map[string]bool // schema.table, analyzed with its indexes
	built    []CopyIndex
	err      error

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// failed is told the finisher's error at once, so that the copy stops
	// instead of copying every other row first only to fail at post-data.
	failed func(error)
}

// startFinisher starts the finisher, or returns nil when there is nothing
// for it to do (the post-data phase is done, or the data phase is).
func (c *copyRun) startFinisher(ctx context.Context, failed func(error)) (*copyFinisher, error) {
	if c.state.PostDataDone || c.state.DataDone || len(c.tables) == 0 {
		return nil, nil
	}
	f := &copyFinisher{c: c, archive: filepath.Join(c.workDir, copyArchiveFile), byTable: map[string][]int{},
		queue: make(chan *copyTable, len(c.tables)), done: map[string]bool{}, analyzed: map[string]bool{}, failed: failed}
	var err error
	if f.bin, _, err = pgkit.Tool(ctx, "pg_restore", max(c.srcMajor, c.dstMajor)); err != nil {
		return nil, err
	}
	if f.entries, err = listArchive(ctx, f.bin, f.archive); err != nil {
		return nil, err
	}
	if err := f.mapEntries(ctx); err != nil {
		return nil, err
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Go(func() { f.loop(ctx) })
	return f, nil
}

// copyFK is a foreign key entry of the archive and the two tables it
// needs: the finisher adds it once both are copied.
type copyFK struct {
	entry                   int // index in entries
	referencing, referenced string
	issued                  bool
}

// mapEntries finds the table each index entry of the archive belongs to:
// an index's entry names only the index, so the source's catalog (in the
// snapshot) says which table it is on; a constraint's names its table.
// A foreign key's entry names its table, and the catalog the table it
// references.
func (f *copyFinisher) mapEntries(ctx context.Context) error {
	rows, err := f.c.snap.tx.Query(ctx, `
SELECT n.nspname, i.relname, tn.nspname || '.' || t.relname
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE t.relkind = 'r'`)
	if err != nil {
		return fmt.Errorf("source %s: list indexes: %w", f.c.o.src.Name, err)
	}
	indexTable := map[string]string{}
	for rows.Next() {
		var ns, index, table string
		if err := rows.Scan(&ns, &index, &table); err != nil {
			rows.Close()
			return err
		}
		indexTable[ns+"."+index] = table
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("source %s: list indexes: %w", f.c.o.src.Name, err)
	}
	rows, err = f.c.snap.tx.Query(ctx, `
SELECT n.nspname, t.relname || ' ' || c.conname, rn.nspname || '.' || r.relname
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = c.confrelid JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.contype = 'f' AND t.relkind = 'r' AND r.relkind = 'r'`)
	if err != nil {
		return fmt.Errorf("source %s: list foreign keys: %w", f.c.o.src.Name, err)
	}
	fkReferenced := map[string]string{}
	for rows.Next() {
		var ns, tag, referenced string
		if err := rows.Scan(&ns, &tag, &referenced); err != nil {
			rows.Close()
			return err
		}
		fkReferenced[ns+"\x00"+tag] = referenced
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("source %s: list foreign keys: %w", f.c.o.src.Name, err)
	}

	names := map[string][]string{}
	copied := map[string]bool{}
	for _, t := range f.c.tables {
		names[t.schema] = append(names[t.schema], t.name)
		copied[t.key()] = true
	}
	// The tag of a constraint is "table name": its table is the longest
	// table name the tag starts with.
	tableOf := func(e tocEntry) string {
		best := ""
		for _, n := range names[e.namespace] {
			if strings.HasPrefix(e.tag, n+" ") && len(n) > len(best) {
				best = n
			}
		}
		if best == "" {
			return ""
		}
		return e.namespace + "." + best
	}
	for i, e := range f.entries {
		switch e.desc {
		case "INDEX":
			if table := indexTable[e.namespace+"."+e.tag]; table != "" {
				f.byTable[table] = append(f.byTable[table], i)
			}
		case "CONSTRAINT": // primary key, unique, exclusion: each builds an index
			if table := tableOf(e); table != "" {
				f.byTable[table] = append(f.byTable[table], i)
			}
		case "FK CONSTRAINT":
			referencing, referenced := tableOf(e), fkReferenced[e.namespace+"\x00"+e.tag]
			if copied[referencing] && copied[referenced] {
				f.fks = append(f.fks, copyFK{entry: i, referencing: referencing, referenced: referenced})
			}
		}
	}
	return nil
}

// tableDone queues a table whose rows are all in.
func (f *copyFinisher) tableDone(t *copyTable) {
	if f != nil {
		f.queue <- t // sized for every table: never blocks
	}
}

// close says no more tables will come.
func (f *copyFinisher) close() {
	if f != nil {
		close(f.queue)
	}
}

// failure is the finisher's error so far, nil if none.
func (f *copyFinisher) failure() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// wait waits until every table queued is finished.
func (f *copyFinisher) wait() error {
	if f == nil {
		return nil
	}
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// stop abandons the work (the copy failed) and waits for the goroutine.
func (f *copyFinisher) stop() {
	if f != nil {
		f.cancel()
		f.wg.Wait()
	}
}

// loop finishes tables in batches: each pg_restore run takes every table
// that finished since the last one began.
func (f *copyFinisher) loop(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			pgkit.Close(ctx, conn)
		}
	}()
	for {
		var t *copyTable
		select {
		case <-ctx.Done():
			return // stop: the copy failed
		case next, ok := <-f.queue:
			if !ok {
				return // every table is finished
			}
			t = next
		}
		batch := []*copyTable{t}
	more:
		for {
			select {
			case t, ok := <-f.queue:
				if !ok {
					break more
				}
				batch = append(batch, t)
			default:
				break more
			}
		}
		if err := f.finish(ctx, batch, &conn); err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
			if ctx.Err() == nil {
				f.failed(err)
			}
			return
		}
	}
}

// finish builds the batch's indexes and the foreign keys whose tables
// are now both in (pg_restore orders them: a key after the index it
// references), then analyzes the batch's tables.
func (f *copyFinisher) finish(ctx context.Context, batch []*copyTable, conn **pgx.Conn) error {
	want := map[int]bool{}
	for _, t := range batch {
		f.done[t.key()] = true
		for _, i := range f.byTable[t.key()] {
			want[i] = true
		}
	}
	for i := range f.fks {
		fk := &f.fks[i]
		if !fk.issued && f.done[fk.referencing] && f.done[fk.referenced] {
			fk.issued = true
			want[fk.entry] = true
		}
	}
	if len(want) > 0 {
		var b strings.Builder
		for i, e := range f.entries {
			if !want[i] {
				b.WriteString(";")
			}
			b.WriteString(e.line)
			b.WriteString("\n")
		}
		list, err := os.CreateTemp(f.c.workDir, "early-*.list")
		if err != nil {
			return fmt.Errorf("post-data: %w", err)
		}
		defer os.Remove(list.Name())
		_, err = list.WriteString(b.String())
		if cerr := list.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("post-data: %w", err)
		}
		jobs := min(f.c.o.indexJobs, len(want))
		r := restoreRun{section: "post-data", jobs: jobs, list: list.Name(), env: f.c.restoreEnv(),
			timings: newRestoreTimings(f.entries, f.c.all, jobs)}
		if err := f.c.restore(ctx, f.archive, r); err != nil {
			return fmt.Errorf("post-data: build the indexes of %s: %w", copyTableNames(batch), err)
		}
		f.mu.Lock()
		f.built = append(f.built, r.timings.indexes()...)
		f.mu.Unlock()
	}
	if !f.c.o.analyze {
		return nil
	}
	for _, t := range batch {
		if t.rootName != "" {
			continue // its partitioned table's ANALYZE covers it
		}
		if *conn == nil {
			var err error
			if *conn, err = copyConnect(ctx, f.c.env, f.c.o.dst, false, nil); err != nil {
				return err
			}
		}
		if _, err := (*conn).Exec(ctx, "ANALYZE "+t.qualified()); err != nil {
			return fmt.Errorf("analyze %s: %w", t.key(), err)
		}
		f.mu.Lock()
		f.analyzed[t.key()] = true
		f.mu.Unlock()
	}
	return nil
}

// results are the indexes built and the tables analyzed.
func (f *copyFinisher) results() ([]CopyIndex, map[string]bool) {
	if f == nil {
		return nil, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.built, f.analyzed
}

func copyTableNames(tables []*copyTable) string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.key()
	}
	return strings.Join(names, ", ")
}
