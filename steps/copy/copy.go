package copy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// CopyArgs are the arguments of copy.
type CopyArgs struct {
	Source             *pgkit.Database `hcl:"source" doc:"The database to copy from. It is only read, inside one snapshot."`
	Target             *pgkit.Database `hcl:"target" doc:"The database to copy into: one without the copied tables, or any with clean = true."`
	Jobs               *int            `hcl:"jobs,optional" doc:"How many table chunks are copied at once, each on its own pair of connections (default 4)."`
	IndexJobs          *int            `hcl:"index_jobs,optional" doc:"How many indexes, constraints and foreign keys are built at once (pg_restore --jobs), as tables are copied and after (default: jobs)."`
	Tables             []string        `hcl:"tables,optional" doc:"Copy only these tables (\"schema.table\" or \"table\", with * and ? wildcards; a partitioned table brings its partitions): their definitions, rows, indexes, constraints, triggers and sequences, as pg_dump --table does, into a target that has their schemas and types. Default: the whole database."`
	ExcludeTables      []string        `hcl:"exclude_tables,optional" doc:"Tables left out, written as in tables, with their rows, indexes, constraints and sequences (views that use them fail to restore). A later copy with tables can bring them."`
	SplitBytes         string          `hcl:"split_bytes,optional" doc:"Tables bigger than this on disk are copied as several chunks at once, ranges of their pages (default \"1GB\"; the source must run PostgreSQL 14 or newer). A table copied whole loads frozen, which spares its index builds a pass over every page; chunks pay off for tables big enough that one stream would hold up the copy."`
	LargeObjects       *bool           `hcl:"large_objects,optional" doc:"Copy large objects with their OIDs (default true, false when tables is given)."`
	Sequences          *bool           `hcl:"sequences,optional" doc:"Set every sequence on the target to its value on the source (default true)."`
	Binary             string          `hcl:"binary,optional" doc:"COPY format: auto (the default: binary, the fastest, when both servers run the same major version; text otherwise), on (binary even between major versions) or off (text). Tables with columns whose binary form holds database-specific OIDs (arrays of enums or composite types, reg* types) always travel as text."`
	Clean              bool            `hcl:"clean,optional" doc:"Drop the copied tables (CASCADE) and every other object of the copied schema that already exists on the target first. Without it, copy refuses a target that has any of the tables."`
	Analyze            *bool           `hcl:"analyze,optional" doc:"ANALYZE each copied table once its indexes are built, so that the target's planner has statistics from the start (default true)."`
	MaintenanceWorkMem *string         `hcl:"maintenance_work_mem,optional" doc:"maintenance_work_mem of each index-building session on the target (default \"256MB\"; \"\" keeps the server's): big sorts in memory, and room for parallel index builds. Each of index_jobs sessions may use this much."`
}

// CopyOutput is the output of copy.
type CopyOutput struct {
	Tables         []CopyTable `json:"tables" doc:"Every table whose data was copied (partitions one by one), sorted by schema and name."`
	Indexes        []CopyIndex `json:"indexes" doc:"Indexes and index-backed constraints (primary key, unique, exclusion) this run built, as each table's rows were in or in the post-data phase, with how long each took, slowest first."`
	Bytes          int64       `json:"bytes" doc:"Bytes of COPY data streamed from the source to the target."`
	Rows           int64       `json:"rows" doc:"Rows copied."`
	LargeObjects   int64       `json:"large_objects" doc:"Large objects copied."`
	Sequences      int         `json:"sequences" doc:"Sequences set on the target."`
	Seconds        float64     `json:"seconds" doc:"How long the copy took, every phase included (in this run; a resumed copy counts only its own time)."`
	BytesPerSecond float64     `json:"bytes_per_second" doc:"bytes divided by the seconds of the data phase."`
	Phases         CopyPhases  `json:"phases" doc:"Seconds spent in each phase (0 for a phase that a resumed run found done)."`
	Settings       []string    `json:"settings" doc:"The source database's settings this run gave the target database, as the statements it ran: ALTER DATABASE ... SET (search_path, say) and ALTER ROLE ... IN DATABASE ... SET for roles the target has. pg_dump/pg_restore carry neither."`
	SettingsLeft   []string    `json:"settings_left" doc:"Statements for the source's settings that the target role may not run (ALTER DATABASE needs the database's owner; another role's setting a superuser or CREATEROLE) or whose role the target lacks: to run as a role that may. Also in the log."`
	Resumed        bool        `json:"resumed" doc:"This run continued a copy interrupted earlier: tables it had finished were not copied again, and the rest were read from a new snapshot. Rows the application wrote in between would make the target a mix of two instants: keep the source in maintenance mode during a copy, and check it with compare."`
}

// CopyTable is one table's copy.
type CopyTable struct {
	Schema               string  `json:"schema" doc:"The table's schema."`
	Name                 string  `json:"name" doc:"The table's name."`
	Rows                 int64   `json:"rows" doc:"Rows copied."`
	Bytes                int64   `json:"bytes" doc:"COPY data streamed."`
	Seconds              float64 `json:"seconds" doc:"From the start of its first chunk to the end of its last."`
	Chunks               int     `json:"chunks" doc:"How many parts it was copied in, at once."`
	Split                string  `json:"split" doc:"For a table big enough to be probed (32 MB or more, copied whole as planned): what its first stream measured and what the copy decided, kept whole and loaded frozen, or link-bound and the rest of its pages split into chunks copied jobs at once. Empty otherwise."`
	Probe                string  `json:"probe" doc:"For a probed table, the decision: whole (kept whole, loaded frozen) or split (link-bound, the rest copied in chunks); empty when the table was not probed."`
	StreamBytesPerSecond float64 `json:"stream_bytes_per_second" doc:"For a probed table: the rate its first stream reached, COPY data a second (a link capped per connection shows here). 0 otherwise."`
	Format               string  `json:"format" doc:"binary or text."`
	Earlier              bool    `json:"earlier" doc:"Copied by an earlier, interrupted run of this step, and not again."`
}

// CopyIndex is one post-data item that built an index.
type CopyIndex struct {
	Name    string  `json:"name" doc:"schema.name of the index (a constraint's index has the constraint's name)."`
	Kind    string  `json:"kind" doc:"index, or constraint (primary key, unique or exclusion)."`
	Seconds float64 `json:"seconds" doc:"How long pg_restore took to build it."`
}

// CopyPhases are the seconds each phase took.
type CopyPhases struct {
	Schema       float64 `json:"schema" doc:"pg_dump of the schema in the snapshot, and pg_restore of its pre-data section (types, tables, functions...)."`
	Data         float64 `json:"data" doc:"Streaming the rows (while the finisher builds the indexes and foreign keys of the tables done)."`
	LargeObjects float64 `json:"large_objects" doc:"Copying large objects, at the same time as the data."`
	Sequences    float64 `json:"sequences" doc:"Setting sequences."`
	PostData     float64 `json:"post_data" doc:"The rest of the post-data section, once the finisher is done: what belongs to partitioned tables, triggers, rules, policies, materialized view data."`
	Analyze      float64 `json:"analyze" doc:"ANALYZE of the copied tables."`
}

// Type is the copy step type.
var Type = steptype.Def[CopyArgs, CopyOutput]{
	Summary: "Copies a database into another, streaming: the schema, every table's rows with COPY in parallel (big tables in chunks) from one snapshot, each table's indexes and foreign keys as soon as its rows are in, large objects, sequences; resumes after a crash.",
	Fn:      runCopy,
	ArgChecks: map[string]func(string) error{
		"split_bytes":          steptype.CheckSize(1<<20, "1MB"),
		"maintenance_work_mem": steptype.CheckSize(0, ""),
		"binary":               steptype.CheckOneOf("", "auto", "on", "off"),
	},
}

// copyHooks let tests act at given points of a copy: afterSnapshot runs
// once the snapshot is exported and the tables locked (a test writes to
// the source then); afterChunk once a chunk's rows are committed,
// tableDone when they were its table's last (tests interrupt the copy
// there).
type copyHooks struct {
	afterSnapshot func()
	afterChunk    func(table string, tableDone bool)
	adaptive      *adaptiveTuning          // instead of defaultAdaptive
	linkBound     func(p probeResult) bool // overrides the probe's verdict
}

// copyTestHooks maps an *Env to its *copyHooks. Only tests register any:
// keyed by the run's Env, the hooks of one test never fire in another
// running in parallel.
var copyTestHooks sync.Map

func runCopy(ctx context.Context, env *steptype.Env, a *CopyArgs) (*CopyOutput, error) {
	o, err := newCopyOptions(a)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	c := &copyRun{env: env, o: o, start: time.Now()}
	out, err := c.run(ctx)
	if err != nil {
		return out, fmt.Errorf("copy %s to %s: %w", o.src.Name, o.dst.Name, err)
	}
	return out, nil
}

// copyRun is one run of the step: its options, its state and what it
// learned about the databases.
type copyRun struct {
	env   *steptype.Env
	o     *copyOptions
	start time.Time

	state     *copyState // what is done, kept in env.StateDir
	workDir   string     // where the schema archive lives
	snap      *copySnapshot
	tables    []*copyTable // tables with data to copy (leaf partitions, plain tables)
	all       []*copyTable // every selected table, partitioned parents included
	excluded  []*copyTable // tables the patterns leave out
	seqsOut   []string     // pg_dump patterns of the sequences the excluded tables own
	srcMajor  int
	dstMajor  int
	blockSize int64    // the source's page size, for ctid ranges
	los       []uint32 // the large objects to copy, listed in the snapshot
	binary    bool     // binary COPY allowed between these servers
	progress  *copyProgress
	fin       *copyFinisher // builds indexes during the data phase; nil when there is nothing for it
	out       *CopyOutput
	settings  []pgkit.DBSetting // the source database's, carried to the target
}

// run goes through the phases in order, skipping those an earlier run of
// the step finished:
//
//	schema:        pg_dump (pre-data and post-data, in the snapshot) → pg_restore pre-data
//	data:          COPY source → target, jobs at a time, big tables in chunks;
//	               meanwhile the finisher builds each copied table's indexes and analyzes it
//	large objects: at the same time as the data: same OIDs, in the snapshot
//	sequences:     setval on the target
//	post-data:     pg_restore --jobs index_jobs of the rest (foreign keys, triggers, matview data...)
//	analyze:       ANALYZE the tables the finisher did not
func (c *copyRun) run(ctx context.Context) (*CopyOutput, error) {
	var err error
	if c.state, c.workDir, err = loadCopyState(c.env.StateDir); err != nil {
		return nil, err
	}
	if c.env.StateDir == "" {
		defer os.RemoveAll(c.workDir)
	}
	c.out = &CopyOutput{Resumed: c.state.resumed, Tables: []CopyTable{}, Indexes: []CopyIndex{}, Settings: []string{}, SettingsLeft: []string{}}
	if c.state.resumed {
		c.env.Logf("resuming an interrupted copy: %s; what is left is copied from a new snapshot", c.state.summary())
	}
	if c.state.complete() {
		c.env.Logf("an earlier run of this step finished the copy")
		return c.finish(), nil
	}

	defer c.closeSnapshot(ctx)
	if err := c.openSnapshot(ctx); err != nil {
		if !c.state.resumed {
			err = steptype.Refused(err) // nothing is written before the snapshot
		}
		return nil, err
	}

	if err := c.phaseSchema(ctx); err != nil {
		return c.finish(), err
	}
	// An index or foreign key the finisher cannot build stops the data
	// phase at once: post-data would fail on it after every row.
	dctx, stopData := context.WithCancelCause(ctx)
	defer stopData(nil)
	if c.fin, err = c.startFinisher(ctx, stopData); err != nil {
		return c.finish(), err
	}
	defer c.fin.stop()
	if err := c.dataAndLargeObjects(dctx); err != nil {
		if ferr := c.fin.failure(); ferr != nil {
			err = ferr
		}
		return c.finish(), err
	}
	c.fin.close() // it goes on with the last tables while the sequences are set
	if err := c.phaseSequences(ctx); err != nil {
		return c.finish(), err
	}
	// Nothing reads the source any more: let its vacuum move on.
	c.closeSnapshot(ctx)

	if err := c.phasePostData(ctx); err != nil {
		return c.finish(), err
	}
	// Before ANALYZE, whose completion a resumed run would not repeat.
	if err := c.phaseSettings(ctx); err != nil {
		return c.finish(), err
	}
	if err := c.warnForcedRowSecurity(ctx); err != nil {
		return c.finish(), err
	}
	if err := c.phaseAnalyze(ctx); err != nil {
		return c.finish(), err
	}
	out := c.finish()
	c.env.Logf("copied %s, %s, %s in %.1fs (data at %s/s)",
		plural.Of(len(out.Tables), "table"), plural.Of(out.Rows, "row"), bytesize.Format(out.Bytes), out.Seconds, bytesize.Format(int64(out.BytesPerSecond)))
	return out, nil
}

// dataAndLargeObjects copies the rows and the large objects at once: both
// read the snapshot, each on connections of its own, and the large
// objects fill the time the last big table leaves idle. The first error
// stops both.
func (c *copyRun) dataAndLargeObjects(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.phaseLargeObjects(ctx); err != nil {
			cancel(err)
		}
	})
	if err := c.phaseData(ctx); err != nil {
		cancel(err)
	}
	wg.Wait()
	return context.Cause(ctx)
}

// openSnapshot opens the coordinating transaction on the source, reads
// the versions and the tables, and checks that the target can take them.
func (c *copyRun) openSnapshot(ctx context.Context) error {
	var err error
	if c.o.importSnapshot != "" && c.state.resumed {
		return fmt.Errorf("this copy was interrupted, and a resumed copy cannot read the snapshot %s it started in again", c.o.importSnapshot)
	}
	if c.snap, err = openCopySnapshot(ctx, c.env, c.o.src, c.o.importSnapshot); err != nil {
		return err
	}
	if c.o.imported != nil {
		c.o.imported()
	}
	c.srcMajor = c.snap.major
	if c.srcMajor < 12 {
		return fmt.Errorf("source %s runs PostgreSQL %d; copy needs 12 or newer", c.o.src.Name, c.srcMajor)
	}
	dst, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	c.dstMajor, err = pgkit.ServerMajor(ctx, dst)
	pgkit.Close(ctx, dst)
	if err != nil {
		return fmt.Errorf("target %s: %w", c.o.dst.Name, err)
	}
	if c.dstMajor < c.srcMajor {
		c.env.Logf("warning: the target runs PostgreSQL %d, older than the source's %d: pg_dump's schema may use what it lacks", c.dstMajor, c.srcMajor)
	}
	c.binary = c.o.binary == "on" || c.o.binary == "auto" && c.srcMajor == c.dstMajor

	all, err := listCopyTables(ctx, c.snap.tx)
	if err != nil {
		return fmt.Errorf("list the tables of %s: %w", c.o.src.Name, err)
	}
	for _, t := range all {
		if !c.o.keep(t) {
			c.excluded = append(c.excluded, t)
			continue
		}
		c.all = append(c.all, t)
		if !t.partitioned {
			c.tables = append(c.tables, t)
		}
	}
	if len(c.o.tables) > 0 && len(c.all) == 0 {
		return fmt.Errorf("no table of %s matches tables = [%s]", c.o.src.Name, strings.Join(c.o.tables, ", "))
	}
	if len(c.o.tables) == 0 && len(c.excluded) > 0 {
		if c.seqsOut, err = ownedSequences(ctx, c.snap.tx, c.excluded); err != nil {
			return fmt.Errorf("source %s: %w", c.o.src.Name, err)
		}
	}
	// Before the lock, which would stop at the first table it may not
	// take, and before the first write.
	if err := c.checkBeforeWriting(ctx); err != nil {
		return err
	}
	// As pg_dump does: no one may drop or alter a table while it is read.
	if err := c.snap.lock(ctx, c.all); err != nil {
		return err
	}
	if err := c.readSettings(ctx, c.snap.tx); err != nil {
		return err
	}
	if err := c.snap.tx.QueryRow(ctx, "SELECT current_setting('block_size')::int8").Scan(&c.blockSize); err != nil {
		return fmt.Errorf("source %s: block_size: %w", c.o.src.Name, err)
	}
	if c.o.largeObjects && !c.state.LargeObjectsDone {
		if c.los, err = listLargeObjects(ctx, c.snap.tx); err != nil {
			return fmt.Errorf("source %s: %w", c.o.src.Name, err)
		}
	}
	if h := c.hooks(); h != nil && h.afterSnapshot != nil {
		h.afterSnapshot()
	}
	return nil
}

// adaptive is the run's adaptive splitting thresholds.
func (c *copyRun) adaptive() adaptiveTuning {
	if h := c.hooks(); h != nil && h.adaptive != nil {
		return *h.adaptive
	}
	return defaultAdaptive
}

// hooks returns the test hooks registered for this run, if any.
func (c *copyRun) hooks() *copyHooks {
	if h, ok := copyTestHooks.Load(c.env); ok {
		return h.(*copyHooks)
	}
	return nil
}

func (c *copyRun) closeSnapshot(ctx context.Context) {
	if c.snap != nil {
		c.snap.close(ctx)
		c.snap = nil
	}
}

// timed runs a phase unless the state says it is done, and records how
// long it took.
func (c *copyRun) timed(done bool, seconds *float64, fn func() error) error {
	if done {
		return nil
	}
	start := time.Now()
	err := fn()
	*seconds = time.Since(start).Seconds()
	return err
}

// finish fills the output from the state: for a failed run, what got
// done.
func (c *copyRun) finish() *CopyOutput {
	out := c.out
	out.Tables = c.state.tableList()
	out.Rows, out.Bytes = 0, 0
	for _, t := range out.Tables {
		out.Rows += t.Rows
		out.Bytes += t.Bytes
	}
	out.Indexes = c.state.Indexes
	if out.Indexes == nil {
		out.Indexes = []CopyIndex{}
	}
	out.LargeObjects = c.state.LargeObjects
	out.Sequences = c.state.Sequences
	out.Seconds = time.Since(c.start).Seconds()
	if out.Phases.Data > 0 {
		var streamed int64
		for _, t := range out.Tables {
			if !t.Earlier {
				streamed += t.Bytes
			}
		}
		out.BytesPerSecond = float64(streamed) / out.Phases.Data
	}
	return out
}
