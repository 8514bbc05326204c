package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/redact"
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
		if release, _, err := store.Lock(c.ctx, p.Name, journal.Me("")); err != nil {
			if journal.IsLocked(err) {
				result = event.StatusRunning
			}
		} else {
			_ = release() // only probing
		}
	}
	doc := buildReport(p, run, result, events)

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
		writeMarkdownReport(&buf, doc)
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
	events, err := store.Events(c.ctx, p.Name, id)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return "", false, nil, ExitFailed, false
	}
	return id, idx == 0, events, 0, true
}

// reportDoc is the report, and its JSON form (--format json). The structure
// is versioned: fields are only ever added within a version. Times are
// RFC 3339 in UTC, durations in seconds; null means "not known".
type reportDoc struct {
	Version   int              `json:"version"` // 1
	Plan      reportPlan       `json:"plan"`
	Run       reportRun        `json:"run"`
	Downtime  *reportDowntime  `json:"downtime"` // null: the plan declares no window
	Variables reportVariables  `json:"variables"`
	Steps     []reportStep     `json:"steps"`     // steps and checks, in the order they ran; those that never started last
	Rollbacks []reportRollback `json:"rollbacks"` // rollback hooks, in the order they ran
}

type reportPlan struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Path        string `json:"path"` // as given to planrun report
	Hash        string `json:"hash"` // of the plan's files now
}

type reportRun struct {
	ID string `json:"id"`
	// Result: succeeded, failed, rolled_back, interrupted, unfinished (its
	// process died), or running (a live process holds the plan's lock).
	Result   string     `json:"result"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished"`
	Seconds  *float64   `json:"seconds"`
	// RanBy is who ran it (user, host, pid); null when the record does not say.
	RanBy *reportRunner `json:"ran_by"`
	// PlanHash is the hash of the plan's files when the run started;
	// PlanChanged names the steps that differ in the plan as it is now.
	PlanHash    string          `json:"plan_hash"`
	PlanChanged []string        `json:"plan_changed"`
	Error       string          `json:"error"`   // the run's first error, in full
	Message     string          `json:"message"` // such as "rollbacks were interrupted"
	Segments    []reportSegment `json:"segments"`
}

type reportRunner struct {
	User string `json:"user"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// reportSegment is one process's part of the run: the first apply, each
// apply that resumed it, each 'planrun rollback'.
type reportSegment struct {
	Kind     string     `json:"kind"` // apply, resume or rollback
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished"` // null: its process died
	Status   string     `json:"status"`
}

type reportDowntime struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Seconds *float64 `json:"seconds"` // null: not measured
	Note    string   `json:"note"`    // how it was measured, or why not
}

type reportVariables struct {
	// Source says where the values come from: "recorded" — by the run, as
	// it started; "given" — a run recorded by an older planrun keeps no
	// values, so these are the values given to planrun report (defaults,
	// PLANRUN_VAR_*, -var-file, -var).
	Source string `json:"source"`
	// MatchesRun: the steps' fingerprints recorded by the run equal the
	// plan's with these values (so the steps' arguments were the same);
	// null when the run recorded no fingerprints.
	MatchesRun *bool       `json:"matches_run"`
	Values     []reportVar `json:"values"`
}

type reportVar struct {
	Name      string          `json:"name"`
	Sensitive bool            `json:"sensitive"`
	Value     json.RawMessage `json:"value"` // "(sensitive)" for a sensitive one
}

type reportStep struct {
	Addr string `json:"addr"`
	Kind string `json:"kind"` // step or check
	Uses string `json:"uses"`
	// Status: succeeded, failed, skipped, cancelled, not_run, running (in a
	// run still going on) or unfinished (its process died in it).
	Status     string             `json:"status"`
	Attempts   int                `json:"attempts"`
	Started    *time.Time         `json:"started"`
	Seconds    float64            `json:"seconds"`
	Assertions reportAssertCounts `json:"assertions"`
	Failures   []reportAssertion  `json:"assertion_failures"` // failed and warned assertions
	Error      string             `json:"error"`              // in full
	Rollback   string             `json:"rollback"`           // the rollback's status, "" when none ran
	Summary    []reportFact       `json:"summary"`            // notable outputs
}

type reportAssertCounts struct {
	Passed int `json:"passed"`
	Warned int `json:"warned"`
	Failed int `json:"failed"`
}

type reportAssertion struct {
	That     string            `json:"that"`
	Severity string            `json:"severity"`
	Message  string            `json:"message"`
	Error    string            `json:"error"` // the condition could not be evaluated
	Values   []event.ReadValue `json:"values"`
}

// reportFact is one notable output: its name and value as recorded (JSON),
// and as the Markdown shows it. Outputs without a summary of their own are
// one fact, "output": the output as compact JSON text, cut after 300 bytes.
type reportFact struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	text  string
}

type reportRollback struct {
	Step    string     `json:"step"`
	Uses    string     `json:"uses"`
	Status  string     `json:"status"`
	Started *time.Time `json:"started"`
	Seconds float64    `json:"seconds"`
	Error   string     `json:"error"`
	Message string     `json:"message"`
}

// buildReport puts a run's record and the plan as it is now together.
func buildReport(p *plan.Plan, run *journal.Run, result event.Status, events []event.Event) *reportDoc {
	doc := &reportDoc{
		Version: 1,
		Plan:    reportPlan{Name: p.Name, Description: p.Description, Path: p.Path, Hash: p.Hash},
		Run: reportRun{
			ID: run.ID, Result: string(result), Started: run.Started.UTC(),
			PlanHash: run.Hash, PlanChanged: []string{},
		},
		Steps: []reportStep{}, Rollbacks: []reportRollback{},
	}
	if !run.Finished.IsZero() {
		f := run.Finished.UTC()
		s := run.Finished.Sub(run.Started).Seconds()
		doc.Run.Finished, doc.Run.Seconds = &f, &s
	}
	fps := fingerprints(p)
	if changes := journal.Changes(run.Fingerprints, fps); len(run.Fingerprints) > 0 && len(changes) > 0 {
		doc.Run.PlanChanged = changes
	}
	var recorded map[string]any
	for _, ev := range events {
		if ev.Type == event.RunStarted {
			// The first process's: who started the run, with what.
			if ev.By != nil {
				doc.Run.RanBy = &reportRunner{User: ev.By.User, Host: ev.By.Host, PID: ev.By.PID}
			}
			recorded = ev.Vars
			break
		}
	}
	if recorded != nil {
		doc.Variables = recordedReportVars(p, recorded)
	} else {
		doc.Variables = reportVars(p, run, len(doc.Run.PlanChanged) == 0)
	}

	// The steps' states are the journal's replay of the record; the report
	// lists them in the order they first appear in it, then the plan's
	// steps that never did.
	var order []string
	seen := map[string]bool{}
	see := func(addr string) {
		if !seen[addr] {
			seen[addr] = true
			order = append(order, addr)
		}
	}
	rollbacks := map[string]int{} // step → index in doc.Rollbacks of its latest hook
	var seg *reportSegment
	for _, ev := range events {
		switch ev.Type {
		case event.RunStarted:
			kind := "apply"
			switch {
			case ev.Message == "rollback":
				kind = "rollback"
			case ev.Resumed:
				kind = "resume"
			}
			doc.Run.Segments = append(doc.Run.Segments, reportSegment{Kind: kind, Started: ev.Time.UTC(), Status: string(event.StatusUnfinished)})
			seg = &doc.Run.Segments[len(doc.Run.Segments)-1]
		case event.StepStarted, event.StepRetrying, event.StepFinished:
			see(ev.Step)
		case event.RollbackStarted:
			t := ev.Time.UTC()
			doc.Rollbacks = append(doc.Rollbacks, reportRollback{Step: ev.Step, Uses: ev.Uses, Status: string(event.StatusRunning), Started: &t})
			rollbacks[ev.Step] = len(doc.Rollbacks) - 1
		case event.RollbackFinished:
			i, ok := rollbacks[ev.Step]
			if !ok {
				doc.Rollbacks = append(doc.Rollbacks, reportRollback{Step: ev.Step, Uses: ev.Uses})
				i = len(doc.Rollbacks) - 1
			}
			rb := &doc.Rollbacks[i]
			rb.Status, rb.Seconds, rb.Error, rb.Message = string(ev.Status), ev.Seconds, ev.Error, ev.Message
			delete(rollbacks, ev.Step)
			see(ev.Step)
		case event.RunFinished:
			if seg != nil {
				t := ev.Time.UTC()
				seg.Finished, seg.Status = &t, string(ev.Status)
			}
			// The last segment's error and message describe the run; a
			// later rollback segment that succeeded has none.
			doc.Run.Error, doc.Run.Message = ev.Error, ev.Message
		}
	}
	// Steps of the plan that never started, in the plan's order.
	for _, st := range p.Steps {
		see(st.Addr)
	}
	started := func(addr string) time.Time {
		if st := run.Steps[addr]; st != nil {
			return st.Started
		}
		return time.Time{}
	}
	sort.SliceStable(order, func(i, j int) bool {
		ti, tj := started(order[i]), started(order[j])
		if ti.IsZero() || tj.IsZero() {
			return !ti.IsZero() && tj.IsZero()
		}
		return ti.Before(tj)
	})
	for _, addr := range order {
		s := reportStepOf(p, addr, run.Steps[addr])
		if result != event.StatusRunning && s.Status == string(event.StatusRunning) {
			s.Status = string(event.StatusUnfinished) // its process died in it
		}
		doc.Steps = append(doc.Steps, s)
	}
	for i := range doc.Rollbacks {
		if rb := &doc.Rollbacks[i]; result != event.StatusRunning && rb.Status == string(event.StatusRunning) {
			rb.Status = string(event.StatusUnfinished)
		}
	}
	doc.Downtime = reportWindow(p, events)
	return doc
}

// reportStepOf is a step as the report shows it: its kind and type from
// the plan, the rest from its replayed state (nil: it never ran).
func reportStepOf(p *plan.Plan, addr string, st *journal.StepState) reportStep {
	s := reportStep{Addr: addr, Kind: "step", Status: string(event.StatusNotRun), Failures: []reportAssertion{}, Summary: []reportFact{}}
	if ps := p.Step(addr); ps != nil {
		s.Uses = ps.Uses
		if ps.Kind == plan.KindCheck {
			s.Kind = "check"
		}
	} else if !strings.HasPrefix(addr, "step.") {
		s.Kind = "check"
	}
	if st == nil {
		return s
	}
	if st.Uses != "" {
		s.Uses = st.Uses
	}
	s.Status, s.Attempts, s.Seconds, s.Error, s.Rollback = string(st.Status), st.Attempts, st.Seconds, st.Error, string(st.Rollback)
	if !st.Started.IsZero() {
		t := st.Started.UTC()
		s.Started = &t
	}
	s.Assertions, s.Failures = reportAssertions(st.Assertions)
	s.Summary = summarizeOutput(s.Uses, st.Output)
	return s
}

func reportAssertions(results []event.AssertResult) (reportAssertCounts, []reportAssertion) {
	var n reportAssertCounts
	failures := []reportAssertion{}
	for _, a := range results {
		switch {
		case a.Passed:
			n.Passed++
			continue
		case a.Severity == string(plan.SeverityWarn):
			n.Warned++
		default:
			n.Failed++
		}
		values := a.Values
		if values == nil {
			values = []event.ReadValue{}
		}
		failures = append(failures, reportAssertion{That: a.That, Severity: a.Severity, Message: a.Message, Error: a.Error, Values: values})
	}
	return n, failures
}

// recordedReportVars lists the variables the run recorded as it started,
// in the plan's order, then any the plan no longer declares.
func recordedReportVars(p *plan.Plan, vars map[string]any) reportVariables {
	rv := reportVariables{Source: "recorded", Values: []reportVar{}}
	add := func(name string, declared *plan.Variable) {
		v, ok := vars[name]
		entry := reportVar{Name: name, Value: json.RawMessage("null")}
		if declared != nil {
			entry.Sensitive = declared.Sensitive || p.IsSensitive(name)
		}
		if v == sensitiveValue {
			entry.Sensitive = true
		}
		switch {
		case entry.Sensitive:
			entry.Value = json.RawMessage(`"` + sensitiveValue + `"`)
		case ok:
			if raw, err := json.Marshal(v); err == nil {
				entry.Value = raw
			}
		}
		rv.Values = append(rv.Values, entry)
	}
	seen := map[string]bool{}
	for _, v := range p.Variables {
		seen[v.Name] = true
		add(v.Name, v)
	}
	var rest []string
	for name := range vars {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		add(name, nil)
	}
	return rv
}

// reportVars lists the plan's variables with the values given now, for a
// run recorded by an older planrun that kept none (only fingerprints of
// what the steps were given).
func reportVars(p *plan.Plan, run *journal.Run, same bool) reportVariables {
	// No redactor here: the whole report is redacted once it is rendered.
	rv := recordedReportVars(p, recordedVars(p, nil))
	rv.Source = "given"
	if len(run.Fingerprints) > 0 {
		rv.MatchesRun = &same
	}
	return rv
}

// reportWindow measures the plan's downtime window: the duration the run
// recorded, or else from the record's event times (across resumes).
func reportWindow(p *plan.Plan, events []event.Event) *reportDowntime {
	if p.Downtime == nil {
		return nil
	}
	w := &reportDowntime{From: p.Downtime.From, To: p.Downtime.To}
	var recorded *float64
	var from, to time.Time
	for _, ev := range events {
		switch {
		case ev.Type == event.RunFinished && ev.Downtime != nil:
			recorded = ev.Downtime
		case ev.Type == event.StepStarted && ev.Step == w.From:
			from = ev.Time
		case ev.Type == event.StepFinished && ev.Step == w.To && ev.Status == event.StatusSucceeded:
			to = ev.Time
		}
	}
	switch {
	case recorded != nil:
		w.Seconds = recorded
		w.Note = fmt.Sprintf("from the start of %s to the end of %s, as the run measured it", w.From, w.To)
	case !from.IsZero() && !to.IsZero() && !to.Before(from):
		s := to.Sub(from).Seconds()
		w.Seconds = &s
		w.Note = fmt.Sprintf("from the start of %s to the end of %s, from the record's event times (the run was resumed)", w.From, w.To)
	default:
		w.Note = fmt.Sprintf("not measured: %s or %s did not complete in this run", w.From, w.To)
	}
	return w
}

// outputCut is how much of an output the generic summary shows.
const outputCut = 300

// summarizeOutput picks the outputs people look for in the built-in types'
// results; any other output is shown as compact JSON, cut.
func summarizeOutput(uses string, out any) []reportFact {
	facts := []reportFact{}
	if out == nil {
		return facts
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return facts
	}
	add := func(name string, value any, text string) {
		facts = append(facts, reportFact{Name: name, Value: value, text: text})
	}
	count := func(name string, n int64) { add(name, n, fmt.Sprint(n)) }
	seconds := func(name string, s float64) { add(name, s, fmtDuration(secs(s))) }
	list := func(name string, items []string) {
		if items == nil {
			items = []string{}
		}
		text := "none"
		if len(items) > 0 {
			text = joinCut(items, 10)
		}
		add(name, items, text)
	}
	switch uses {
	case "copy":
		var o struct {
			Tables         []json.RawMessage `json:"tables"`
			Rows           int64             `json:"rows"`
			Bytes          int64             `json:"bytes"`
			BytesPerSecond float64           `json:"bytes_per_second"`
			Seconds        float64           `json:"seconds"`
			Resumed        bool              `json:"resumed"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("tables", int64(len(o.Tables)))
		count("rows", o.Rows)
		add("bytes", o.Bytes, bytesize.Format(o.Bytes))
		add("bytes_per_second", o.BytesPerSecond, bytesize.Format(int64(o.BytesPerSecond))+"/s")
		seconds("seconds", o.Seconds)
		if o.Resumed {
			add("resumed", true, "yes: it continued an interrupted copy")
		}
		return facts
	case "compare":
		var o struct {
			Equal           bool     `json:"equal"`
			Mismatched      []string `json:"mismatched"`
			SequencesBehind []string `json:"sequences_behind"`
			Checksums       []struct {
				Schema        string `json:"schema"`
				Name          string `json:"name"`
				DifferingKeys []struct {
					Key  string `json:"key"`
					Kind string `json:"kind"`
				} `json:"differing_keys"`
			} `json:"checksums"`
			Seconds float64 `json:"seconds"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		add("equal", o.Equal, fmt.Sprint(o.Equal))
		list("mismatched", o.Mismatched)
		if len(o.SequencesBehind) > 0 {
			list("sequences_behind", o.SequencesBehind)
		}
		keys := map[string][]string{}
		var texts []string
		for _, t := range o.Checksums {
			if len(t.DifferingKeys) == 0 {
				continue
			}
			table := t.Schema + "." + t.Name
			var ks []string
			for _, k := range t.DifferingKeys {
				ks = append(ks, fmt.Sprintf("%s (%s)", k.Key, k.Kind))
			}
			keys[table] = ks
			texts = append(texts, table+": "+joinCut(ks, 5))
		}
		if len(keys) > 0 {
			add("differing_keys", keys, strings.Join(texts, "; "))
		}
		seconds("seconds", o.Seconds)
		return facts
	case "replicate":
		var o struct {
			Action        string `json:"action"`
			Tables        int64  `json:"tables"`
			LagBytes      int64  `json:"lag_bytes"`
			CaughtUpLSN   string `json:"caught_up_lsn"`
			NotReplicated []struct {
				Kind  string `json:"kind"`
				Count int64  `json:"count"`
			} `json:"not_replicated"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		if o.Action != "" {
			add("action", o.Action, o.Action)
		}
		count("tables", o.Tables)
		add("lag_bytes", o.LagBytes, bytesize.Format(o.LagBytes))
		add("caught_up_lsn", o.CaughtUpLSN, orDash(o.CaughtUpLSN))
		gaps := map[string]int64{}
		var texts []string
		for _, g := range o.NotReplicated {
			gaps[g.Kind] = g.Count
			texts = append(texts, fmt.Sprintf("%s (%d)", g.Kind, g.Count))
		}
		text := "nothing"
		if len(texts) > 0 {
			text = strings.Join(texts, ", ")
		}
		add("not_replicated", gaps, text)
		return facts
	case "pg_restore":
		var o struct {
			Errors   int64 `json:"errors"`
			Warnings int64 `json:"warnings"`
			Messages []struct {
				Level string `json:"level"`
				Text  string `json:"text"`
			} `json:"messages"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("errors", o.Errors)
		count("warnings", o.Warnings)
		var errs []string
		for _, m := range o.Messages {
			if m.Level == "error" && len(errs) < 5 {
				errs = append(errs, m.Text)
			}
		}
		if len(errs) > 0 {
			add("error_messages", errs, strings.Join(errs, " | "))
		}
		return facts
	case "sequences":
		var o struct {
			Sequences []json.RawMessage `json:"sequences"`
			Updated   int64             `json:"updated"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("updated", o.Updated)
		count("sequences", int64(len(o.Sequences)))
		return facts
	}
	text := cutString(string(raw), outputCut)
	add("output", text, text)
	return facts
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinCut joins at most n items, saying how many more there are.
func joinCut(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// cutString cuts s after n bytes (at a rune boundary), marking the cut.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("… (%d bytes more)", len(s)-n)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
