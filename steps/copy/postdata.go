package copy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
)

// phasePostData restores the post-data section with index_jobs parallel
// sessions: pg_restore builds independent indexes at once and holds back
// what depends on others (a foreign key waits for the primary key it
// references). Constraints that were NOT VALID on the source stay NOT
// VALID: pg_dump writes them so.
func (c *copyRun) phasePostData(ctx context.Context) error {
	return c.timed(c.state.PostDataDone, &c.out.Phases.PostData, func() error {
		archive := filepath.Join(c.workDir, copyArchiveFile)
		if _, err := os.Stat(archive); err != nil {
			return fmt.Errorf("post-data: the schema archive of this copy is gone (%w): start a fresh run (planrun apply --restart) with an empty target", err)
		}
		bin, _, err := pgkit.Tool(ctx, "pg_restore", max(c.srcMajor, c.dstMajor))
		if err != nil {
			return err
		}
		entries, err := listArchive(ctx, bin, archive)
		if err != nil {
			return err
		}
		// What the finisher built during the data phase is there: wait
		// for it to end its last batch.
		if err := c.fin.wait(); err != nil {
			return err
		}
		early, _ := c.fin.results()
		r := restoreRun{section: "post-data", jobs: c.o.indexJobs, timings: newRestoreTimings(entries, c.all, c.o.indexJobs), env: c.restoreEnv()}
		// Keep what exists, built by the finisher or by an interrupted
		// run: an index or a constraint is created whole or not at all.
		if r.list, err = c.remainingList(ctx, entries); err != nil {
			return err
		}
		// An interrupted post-data restore may have left the rest half
		// there (a policy, a comment): drop and create it again.
		r.clean = c.state.PostDataStarted
		if err := c.state.update(func(s *copyState) { s.PostDataStarted = true }); err != nil {
			return err
		}
		c.env.Logf("post-data: building indexes, constraints and foreign keys, %d at a time", c.o.indexJobs)
		stop := func() {}
		if c.env.Progress != nil {
			stop = every(ctx, copyProgressEvery, func() { c.env.Progress(r.timings.progress()) })
		}
		err = c.restore(ctx, archive, r)
		stop()
		if err != nil {
			return fmt.Errorf("post-data: %w", err)
		}
		built := append(early, r.timings.indexes()...)
		sort.SliceStable(built, func(i, j int) bool { return built[i].Seconds > built[j].Seconds })
		return c.state.update(func(s *copyState) {
			// Saved only now: after an interruption, the indexes are
			// those this run built.
			s.Indexes = built
			s.PostDataDone = true
		})
	})
}

// restoreEnv is the environment of the index-building pg_restore runs:
// their sessions' maintenance_work_mem.
func (c *copyRun) restoreEnv() []string {
	if c.o.maintenanceWorkMem == "" {
		return nil
	}
	return []string{"PGOPTIONS=" + strings.TrimSpace(os.Getenv("PGOPTIONS")+" -c maintenance_work_mem="+c.o.maintenanceWorkMem)}
}

// tocEntry is one entry of the archive's table of contents, as
// pg_restore --list prints it: "3280; 2606 16407 CONSTRAINT app customers customers_pkey postgres".
type tocEntry struct {
	id        int
	desc      string // INDEX, CONSTRAINT, FK CONSTRAINT...
	namespace string
	tag       string // an index's name; "table name" for a constraint or a trigger
	line      string
}

// tocDescs are the descriptions copy needs to tell apart, longest first
// where one starts another.
var tocDescs = []string{"FK CONSTRAINT", "CHECK CONSTRAINT", "CONSTRAINT", "INDEX ATTACH", "INDEX", "TRIGGER", "MATERIALIZED VIEW DATA", "RULE", "POLICY", "STATISTICS"}

var tocLineRe = regexp.MustCompile(`^(\d+); \d+ \d+ (.*)$`)

// listArchive reads the archive's table of contents.
func listArchive(ctx context.Context, bin, archive string) ([]tocEntry, error) {
	out, err := exec.CommandContext(ctx, bin, "--list", archive).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("pg_restore --list: %w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("pg_restore --list: %w", err)
	}
	return parseTOC(string(out)), nil
}

// parseTOC reads pg_restore --list output.
func parseTOC(out string) []tocEntry {
	var entries []tocEntry
	for _, line := range strings.Split(out, "\n") {
		m := tocLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		e := tocEntry{line: line}
		e.id, _ = strconv.Atoi(m[1])
		rest := m[2]
		for _, d := range tocDescs {
			if strings.HasPrefix(rest, d+" ") {
				e.desc = d
				break
			}
		}
		if e.desc != "" {
			// namespace, tag, then the owner as the last word.
			fields := strings.TrimPrefix(rest, e.desc+" ")
			e.namespace, fields, _ = strings.Cut(fields, " ")
			if i := strings.LastIndexByte(fields, ' '); i > 0 {
				fields = fields[:i]
			}
			e.tag = fields
		}
		entries = append(entries, e)
	}
	return entries
}

// remainingList writes a pg_restore list without the indexes,
// constraints and triggers that already exist on the target.
func (c *copyRun) remainingList(ctx context.Context, entries []tocEntry) (string, error) {
	conn, err := copyConnect(ctx, c.env, c.o.dst, true, nil)
	if err != nil {
		return "", err
	}
	defer pgkit.Close(ctx, conn)
	// An index's name is unique in its schema; a constraint's or a
	// trigger's only on its table, which the tag names: "table name".
	rows, err := conn.Query(ctx, `
SELECT 'INDEX', n.nspname, c.relname FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE i.indisvalid
UNION ALL
SELECT 'CONSTRAINT', n.nspname, t.relname || ' ' || co.conname FROM pg_catalog.pg_constraint co
  JOIN pg_catalog.pg_class t ON t.oid = co.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
UNION ALL
SELECT 'TRIGGER', n.nspname, t.relname || ' ' || tg.tgname FROM pg_catalog.pg_trigger tg
  JOIN pg_catalog.pg_class t ON t.oid = tg.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  WHERE NOT tg.tgisinternal`)
	if err != nil {
		return "", fmt.Errorf("target %s: list what exists: %w", c.o.dst.Name, err)
	}
	exists := map[string]bool{}
	for rows.Next() {
		var kind, ns, tag string
		if err := rows.Scan(&kind, &ns, &tag); err != nil {
			rows.Close()
			return "", err
		}
		exists[kind+"\x00"+ns+"\x00"+tag] = true
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("target %s: list what exists: %w", c.o.dst.Name, err)
	}
	var b strings.Builder
	kept := 0
	for _, e := range entries {
		kind := e.desc
		if strings.HasSuffix(kind, "CONSTRAINT") {
			kind = "CONSTRAINT"
		}
		if (kind == "INDEX" || kind == "CONSTRAINT" || kind == "TRIGGER") && exists[kind+"\x00"+e.namespace+"\x00"+e.tag] {
			kept++
			b.WriteString(";") // commented out: pg_restore skips it
		} else if c.o.skipPublication != "" && isPublicationEntry(e.line, c.o.skipPublication) {
			b.WriteString(";")
		} else if c.o.skipTriggerPrefix != "" && kind == "TRIGGER" && strings.HasPrefix(e.tag[strings.LastIndexByte(e.tag, ' ')+1:], c.o.skipTriggerPrefix) {
			b.WriteString(";")
		}
		b.WriteString(e.line)
		b.WriteString("\n")
	}
	if kept > 0 {
		c.env.Logf("post-data: %d %s already and %s kept", kept, plural.Choose(kept, "index, constraint or trigger exists", "indexes, constraints and triggers exist"), plural.Choose(kept, "is", "are"))
	}
	path := filepath.Join(c.workDir, "post-data.list")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("post-data: write the restore list: %w", err)
	}
	return path, nil
}

// isPublicationEntry reports whether a pg_restore --list line creates the
// publication pub or adds to it: "PUBLICATION - pub owner",
// "PUBLICATION TABLE schema pub table owner", "PUBLICATION TABLES IN
// SCHEMA schema pub owner".
func isPublicationEntry(line, pub string) bool {
	m := tocLineRe.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	rest := m[2]
	if strings.HasPrefix(rest, "PUBLICATION - "+pub+" ") {
		return true
	}
	for _, p := range []string{"PUBLICATION TABLE ", "PUBLICATION TABLES IN SCHEMA "} {
		if after, ok := strings.CutPrefix(rest, p); ok {
			_, after, _ = strings.Cut(after, " ") // the schema
			return strings.HasPrefix(after, pub+" ")
		}
	}
	return false
}

// restoreTimings reads pg_restore --verbose as it runs: when each item
// starts and finishes, for the output and the progress display. In
// parallel mode pg_restore says "launching item N ..." and "finished
// item N ..."; with one job only "creating DESC "schema.tag"", and an
// item ends when the next one starts.
type restoreTimings struct {
	jobs    int
	byID    map[int]*tocEntry
	byName  map[string]*tocEntry // desc + " " + namespace.tag
	tables  map[string][]string  // table names by schema, to split a constraint's tag
	total   int
	mu      sync.Mutex
	started map[int]time.Time
	serial  *tocEntry // one job: the item being built
	done    []timedEntry
}

type timedEntry struct {
	e       *tocEntry
	seconds float64
}

// pg_restore's processes share stderr and write a line in several
// writes (the "pg_restore: " prefix apart): with jobs, a worker's line
// may land in the middle of the leader's. Only the leader's messages
// matter there, and they are found wherever they are.
var (
	launchRe   = regexp.MustCompile(`launching item (\d+) `)
	finishedRe = regexp.MustCompile(`finished item (\d+) `)
	creatingRe = regexp.MustCompile(`^pg_restore: creating (.+) "(.*)"$`)
)

// postDataDescs are what the progress display counts.
var postDataDescs = map[string]bool{"INDEX": true, "CONSTRAINT": true, "FK CONSTRAINT": true, "CHECK CONSTRAINT": true,
	"TRIGGER": true, "INDEX ATTACH": true, "MATERIALIZED VIEW DATA": true, "RULE": true, "POLICY": true, "STATISTICS": true}

func newRestoreTimings(entries []tocEntry, tables []*copyTable, jobs int) *restoreTimings {
	r := &restoreTimings{jobs: jobs, byID: map[int]*tocEntry{}, byName: map[string]*tocEntry{}, tables: map[string][]string{}, started: map[int]time.Time{}}
	for i := range entries {
		e := &entries[i]
		if e.desc == "" {
			continue
		}
		r.byID[e.id] = e
		r.byName[e.desc+" "+e.namespace+"."+e.tag] = e
		if postDataDescs[e.desc] {
			r.total++
		}
	}
	for _, t := range tables {
		r.tables[t.schema] = append(r.tables[t.schema], t.name)
	}
	return r
}

func (r *restoreTimings) line(l string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs > 1 {
		if m := launchRe.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			r.started[id] = now
		} else if m := finishedRe.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			if start, ok := r.started[id]; ok && r.byID[id] != nil {
				r.done = append(r.done, timedEntry{r.byID[id], now.Sub(start).Seconds()})
			}
			delete(r.started, id)
		}
		return
	}
	if !strings.HasPrefix(l, "pg_restore: ") {
		return // a continuation line of a message
	}
	r.endSerial(now)
	if m := creatingRe.FindStringSubmatch(l); m != nil {
		if e := r.byName[m[1]+" "+m[2]]; e != nil {
			r.serial = e
			r.started[e.id] = now
		}
	}
}

// endSerial closes the item being built with one job; mu is held.
func (r *restoreTimings) endSerial(now time.Time) {
	if r.serial == nil {
		return
	}
	r.done = append(r.done, timedEntry{r.serial, now.Sub(r.started[r.serial.id]).Seconds()})
	delete(r.started, r.serial.id)
	r.serial = nil
}

// indexes are the index builds timed, slowest first.
func (r *restoreTimings) indexes() []CopyIndex {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endSerial(time.Now())
	out := []CopyIndex{}
	for _, d := range r.done {
		switch d.e.desc {
		case "INDEX":
			out = append(out, CopyIndex{Name: d.e.namespace + "." + d.e.tag, Kind: "index", Seconds: d.seconds})
		case "CONSTRAINT":
			out = append(out, CopyIndex{Name: d.e.namespace + "." + r.constraintName(d.e), Kind: "constraint", Seconds: d.seconds})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seconds > out[j].Seconds })
	return out
}

// constraintName takes the table's name off a constraint's tag.
func (r *restoreTimings) constraintName(e *tocEntry) string {
	best := ""
	for _, t := range r.tables[e.namespace] {
		if strings.HasPrefix(e.tag, t+" ") && len(t) > len(best) {
			best = t
		}
	}
	if best != "" {
		return strings.TrimPrefix(e.tag, best+" ")
	}
	if i := strings.LastIndexByte(e.tag, ' '); i >= 0 {
		return e.tag[i+1:]
	}
	return e.tag
}

// progress is the post-data phase's progress: items done of the total,
// and those being built.
func (r *restoreTimings) progress() event.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := event.Progress{Unit: "items", Total: int64(r.total), Message: "post-data: indexes, constraints, foreign keys"}
	for _, d := range r.done {
		if postDataDescs[d.e.desc] {
			p.Done++
		}
	}
	var ids []int
	for id := range r.started {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		if e := r.byID[id]; e != nil {
			p.Items = append(p.Items, event.ProgressItem{Name: strings.ToLower(e.desc) + " " + e.namespace + "." + e.tag})
		}
	}
	p.Done = min(p.Done, p.Total)
	return p
}
