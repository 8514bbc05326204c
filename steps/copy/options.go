package copy

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps/steptype"
)

// copyOptions are the arguments, checked and with defaults applied.
type copyOptions struct {
	src, dst                *pgkit.Database
	jobs, indexJobs         int
	tables, excludeTables   []string
	splitBytes              int64
	largeObjects, sequences bool
	binary                  string
	clean                   bool
	analyze                 bool
	maintenanceWorkMem      string

	// importSnapshot, when set, is a snapshot exported elsewhere (by the
	// creation of a replication slot, for replicate) that the
	// coordinating transaction imports instead of taking its own, so that
	// the copy is the source exactly as of that instant. imported is
	// called once it is imported: its exporter may then let it go. A
	// resumed copy cannot import it again, and refuses to run.
	importSnapshot string
	imported       func()
	// skipPublication is a publication of the source left out of the
	// copy: the one replicate streams through.
	skipPublication string
	// skipSchema and skipTriggerPrefix leave out a schema of the source
	// (its tables, functions, everything) and the triggers whose names
	// start with the prefix: capture's change log and the triggers that
	// feed it.
	skipSchema, skipTriggerPrefix string
}

func newCopyOptions(a *CopyArgs) (*copyOptions, error) {
	if a.Source == nil || a.Target == nil {
		return nil, errors.New("source and target are both required")
	}
	o := &copyOptions{
		src: a.Source, dst: a.Target,
		jobs:               4,
		tables:             a.Tables,
		excludeTables:      a.ExcludeTables,
		splitBytes:         1 << 30,
		largeObjects:       a.LargeObjects == nil && len(a.Tables) == 0 || a.LargeObjects != nil && *a.LargeObjects,
		sequences:          a.Sequences == nil || *a.Sequences,
		binary:             a.Binary,
		clean:              a.Clean,
		analyze:            a.Analyze == nil || *a.Analyze,
		maintenanceWorkMem: "262144kB",
	}
	if a.Jobs != nil {
		if *a.Jobs < 1 {
			return nil, fmt.Errorf("jobs must be at least 1, not %d", *a.Jobs)
		}
		o.jobs = *a.Jobs
	}
	o.indexJobs = o.jobs
	if a.IndexJobs != nil {
		if *a.IndexJobs < 1 {
			return nil, fmt.Errorf("index_jobs must be at least 1, not %d", *a.IndexJobs)
		}
		o.indexJobs = *a.IndexJobs
	}
	if a.SplitBytes != "" {
		if err := steptype.CheckSize(1<<20, "1MB")(a.SplitBytes); err != nil {
			return nil, fmt.Errorf("split_bytes: %w", err)
		}
		o.splitBytes, _ = bytesize.Parse(a.SplitBytes)
	}
	switch o.binary {
	case "":
		o.binary = "auto"
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("binary is auto, on or off, not %q", a.Binary)
	}
	if a.MaintenanceWorkMem != nil {
		o.maintenanceWorkMem = *a.MaintenanceWorkMem
		if o.maintenanceWorkMem != "" {
			n, err := bytesize.Parse(o.maintenanceWorkMem)
			if err != nil {
				return nil, fmt.Errorf("maintenance_work_mem: %w", err)
			}
			// As a number of kB, which every server version reads alike.
			o.maintenanceWorkMem = strconv.FormatInt(max(n>>10, 1024), 10) + "kB"
		}
	}
	for _, p := range append(append([]string{}, a.Tables...), a.ExcludeTables...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("table pattern %q: %w", p, err)
		}
	}
	return o, nil
}

// keep applies tables and exclude_tables to a table and to the
// partitioned table it belongs to.
func (o *copyOptions) keep(t *copyTable) bool {
	match := func(patterns []string) bool {
		return copyMatch(patterns, t.schema, t.name) || t.rootName != "" && copyMatch(patterns, t.rootSchema, t.rootName)
	}
	return (len(o.tables) == 0 || match(o.tables)) && !match(o.excludeTables)
}

// copyMatch reports whether a pattern names the table: "schema.table"
// patterns match the qualified name, bare ones the table in any schema.
func copyMatch(patterns []string, schema, name string) bool {
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
