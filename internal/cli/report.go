package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
)

// runReport renders one recorded run (the last by default) as a document
// for a change ticket or a post-mortem: Markdown, JSON (reportDoc), or one
// self-contained HTML page with a timeline, which can also put two runs
// one above the other (a rehearsal and the real thing).
//
// Exit codes: 0 written; 1 no run to report, a damaged or unreadable record,
// or the file could not be written; 2 bad flags, an unknown --run, an
// invalid plan.
func runReport(c *CLI, args []string) int {
	var runIDs runList
	var format, out string
	p, store, code, ok := c.openRecords("report", "[flags] [PLAN]", args, func(fs *flag.FlagSet) {
		fs.Var(&runIDs, "run", "the run to report: an id from 'planrun history' (or a unique prefix of one); default: the last. Twice, with --format html: both runs' timelines one above the other")
		fs.StringVar(&format, "format", "markdown", "markdown, json or html (one self-contained page with a timeline)")
		fs.StringVar(&out, "o", "", "write the report to this file (replaced atomically) instead of standard output")
	})
	if !ok {
		return code
	}
	defer store.Close()
	switch format {
	case "markdown", "md", "json", "html":
	default:
		fmt.Fprintf(c.stderr, "planrun report: --format %q: want markdown, json or html\n", format)
		return ExitUsage
	}
	switch {
	case len(runIDs) > 2:
		fmt.Fprintf(c.stderr, "planrun report: --run given %d times: a report shows one run, or two side by side\n", len(runIDs))
		return ExitUsage
	case len(runIDs) == 2 && format != "html":
		fmt.Fprintf(c.stderr, "planrun report: two runs (--run given twice) are shown together only by --format html; the %s report is of one run\n", format)
		return ExitUsage
	case len(runIDs) == 0:
		runIDs = runList{""} // the last
	}
	var fps map[string]string
	var runs []report.HTMLRun
	for _, want := range runIDs {
		id, newest, events, code, ok := c.reportEvents(store, p, want)
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
		if fps == nil {
			if fps, ok = c.storeFingerprints(store, p); !ok {
				return ExitFailed
			}
		}
		doc := report.Build(p, report.Now{Fingerprints: asRecorded(p, run.Fingerprints, fps), Vars: recordedVars(p, nil)}, run, result, events)
		r := report.HTMLRun{Doc: doc, Events: events}
		if format == "html" {
			r.Baseline = c.previousSuccess(store, p, id)
		}
		runs = append(runs, r)
	}

	var buf bytes.Buffer
	secrets := p.Secrets()
	switch format {
	case "json":
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(runs[0].Doc); err != nil {
			fmt.Fprintf(c.stderr, "planrun report: %v\n", err)
			return ExitFailed
		}
	case "html":
		if err := report.WriteHTML(&buf, runs); err != nil {
			fmt.Fprintf(c.stderr, "planrun report: %v\n", err)
			return ExitFailed
		}
		secrets = append(secrets, htmlForms(secrets)...)
	default:
		report.WriteMarkdown(&buf, runs[0].Doc)
	}
	// The record is redacted already; this also covers what the plan adds
	// (variable defaults, database passwords), in case one ever slips.
	text := redact.New(secrets...).String(buf.String())
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

// htmlForms are the secrets as the HTML page writes them: & < > ' " +
// become entities, so a secret holding one is redacted in that form too.
func htmlForms(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		for _, f := range redact.Forms(s) {
			if e := report.HTMLEscape(f); e != f {
				out = append(out, e)
			}
		}
	}
	return out
}

// runList is a repeatable --run.
type runList []string

func (r *runList) String() string { return strings.Join(*r, ",") }

func (r *runList) Set(s string) error {
	*r = append(*r, s)
	return nil
}

// previousSuccess is what the plan's newest successful run before run id
// took, step by step, for the HTML report to set beside it (nil: none).
func (c *CLI) previousSuccess(store journal.Store, p *plan.Plan, id string) *report.Baseline {
	runs, err := store.Runs(c.ctx, p.Name)
	if err != nil {
		return nil // the report of the run itself does not need it
	}
	past := false
	for _, info := range runs { // newest first
		if info.ID == id {
			past = true
			continue
		}
		if !past || info.Damaged != nil || info.Status != event.StatusSucceeded {
			continue
		}
		events, err := store.Events(c.ctx, p.Name, info.ID)
		if err != nil {
			return nil
		}
		b := &report.Baseline{Run: info.ID, Seconds: map[string]float64{}}
		took := map[string]time.Duration{}
		for addr, s := range journal.Replay(info.ID, events).Steps {
			if s.Status == event.StatusSucceeded {
				b.Seconds[addr], took[addr] = s.Seconds, secs(s.Seconds)
			}
		}
		if p.Downtime != nil {
			if d, ok := rehearsalDowntime(p, took); ok {
				v := d.Seconds()
				b.Downtime = &v
			}
		}
		return b
	}
	return nil
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
