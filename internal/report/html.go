package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
)

// This file renders one or two runs' reports as one self-contained HTML
// page: inline CSS and SVG, no script, no font or image to fetch. Every
// text goes through html/template's escaping.

//go:embed html/report.html.tmpl
var pageTemplate string

//go:embed html/report.css
var pageCSS string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"word":    resultWord,
	"dur":     func(s float64) string { return FormatDuration(secs(s)) },
	"inc":     func(i int) int { return i + 1 },
	"class":   statusClass,
	"asserts": assertCell,
}).Parse(pageTemplate))

// HTMLRun is one run as the HTML report shows it.
type HTMLRun struct {
	Doc *Doc
	// Events are the run's record: the timeline's attempts and the
	// progress samples its charts draw.
	Events []event.Event
	// Baseline is the plan's previous successful run, whose durations
	// stand beside this run's (a rehearsal's); nil: there is none.
	Baseline *Baseline
}

// Baseline is what a previous successful run took.
type Baseline struct {
	Run     string
	Seconds map[string]float64 // step → how long it took
	// Downtime is the window it predicts: the steps in it along the
	// plan's order (nil: it does not tell).
	Downtime *float64
}

// The timeline's geometry, in CSS pixels: the page's tests and its
// screenshot test read the same numbers.
const (
	PageMargin    = 24   // the body's margin
	TimelineW     = 1080 // the timeline's width
	TimelineLab   = 250  // its column of step names
	timelineEnd   = 170  // the room after the plot for the last bar's label
	TimelinePlotW = TimelineW - TimelineLab - timelineEnd
	rowH          = 24
	barH          = 14
	axisH         = 30
	legendH       = 34
)

// HTMLEscape is how the page writes a text: the CLI redacts the page's
// text, so it redacts each secret in this form too.
func HTMLEscape(s string) string {
	var b strings.Builder
	_ = textForm.Execute(&b, s) // a string in text context cannot fail
	return b.String()
}

var textForm = template.Must(template.New("text").Parse(`{{.}}`))

// WriteHTML renders the runs' report: a header per run, their timelines
// one above the other on one time scale, then each run's steps.
func WriteHTML(w io.Writer, runs []HTMLRun) error {
	if len(runs) == 0 {
		return fmt.Errorf("no run to report")
	}
	pg := htmlPage{CSS: template.CSS(pageCSS), Two: len(runs) > 1}
	tls := make([]*timeline, len(runs))
	scale := 0.0
	for i, r := range runs {
		tls[i] = buildTimeline(r.Doc, r.Events)
		scale = math.Max(scale, tls[i].Seconds)
	}
	for i, r := range runs {
		pg.Runs = append(pg.Runs, newHTMLRun(i, r, tls[i], scale))
	}
	d := runs[0].Doc
	pg.Title = "Run report: " + d.Plan.Name
	pg.Plan = d.Plan
	var buf bytes.Buffer
	if err := page.Execute(&buf, pg); err != nil {
		return fmt.Errorf("render the HTML report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type htmlPage struct {
	Title string
	Plan  PlanInfo
	CSS   template.CSS
	Two   bool
	Runs  []*htmlRun
}

type htmlRun struct {
	N         int
	Anchor    string // r1, r2
	Doc       *Doc
	Header    []kv
	Error     string
	Vars      []htmlVar
	VarsNote  string
	Timeline  svgTimeline
	Steps     []htmlStep
	Baseline  *Baseline
	Rollbacks []Rollback
}

type kv struct {
	K, V  string
	Class string
}

type htmlVar struct {
	Name, Value string
	Sensitive   bool
}

type svgTimeline struct {
	Caption        string
	Width, Height  int
	LabelW, PlotX  int
	PlotW, PlotH   int
	AxisY, LegendY int
	PlotBottom     int
	RowH, TickTop  int
	Ticks          []svgTick
	Rows           []svgRow
	Window         *svgWindow
	Marks          []svgMark
	Legend         []svgLegend
	Text           []string // the timeline in words, for who cannot see it
}

type svgTick struct {
	X     float64
	Label string
}

type svgRow struct {
	Y, TextY int
	Label    string
	Kind     string
	Zebra    bool
	Bars     []svgBar
	Note     string // shown when the row has no bar
	NoteX    int
	Tail     string // the last bar's status and duration, after it
	TailX    float64
}

type svgBar struct {
	X, W, Y float64
	H       int
	Class   string
	Title   string
	Sep     bool // a tick between attempts
	SepY1   float64
	SepY2   float64
}

type svgWindow struct {
	LegendX, LegendTX, LegendTY int
	X, W                        float64
	Y, H                        int
	LabelY                      int
	Label                       string
	Closed                      bool
}

type svgMark struct {
	X      float64
	Y1, Y2 int
	Label  string
}

type svgLegend struct {
	X, Y   int
	TX, TY int
	Class  string
	Label  string
}

type htmlStep struct {
	Anchor    string
	Step      Step
	Status    string
	Started   string
	Duration  string
	Previous  string // its duration in the baseline run; "" when it has none
	Delta     string
	Attempts  []string
	Asserts   []htmlAssert
	Facts     []kv
	Rollbacks []Rollback
	Charts    []htmlChart
}

type htmlAssert struct {
	Verdict, Class string
	That, Message  string
	Error          string
	Values         []event.ReadValue
}

type htmlChart struct {
	Title                 string
	W, H                  int
	PlotX                 int
	PlotW                 int
	PlotH                 int
	PlotBottom, PlotRight int
	LabelX, TextY         int
	Points                string
	YMax                  string
	XMax                  string
	Summary               string
}

func statusClass(s string) string { return "st-" + strings.ReplaceAll(s, "_", "-") }

const clock = "15:04:05.000"

func newHTMLRun(i int, r HTMLRun, tl *timeline, scale float64) *htmlRun {
	d := r.Doc
	hr := &htmlRun{N: i + 1, Anchor: fmt.Sprintf("r%d", i+1), Doc: d, Baseline: r.Baseline, Error: d.Run.Error, Rollbacks: d.Rollbacks}
	add := func(k, v, class string) { hr.Header = append(hr.Header, kv{K: k, V: v, Class: class}) }
	add("Plan", fmt.Sprintf("%s (%s)", d.Plan.Name, d.Plan.Path), "")
	add("Run", d.Run.ID, "mono")
	add("Result", resultWord(d.Run.Result), "result "+statusClass(d.Run.Result))
	if rb := d.Run.RanBy; rb != nil {
		add("Run by", fmt.Sprintf("%s on %s, pid %d", rb.User, rb.Host, rb.PID), "")
	} else {
		add("Run by", "not recorded (a run record of an older planrun)", "")
	}
	add("Started", d.Run.Started.Format(reportTime), "")
	if d.Run.Finished != nil {
		add("Finished", d.Run.Finished.Format(reportTime), "")
		add("Total time", FormatDuration(secs(*d.Run.Seconds)), "big")
	} else {
		add("Finished", "-", "")
		add("Total time", "-", "")
	}
	if len(d.Run.Segments) > 1 {
		var parts []string
		for _, s := range d.Run.Segments {
			end := "its process died"
			if s.Finished != nil {
				end = resultWord(s.Status) + " " + s.Finished.Format("15:04:05")
			}
			parts = append(parts, fmt.Sprintf("%s %s → %s", s.Kind, s.Started.Format("15:04:05"), end))
		}
		add("Segments", strings.Join(parts, "; "), "")
	}
	add("Downtime window", downtimeText(d, tl), "big")
	if b := r.Baseline; b != nil {
		text := fmt.Sprintf("durations beside this run's are from run %s", b.Run)
		if b.Downtime != nil && d.Downtime != nil {
			text += fmt.Sprintf("; the window it predicts: %s", FormatDuration(secs(*b.Downtime)))
		}
		add("Previous successful run", text, "")
	}
	hash := d.Run.PlanHash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	if len(d.Run.PlanChanged) > 0 {
		hash += "; the plan changed since: " + joinCut(d.Run.PlanChanged, 10)
	}
	add("Plan hash", hash, "mono")
	if d.Run.Message != "" {
		add("Note", d.Run.Message, "")
	}

	hr.VarsNote = "The plan declares none."
	if len(d.Variables.Values) > 0 {
		hr.VarsNote = "The run record keeps no variable values: these are the values given to this report."
		if d.Variables.Source == "recorded" {
			hr.VarsNote = "As the run recorded them when it started."
		}
	}
	for _, v := range d.Variables.Values {
		val := "(sensitive)"
		if !v.Sensitive {
			val = hclValue(v.Value)
		}
		hr.Vars = append(hr.Vars, htmlVar{Name: v.Name, Value: val, Sensitive: v.Sensitive})
	}
	hr.Timeline = drawTimeline(hr.Anchor, d, tl, scale)
	hr.Steps = stepSections(hr.Anchor, d, r, tl)
	return hr
}

func downtimeText(d *Doc, tl *timeline) string {
	if d.Downtime == nil {
		return "the plan declares no downtime window"
	}
	w := d.Downtime
	span := fmt.Sprintf("from the start of %s to the end of %s", w.From, w.To)
	switch {
	case tl.Window == nil:
		why := "never started"
		for _, s := range d.Steps {
			if s.Addr == w.From && s.Status == string(event.StatusSkipped) {
				why = "was skipped (its when was false)"
			}
		}
		return fmt.Sprintf("not opened: %s %s (%s)", w.From, why, span)
	case tl.Window.Closed:
		length := secs(tl.Window.To - tl.Window.From)
		if w.Seconds != nil {
			length = secs(*w.Seconds) // as the run measured it
		}
		return fmt.Sprintf("%s, from the start of %s to %s (+%s → +%s)", FormatDuration(length), w.From, tl.Window.By, FormatDuration(secs(tl.Window.From)), FormatDuration(secs(tl.Window.To)))
	case !tl.Window.Closed:
		return fmt.Sprintf("opened at +%s and never closed: %s did not succeed (%s)", FormatDuration(secs(tl.Window.From)), w.To, span)
	}
	return w.Note
}

// drawTimeline lays a run's timeline out on an axis of scale seconds.
func drawTimeline(anchor string, d *Doc, tl *timeline, scale float64) svgTimeline {
	if scale <= 0 {
		scale = 1
	}
	st := svgTimeline{Width: TimelineW, LabelW: TimelineLab, PlotX: TimelineLab, PlotW: TimelinePlotW, AxisY: axisH, RowH: rowH, TickTop: axisH - 8}
	st.Caption = fmt.Sprintf("Run %s: %s", d.Run.ID, resultWord(d.Run.Result))
	x := func(s float64) float64 { return float64(TimelineLab) + s/scale*float64(TimelinePlotW) }
	step := tickStep(scale)
	for t := 0.0; t <= scale+step/1000; t += step {
		st.Ticks = append(st.Ticks, svgTick{X: round1(x(t)), Label: "+" + FormatDuration(secs(t))})
	}
	used := map[string]bool{}
	for i, row := range tl.Rows {
		y := axisH + i*rowH
		sr := svgRow{Y: y, TextY: y + rowH/2 + 4, Label: row.Label, Kind: row.Kind, Zebra: i%2 == 1, NoteX: TimelineLab + 6}
		for j, b := range row.Bars {
			bx, bw := x(b.From), math.Max(2, x(b.To)-x(b.From))
			title := fmt.Sprintf("%s, %s: %s, %s → %s (%s)", row.Label, b.Label, resultWord(b.Status),
				tl.Start.Add(secs(b.From)).UTC().Format(clock), tl.Start.Add(secs(b.To)).UTC().Format(clock), FormatDuration(secs(b.To-b.From)))
			if b.Open {
				title += ", still going"
			}
			if b.Message != "" {
				title += "\n" + cutString(b.Message, 400)
			}
			by := float64(y + (rowH-barH)/2)
			sr.Bars = append(sr.Bars, svgBar{X: round1(bx), W: round1(bw), Y: by, H: barH, Class: "bar " + statusClass(b.Status),
				Title: title, Sep: j > 0, SepY1: by - 3, SepY2: by + barH + 3})
			used[b.Status] = true
			tail := resultWord(b.Status) + " · " + FormatDuration(secs(b.To-b.From))
			if len(row.Bars) > 1 {
				tail = fmt.Sprintf("%s · %d attempts", resultWord(b.Status), len(row.Bars))
			}
			sr.Tail, sr.TailX = tail, round1(bx+bw+5)
			st.Text = append(st.Text, fmt.Sprintf("%s, %s: %s from +%s to +%s (%s)", row.Label, b.Label, resultWord(b.Status),
				FormatDuration(secs(b.From)), FormatDuration(secs(b.To)), FormatDuration(secs(b.To-b.From))))
		}
		if len(row.Bars) == 0 {
			status := string(event.StatusNotRun)
			for _, s := range d.Steps {
				if s.Addr == row.Addr {
					status = s.Status
				}
			}
			sr.Note = resultWord(status)
			if status == string(event.StatusSucceeded) {
				sr.Note = "completed in an earlier run"
			}
			st.Text = append(st.Text, fmt.Sprintf("%s: %s", row.Label, sr.Note))
		}
		st.Rows = append(st.Rows, sr)
	}
	st.PlotH = len(tl.Rows) * rowH
	if w := tl.Window; w != nil {
		label := "downtime window"
		if !w.Closed {
			label += " (not closed)"
		}
		st.Window = &svgWindow{X: round1(x(w.From)), W: round1(math.Max(1, x(w.To)-x(w.From))), Y: axisH, H: st.PlotH, LabelY: axisH + st.PlotH - 4, Label: label, Closed: w.Closed}
	}
	for _, m := range tl.Segments {
		st.Marks = append(st.Marks, svgMark{X: round1(x(m.At)), Y1: axisH - 4, Y2: axisH + st.PlotH, Label: m.Kind})
	}
	st.PlotBottom = axisH + st.PlotH
	st.LegendY = st.PlotBottom + 12
	lx := TimelineLab
	for _, s := range []string{"succeeded", "retried", "failed", "cancelled", "interrupted", "unfinished", "running", "skipped", "rolled_back"} {
		if used[s] {
			st.Legend = append(st.Legend, svgLegend{X: lx, Y: st.LegendY, TX: lx + 20, TY: st.LegendY + 10, Class: "bar " + statusClass(s), Label: resultWord(s)})
			lx += 20 + 8*len(resultWord(s)) + 18
		}
	}
	if st.Window != nil {
		st.Window.LegendX, st.Window.LegendTX, st.Window.LegendTY = lx, lx+20, st.LegendY+10
	}
	st.Height = st.LegendY + legendH
	return st
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// tickStep picks a round interval that puts at most 8 ticks on the axis.
func tickStep(scale float64) float64 {
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400} {
		if scale/s <= 8 {
			return s
		}
	}
	return math.Ceil(scale/8/86400) * 86400
}

func stepSections(anchor string, d *Doc, r HTMLRun, tl *timeline) []htmlStep {
	asserts := map[string][]event.AssertResult{}
	for _, ev := range r.Events {
		if ev.Type == event.StepFinished && ev.Status != event.StatusReused {
			asserts[ev.Step] = ev.Assertions
		}
	}
	bars := map[string][]tlBar{}
	for _, row := range tl.Rows {
		if row.Kind != "rollback" {
			bars[row.Addr] = row.Bars
		}
	}
	var out []htmlStep
	for i, s := range d.Steps {
		hs := htmlStep{Anchor: fmt.Sprintf("%s-step-%d", anchor, i+1), Step: s, Status: statusClass(s.Status), Started: "-", Duration: "-"}
		if s.Started != nil {
			hs.Started = fmt.Sprintf("%s (+%s)", s.Started.Format("15:04:05.000"), FormatDuration(s.Started.Sub(d.Run.Started)))
		}
		if s.Seconds > 0 {
			hs.Duration = FormatDuration(secs(s.Seconds))
		}
		if b := r.Baseline; b != nil {
			if prev, ok := b.Seconds[s.Addr]; ok {
				hs.Previous = FormatDuration(secs(prev))
				if prev > 0 && s.Seconds > 0 {
					hs.Delta = fmt.Sprintf("%+.0f%%", (s.Seconds-prev)/prev*100)
				}
			}
		}
		for _, b := range bars[s.Addr] {
			line := fmt.Sprintf("%s: %s, +%s → +%s (%s)", b.Label, resultWord(b.Status), FormatDuration(secs(b.From)), FormatDuration(secs(b.To)), FormatDuration(secs(b.To-b.From)))
			if b.Status == "retried" && b.Message != "" {
				line += ": " + b.Message
			}
			hs.Attempts = append(hs.Attempts, line)
		}
		for _, a := range asserts[s.Addr] {
			ha := htmlAssert{Verdict: "passed", Class: "pass", That: a.That, Message: strings.TrimSpace(a.Message), Error: a.Error, Values: a.Values}
			switch {
			case a.Passed:
			case a.Severity == string(plan.SeverityWarn):
				ha.Verdict, ha.Class = "warning", "warn"
			default:
				ha.Verdict, ha.Class = "FAILED", "fail"
			}
			if a.Passed {
				ha.Message = ""
			}
			hs.Asserts = append(hs.Asserts, ha)
		}
		for _, f := range s.Summary {
			hs.Facts = append(hs.Facts, kv{K: f.Name, V: f.text})
		}
		for _, rb := range d.Rollbacks {
			if rb.Step == s.Addr {
				hs.Rollbacks = append(hs.Rollbacks, rb)
			}
		}
		var from float64
		if s.Started != nil {
			from = s.Started.Sub(d.Run.Started).Seconds()
		}
		hs.Charts = charts(s, tl.Samples[s.Addr], from)
		out = append(out, hs)
	}
	return out
}

const (
	chartW, chartH = 420, 120
	chartX         = 70
)

// charts draws a step's recorded progress: throughput where the samples
// carry a rate, a replication's lag where they say how far behind it is.
func charts(s Step, samples []sample, from float64) []htmlChart {
	var rate, lag [][2]float64
	unit := ""
	for _, p := range samples {
		if p.Rate > 0 {
			rate = append(rate, [2]float64{p.At - from, p.Rate})
			unit = p.Unit
		}
		if s.Uses == "replicate" && p.Unit == "bytes" && p.Total > 0 {
			lag = append(lag, [2]float64{p.At - from, float64(max(p.Total-p.Done, 0))})
		}
	}
	amount := func(v float64, u string) string {
		if u == "bytes" {
			return bytesize.Format(int64(v))
		}
		return fmt.Sprintf("%.0f %s", v, u)
	}
	var out []htmlChart
	if len(rate) >= 2 {
		out = append(out, chart("Throughput ("+unit+" per second)", rate, func(v float64) string { return amount(v, unit) + "/s" }))
	}
	if len(lag) >= 2 {
		out = append(out, chart("Replication lag (bytes behind the source)", lag, func(v float64) string { return amount(v, "bytes") }))
	}
	return out
}

func chart(title string, pts [][2]float64, label func(float64) string) htmlChart {
	c := htmlChart{Title: title, W: chartW, H: chartH, PlotX: chartX, PlotW: chartW - chartX - 10, PlotH: chartH - 30}
	c.PlotBottom, c.PlotRight, c.LabelX, c.TextY = 10+c.PlotH, c.PlotX+c.PlotW, c.PlotX-4, 10+c.PlotH+16
	var xmax, ymax, sum float64
	for _, p := range pts {
		xmax, ymax = math.Max(xmax, p[0]), math.Max(ymax, p[1])
		sum += p[1]
	}
	if xmax <= 0 {
		xmax = 1
	}
	if ymax <= 0 {
		ymax = 1
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", float64(c.PlotX)+p[0]/xmax*float64(c.PlotW), 10+float64(c.PlotH)*(1-p[1]/ymax))
	}
	c.Points = b.String()
	c.YMax, c.XMax = label(ymax), "+"+FormatDuration(secs(xmax))
	c.Summary = fmt.Sprintf("%d samples over %s: peak %s, mean %s, last %s", len(pts), FormatDuration(secs(xmax)),
		label(ymax), label(sum/float64(len(pts))), label(pts[len(pts)-1][1]))
	return c
}
