package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
)

// runReport renders one recorded run (the last by default) as a document
// for a change ticket or a post-mortem: Markdown, or JSON (reportDoc).
//
// Exit codes: 0 written; 1 no run to report, a damaged or unreadable record,
// or the file could not be written; 2 bad flags, an unknown --run, an
// invalid plan.
func runReport(c *CLI, args []string) int {
	var runID, format, out string
	p, store, code, ok := c.openRecords("report", "[flags] [PLAN]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&runID, "run", "", "the run to report: an id from 'planrun history' (or a unique prefix of one); default: the last")
		fs.StringVar(&format, "format", "markdown", "markdown or json")
		fs.StringVar(&out, "o", "", "write the report to this file (replaced atomically) instead of standard output")
	})
	if !ok {
		return code
	}
	defer store.Close()
	switch format {
	case "markdown", "md", "json":
	default:
		fmt.Fprintf(c.stderr, "planrun report: --format %q: want markdown or json\n", format)
		return ExitUsage
	}
	id, newest, events, code, ok := c.reportEvents(store, p, runID)
	if !ok {
		return code
	}
	run := journal.Replay(id, events)
	result := run.Status
	if newest && result == event.StatusUnfinished {
		// Like status: a live process holding the lock is still running it.
		if lease, _, err := store.Lock(c.ctx, p.Name, journal.Me("")); err != nil {
			if journal.IsLocked(err) {
				result = event.StatusRunning
			}
		} else {
			_ = lease.Release() // only probing
		}
	}
	fps, ok := c.storeFingerprints(store, p)
	if !ok {
		return ExitFailed
	}
	doc := report.Build(p, report.Now{Fingerprints: asRecorded(p, run.Fingerprints, fps), Vars: recordedVars(p, nil)}, run, result, events)

	var buf bytes.Buffer
	if format == "json" {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintf(c.stderr, "planrun report: %v\n", err)
			return ExitFailed
		}
	} else {
		report.WriteMarkdown(&buf, doc)
	}
	// The record is redacted already; this also covers what the plan adds
	// (variable defaults, database passwords), in case one ever slips.
	text := redact.New(p.Secrets()...).String(buf.String())
	if out == "" || out == "-" {
		_, _ = io.WriteString(c.stdout, text)
		return ExitOK
	}
	if err := writeFileAtomic(out, []byte(text)); err != nil {
		fmt.Fprintf(c.stderr, "planrun report: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}

// reportEvents finds the run to report and reads its events. newest says
// whether it is the plan's last run.
func (c *CLI) reportEvents(store journal.Store, p *plan.Plan, want string) (string, bool, []event.Event, int, bool) {
	runs, listErr := store.Runs(c.ctx, p.Name)
	if listErr != nil {
		// Another run's record may be the damaged one: an exact id can
		// still be reported.
		if want != "" {
			if events, err := store.Events(c.ctx, p.Name, want); err == nil {
				return want, false, events, 0, true
			}
		}
		fmt.Fprintf(c.stderr, "planrun: %v\n", listErr)
		return "", false, nil, ExitFailed, false
	}
	if len(runs) == 0 {
		fmt.Fprintf(c.stderr, "planrun report: plan %q has not been applied yet: there is no run to report (records: %s)\n", p.Name, relPath(store.Where(p.Name)))
		return "", false, nil, ExitFailed, false
	}
	idx := 0
	if want != "" {
		idx = -1
		var matches []int
		for i, r := range runs {
			if r.ID == want {
				matches = []int{i}
				break
			}
			if strings.HasPrefix(r.ID, want) {
				matches = append(matches, i)
			}
		}
		switch len(matches) {
		case 0:
			fmt.Fprintf(c.stderr, "planrun report: --run %s: plan %q has no such run; 'planrun history' lists them\n", want, p.Name)
			return "", false, nil, ExitUsage, false
		case 1:
			idx = matches[0]
		default:
			var ids []string
			for _, i := range matches {
				ids = append(ids, runs[i].ID)
			}
			fmt.Fprintf(c.stderr, "planrun report: --run %s is ambiguous: %s\n", want, joinMax(ids, 5))
			return "", false, nil, ExitUsage, false
		}
	}
	id := runs[idx].ID
	if runs[idx].Damaged != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", runs[idx].Damaged)
		return "", false, nil, ExitFailed, false
	}
	c.warnTorn(runs[idx].Torn)
	events, err := store.Events(c.ctx, p.Name, id)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return "", false, nil, ExitFailed, false
	}
	return id, idx == 0, events, 0, true
}
