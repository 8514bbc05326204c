package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// sampleRun is a run's record: a copy with progress, a retried step, a
// check with a warning, a downtime window whose last step fails, and
// the copy's rollback. An error holds HTML that must come out as text.
func sampleRun(id string, speed float64) (*plan.Plan, []event.Event) {
	p := &plan.Plan{Name: "shop", Description: "Move the <shop> & its orders", Path: "plan.hcl",
		Downtime: &plan.Downtime{From: "step.freeze", To: "step.switch"}}
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * speed * float64(time.Second))) }
	evs := []event.Event{
		{Type: event.RunStarted, Time: at(0), Plan: "shop", By: &event.Runner{User: "ops", Host: "bastion", PID: 42},
			Vars: map[string]any{"label": "nightly", "token": "(sensitive)"}},
		{Type: event.StepStarted, Time: at(0), Step: "step.copy", Uses: "copy"},
		{Type: event.StepStarted, Time: at(0.5), Step: "step.hook", Uses: "http"},
		{Type: event.StepRetrying, Time: at(2), Step: "step.hook", Uses: "http", Attempt: 1, Error: "503 Service Unavailable"},
	}
	for i := 1; i <= 6; i++ {
		evs = append(evs, event.Event{Type: event.StepProgress, Time: at(float64(i)), Step: "step.copy", Uses: "copy",
			Progress: &event.Progress{Unit: "bytes", Done: int64(i) << 20, Total: 8 << 20, Rate: float64(i%3+1) * (1 << 20)}})
	}
	evs = append(evs,
		event.Event{Type: event.StepFinished, Time: at(3), Step: "step.hook", Uses: "http", Status: event.StatusSucceeded, Attempt: 2, Seconds: 2.5 * speed},
		event.Event{Type: event.StepFinished, Time: at(7), Step: "step.copy", Uses: "copy", Status: event.StatusSucceeded, Seconds: 7 * speed,
			Output: map[string]any{"rows": 1000, "bytes": 8 << 20, "bytes_per_second": 1.2e6, "tables": []any{map[string]any{"name": "orders"}}, "seconds": 7}},
		event.Event{Type: event.StepStarted, Time: at(7), Step: "check.same", Uses: "compare"},
		event.Event{Type: event.StepFinished, Time: at(8), Step: "check.same", Uses: "compare", Status: event.StatusSucceeded, Seconds: 1 * speed,
			Assertions: []event.AssertResult{
				{That: "output.equal", Severity: "warn", Message: "data differs", Values: []event.ReadValue{{Expr: "output.equal", Value: "false"}}},
				{That: "length(output.mismatched) < 5", Severity: "error", Passed: true},
			}},
		event.Event{Type: event.StepStarted, Time: at(8), Step: "step.freeze", Uses: "sql"},
		event.Event{Type: event.StepFinished, Time: at(8.5), Step: "step.freeze", Uses: "sql", Status: event.StatusSucceeded, Seconds: 0.5 * speed},
		event.Event{Type: event.StepStarted, Time: at(8.5), Step: "step.switch", Uses: "sql"},
		event.Event{Type: event.StepFinished, Time: at(9.5), Step: "step.switch", Uses: "sql", Status: event.StatusFailed, Seconds: 1 * speed,
			Error: "step.switch: ERROR: relation \"<script>alert(1)</script>\" does not exist"},
		event.Event{Type: event.RollbackStarted, Time: at(9.5), Step: "step.copy", Uses: "sql"},
		event.Event{Type: event.RollbackFinished, Time: at(10), Step: "step.copy", Uses: "sql", Status: event.StatusRolledBack, Seconds: 0.5 * speed},
		event.Event{Type: event.RunFinished, Time: at(10), Status: event.StatusRolledBack, Error: "step.switch: ERROR: relation \"<script>alert(1)</script>\" does not exist"},
	)
	return p, evs
}

func sampleHTML(t *testing.T, runs int) string {
	t.Helper()
	var in []HTMLRun
	for i := range runs {
		id := fmt.Sprintf("20260304T050607Z-%08d", i+1)
		p, evs := sampleRun(id, 1+float64(i))
		run := journal.Replay(id, evs)
		d := Build(p, Now{}, run, run.Status, evs)
		in = append(in, HTMLRun{Doc: d, Events: evs, Baseline: &Baseline{Run: "20260301T000000Z-00000000",
			Seconds: map[string]float64{"step.copy": 5, "step.freeze": 0.5}}})
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, in); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// outline is the page's structure: each element with its id and classes,
// indented by depth; no text, no coordinates.
func outline(t *testing.T, page string) string {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(page))
	dec.Strict, dec.AutoClose, dec.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var b strings.Builder
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the page does not parse: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			b.WriteString(strings.Repeat("  ", depth) + el.Name.Local)
			for _, a := range el.Attr {
				switch a.Name.Local {
				case "id":
					b.WriteString("#" + a.Value)
				case "class":
					b.WriteString("." + strings.Join(strings.Fields(a.Value), "."))
				}
			}
			b.WriteByte('\n')
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return b.String()
}

// TestHTMLStructure compares the page's outline with the golden file
// (go test -update rewrites it; review the diff).
func TestHTMLStructure(t *testing.T) {
	for _, c := range []struct {
		name string
		runs int
	}{{"one", 1}, {"two", 2}} {
		t.Run(c.name, func(t *testing.T) {
			got := outline(t, sampleHTML(t, c.runs))
			golden := filepath.Join("testdata", "report_"+c.name+".outline")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("the page's outline differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// html/template writes "+" as &#43;.

// TestHTMLContent: the timeline's rows and attempts, the window, the
// status words, the facts and charts, escaping, nothing fetched.
func TestHTMLContent(t *testing.T) {
	page := sampleHTML(t, 1)
	count := func(re string) int { return len(regexp.MustCompile(re).FindAllString(page, -1)) }
	for _, c := range []struct {
		what string
		re   string
		n    int
	}{
		{"a row per step, check and rollback", `<g class="row-(step|check|rollback)">`, 6},
		{"a bar per attempt and rollback", `<rect class="bar st-[a-z-]+" x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="14" rx="2">`, 7},
		{"the retried attempt", `<rect class="bar st-retried" x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="14" rx="2">`, 1},
		{"the failed step", `<rect class="bar st-failed" x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="14" rx="2">`, 1},
		{"a legend entry per status shown", `<rect class="bar st-[a-z-]+" x="[0-9]+" y="[0-9]+" width="16" height="12"/><text x="[0-9]+" y="[0-9]+">(succeeded|retried|failed|rolled back)</text>`, 4},
		{"the rollback", `<g class="row-rollback"><text class="label" x="8" y="[0-9]+">rollback of step.copy</text><rect class="bar st-rolled-back"`, 1},
		{"the downtime window, shaded", `<rect class="window" x="[0-9.]+" y="30" width="[0-9.]+" height="144"><title>downtime window \(not closed\)</title>`, 1},
		{"a section per step that ran", `<section class="step st-[a-z-]+" id="r1-step-[0-9]"`, 5},
		{"the throughput chart", `<figcaption>Throughput \(bytes per second\)</figcaption>`, 1},
		{"hover titles with times", `<title>step.hook, attempt 1: retried, 05:06:07.500 → 05:06:09.000 \(1.5s\)`, 1},
		{"the timeline in words", `<li>step.hook, attempt 2: succeeded from &#43;2.0s to &#43;3.0s \(1.0s\)</li>`, 1},
		{"the assertion that passed", `<li class="assert pass"><span class="verdict">passed</span> <code>length\(output.mismatched\) &lt; 5</code>`, 1},
		{"the warning with the value read", `<span class="verdict">warning</span> <code>output.equal</code>: data differs\s*<table class="values"><tbody><tr><td><code>output.equal</code></td><td><code>false</code>`, 1},
		{"the copy's facts", `<tr><th>rows</th><td>1000</td></tr>`, 1},
		{"the previous run's duration", `7.0s; in the previous successful run 5.0s \(&#43;40%\)`, 1},
		{"the window not closed", `opened at &#43;8.0s and never closed: step.switch did not succeed`, 1},
		{"the sensitive variable", `<td><code>token</code></td><td><em>\(sensitive\)</em></td>`, 1},
		{"the error, escaped", `&lt;script&gt;alert\(1\)&lt;/script&gt;`, 3},
		{"the description, escaped", `Move the &lt;shop&gt; &amp; its orders`, 1},
		{"no script", `<script`, 0},
		{"nothing fetched", `(?i)(src=|href="?https?:|url\(["']?https?:|@import)`, 0},
	} {
		if got := count(c.re); got != c.n {
			t.Errorf("%s: %d matches of %s, want %d", c.what, got, c.re, c.n)
		}
	}
}

// TestHTMLTwoRuns: two runs' timelines one above the other, on one scale:
// the slower run's bars are longer, its axis the same.
func TestHTMLTwoRuns(t *testing.T) {
	page := sampleHTML(t, 2)
	re := regexp.MustCompile(`<g class="row-step"><text class="label" x="8" y="[0-9]+">step.copy</text><rect class="bar st-succeeded" x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"`)
	m := re.FindAllStringSubmatch(page, -1)
	if len(m) != 2 {
		t.Fatalf("step.copy's bars: %v", m)
	}
	if m[0][2] == m[1][2] || len(m[0][2]) == 0 {
		t.Errorf("the runs' copy bars have the same width %s: not one scale", m[0][2])
	}
	first := strings.Index(page, `id="r1-timeline"`)
	second := strings.Index(page, `id="r2-timeline"`)
	steps := strings.Index(page, `id="r1-steps"`)
	if first < 0 || second < first || steps < second {
		t.Errorf("the timelines are not one above the other before the steps: %d %d %d", first, second, steps)
	}
}

// TestHTMLResumedRun: a step whose process died shows as unfinished up to
// the record's last event before the resume, which is marked on the axis.
func TestHTMLResumedRun(t *testing.T) {
	p := &plan.Plan{Name: "crash", Path: "plan.hcl"}
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	evs := []event.Event{
		{Type: event.RunStarted, Time: at(0), Plan: "crash"},
		{Type: event.StepStarted, Time: at(0), Step: "step.a", Uses: "exec"},
		{Type: event.StepLog, Time: at(4), Step: "step.a", Message: "working"},
		{Type: event.RunStarted, Time: at(10), Plan: "crash", Resumed: true},
		{Type: event.StepStarted, Time: at(10), Step: "step.a", Uses: "exec"},
		{Type: event.StepFinished, Time: at(12), Step: "step.a", Uses: "exec", Status: event.StatusSucceeded, Attempt: 1, Seconds: 2},
		{Type: event.RunFinished, Time: at(12), Status: event.StatusSucceeded},
	}
	run := journal.Replay("r", evs)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, []HTMLRun{{Doc: Build(p, Now{}, run, run.Status, evs), Events: evs}}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, re := range []string{
		`<rect class="bar st-unfinished" x="250" y="[0-9.]+" width="220" height="14" rx="2"><title>step.a, attempt 1: unfinished, 05:06:07.000 → 05:06:11.000 \(4.0s\)</title>`,
		`<rect class="bar st-succeeded" x="800" y="[0-9.]+" width="110" height="14" rx="2">`,
		`<g class="segment"><line class="mark" x1="800" y1="26" x2="800" y2="54"/><text x="800" dx="3" y="26">resume</text></g>`,
	} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("the page lacks %s", re)
		}
	}
}
