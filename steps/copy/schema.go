package copy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// The schema travels the way pg_dump and pg_restore move it, because they
// know every kind of object and the order they must be created in: one
// archive, dumped in the copy's snapshot, holds the pre-data section
// (types, functions, tables, sequences, large object entries) and the
// post-data section (indexes, constraints, foreign keys, triggers, rules,
// policies, materialized view data), and no rows. Pre-data is restored
// before the rows, post-data after them, in parallel.

// phaseSchema dumps the schema in the snapshot and restores its pre-data.
func (c *copyRun) phaseSchema(ctx context.Context) error {
	return c.timed(c.state.SchemaDone, &c.out.Phases.Schema, func() error {
		resuming := c.state.SchemaStarted
		if !resuming && !c.o.clean {
			if err := c.refuseExisting(ctx); err != nil {
				return steptype.Refused(err) // before anything is written
			}
		}
		archive := filepath.Join(c.workDir, copyArchiveFile)
		if err := c.dumpSchema(ctx, archive); err != nil {
			return err
		}
		if err := c.state.update(func(s *copyState) { s.SchemaStarted = true }); err != nil {
			return err
		}
		if c.o.clean {
			if err := c.dropTables(ctx); err != nil {
				return err
			}
		}
		// An interrupted pre-data restore left part of the schema: drop it
		// (its tables hold no rows yet) and restore it whole.
		clean := c.o.clean || resuming
		c.env.Logf("schema: restoring types, tables and functions into %s", c.o.dst.Name)
		if err := c.restore(ctx, archive, restoreRun{section: "pre-data", jobs: 1, clean: clean}); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		return c.state.update(func(s *copyState) { s.SchemaDone = true })
	})
}

// refuseExisting fails when the target already has one of the tables: a
// copy into them would add rows to rows, or fail half-way.
func (c *copyRun) refuseExisting(ctx context.Context) error {
	schemas, names := make([]string, len(c.all)), make([]string, len(c.all))
	for i, t := range c.all {
		schemas[i], names[i] = t.schema, t.name
	}
	conn, err := copyConnect(ctx, c.env, c.o.dst, true, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	rows, err := conn.Query(ctx, `
SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY 1`, schemas, names)
	if err != nil {
		return fmt.Errorf("target %s: look for the tables: %w", c.o.dst.Name, err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target %s: look for the tables: %w", c.o.dst.Name, err)
	}
	if len(found) == 0 {
		return nil
	}
	shown := found
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(found)-10))
	}
	return fmt.Errorf("the target %s already has %d of the tables: %s; copy into an empty database, or set clean = true to drop them first",
		c.o.dst.Name, len(found), strings.Join(shown, ", "))
}

// dropTables drops the copied tables that exist on the target, with
// CASCADE: the foreign keys and views that depend on them go too (the
// post-data section brings the copied ones back).
func (c *copyRun) dropTables(ctx context.Context) error {
	conn, err := copyConnect(ctx, c.env, c.o.dst, false, nil)
	if err != nil {
		return err
	}
	defer pgkit.Close(ctx, conn)
	var names []string
	for _, t := range c.all {
		if t.rootName == "" { // partitions go with their partitioned table
			names = append(names, t.qualified())
		}
	}
	const batch = 500
	for i := 0; i < len(names); i += batch {
		part := names[i:min(i+batch, len(names))]
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(part, ", ")+" CASCADE"); err != nil {
			return fmt.Errorf("target %s: clean: drop the tables: %w", c.o.dst.Name, err)
		}
	}
	c.env.Logf("clean: dropped the tables that existed on %s", c.o.dst.Name)
	return nil
}

// dumpSchema writes the archive: both schema sections, no rows, in the
// snapshot. Tables the patterns leave out are left out of it too.
func (c *copyRun) dumpSchema(ctx context.Context, archive string) error {
	bin, _, err := pgkit.Tool(ctx, "pg_dump", c.srcMajor)
	if err != nil {
		return err
	}
	dsn, environ, err := pgkit.LibPQ(c.env, c.o.src)
	if err != nil {
		return err
	}
	_ = os.Remove(archive) // an interrupted run's
	argv := []string{
		"--format=custom", "--file=" + archive, "--no-password", "--snapshot=" + c.snap.id,
		"--section=pre-data", "--section=post-data",
		"--no-owner", "--no-acl",
		// A subscription copied along would start replicating into the
		// target from the source's publisher.
		"--no-subscriptions",
	}
	if !c.o.largeObjects {
		argv = append(argv, "--no-blobs")
	}
	if len(c.o.tables) > 0 {
		// Only these tables and what belongs to them, as pg_dump --table
		// dumps them: not the schemas, types or functions they use.
		for _, t := range c.all {
			argv = append(argv, "--table="+pgDumpPattern(t.schema, t.name))
		}
	} else {
		// Everything else. A serial column's sequence stays behind with
		// its table, so that a later copy of the table can bring it.
		for _, t := range c.excluded {
			argv = append(argv, "--exclude-table="+pgDumpPattern(t.schema, t.name))
		}
		for _, p := range c.seqsOut {
			argv = append(argv, "--exclude-table="+p)
		}
		if c.o.skipSchema != "" {
			argv = append(argv, "--exclude-schema="+`"`+strings.ReplaceAll(c.o.skipSchema, `"`, `""`)+`"`)
		}
	}
	argv = append(argv, "--dbname="+dsn)
	c.env.Logf("schema: dumping the schema of %s in the snapshot", c.o.src.Name)
	if err := pgkit.RunClient(ctx, bin, argv, environ, nil); err != nil {
		return fmt.Errorf("schema: pg_dump: %w", err)
	}
	return nil
}

// pgDumpPattern is a pg_dump pattern that matches exactly one table:
// double quotes make every character literal.
func pgDumpPattern(schema, name string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(schema) + "." + q(name)
}

// restoreRun is one pg_restore of a section of the archive.
type restoreRun struct {
	section string
	jobs    int
	clean   bool   // drop each object first, if it exists
	list    string // restore only the entries of this list file (pg_restore -L)
	timings *restoreTimings
	env     []string // more environment (PGOPTIONS)
}

// restore runs pg_restore and judges its errors as the pg_restore step
// does: those known to be harmless (a managed service's extension
// comment) are logged, the rest fail the copy.
func (c *copyRun) restore(ctx context.Context, archive string, r restoreRun) error {
	bin, _, err := pgkit.Tool(ctx, "pg_restore", max(c.srcMajor, c.dstMajor))
	if err != nil {
		return err
	}
	dsn, environ, err := pgkit.LibPQ(c.env, c.o.dst)
	if err != nil {
		return err
	}
	environ = append(environ, r.env...)
	argv := []string{"--dbname=" + dsn, "--no-password", "--section=" + r.section, "--no-owner", "--no-acl"}
	if r.clean {
		argv = append(argv, "--clean", "--if-exists")
	}
	if r.jobs > 1 {
		argv = append(argv, "--jobs="+strconv.Itoa(r.jobs))
	}
	if r.list != "" {
		argv = append(argv, "--use-list="+r.list)
	}
	if r.timings != nil {
		argv = append(argv, "--verbose")
	}
	argv = append(argv, archive)

	p := &pgkit.RestoreLog{Options: pgkit.RestoreOptions{Clean: r.clean}}
	var stderr = &lineSplitter{line: p.Line}
	if r.timings != nil {
		stderr.line = func(l string) {
			p.Line(l)
			r.timings.line(l)
		}
	}
	runErr := pgkit.RunClient(ctx, bin, argv, environ, stderr)
	stderr.flush()
	p.Flush()
	out, err := p.Result(runErr)
	if err != nil {
		return fmt.Errorf("pg_restore: %w", err)
	}
	if err := p.Verdict(out); err != nil {
		return fmt.Errorf("pg_restore: %w", err)
	}
	for _, m := range out.Messages {
		c.env.Logf("%s: pg_restore warning (%s): %s", r.section, m.Reason, m.Text)
	}
	return nil
}

// lineSplitter calls line for every line written to it. exec's copying
// goroutine is its only writer.
type lineSplitter struct {
	partial []byte
	line    func(string)
}

func (s *lineSplitter) Write(b []byte) (int, error) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
}

func (s *lineSplitter) flush() {
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}
