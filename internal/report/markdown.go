package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/plan"
)

// This file renders a run report (report.go) as Markdown.

var resultWords = map[string]string{
	string(event.StatusRolledBack): "rolled back",
	string(event.StatusNotRun):     "not run",
}

func resultWord(s string) string {
	if w, ok := resultWords[s]; ok {
		return w
	}
	return s
}

const reportTime = "2006-01-02 15:04:05 UTC"

// WriteMarkdown renders the report as Markdown.
func WriteMarkdown(w io.Writer, d *Doc) {
	fmt.Fprintf(w, "# Run report: %s\n\n", mdText(d.Plan.Name))
	if d.Plan.Description != "" {
		fmt.Fprintf(w, "%s\n\n", mdText(d.Plan.Description))
	}
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	row := func(k, v string) { fmt.Fprintf(w, "| %s | %s |\n", k, v) }
	row("Plan", fmt.Sprintf("%s (%s)", mdCode(d.Plan.Name), mdCell(d.Plan.Path)))
	row("Run", mdCode(d.Run.ID))
	row("Result", "**"+resultWord(d.Run.Result)+"**")
	if r := d.Run.RanBy; r != nil {
		row("Run by", mdCell(fmt.Sprintf("%s on %s, pid %d", r.User, r.Host, r.PID)))
	} else {
		row("Run by", "not recorded (a run record of an older planrun)")
	}
	row("Started", d.Run.Started.Format(reportTime))
	if d.Run.Finished != nil {
		row("Finished", fmt.Sprintf("%s (%s)", d.Run.Finished.Format(reportTime), FormatDuration(secs(*d.Run.Seconds))))
	} else {
		row("Finished", "-")
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
		row("Segments", mdCell(strings.Join(parts, "; ")))
	}
	if d.Downtime != nil {
		if d.Downtime.Seconds != nil {
			row("Downtime", fmt.Sprintf("**%s** (%s)", FormatDuration(secs(*d.Downtime.Seconds)), mdCell(d.Downtime.Note)))
		} else {
			row("Downtime", mdCell(d.Downtime.Note))
		}
	}
	hash := d.Run.PlanHash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	if len(d.Run.PlanChanged) > 0 {
		row("Plan hash", fmt.Sprintf("%s; the plan changed since: %s", mdCode(hash), mdCell(joinCut(d.Run.PlanChanged, 10))))
	} else {
		row("Plan hash", mdCode(hash))
	}
	if d.Run.Message != "" {
		row("Note", mdCell(d.Run.Message))
	}
	if d.Run.Error != "" {
		fmt.Fprintf(w, "\n**Error**\n\n%s", mdBlock(d.Run.Error))
	}

	fmt.Fprintln(w, "\n## Variables")
	fmt.Fprintln(w)
	if len(d.Variables.Values) == 0 {
		fmt.Fprintln(w, "The plan declares none.")
	} else {
		note := "The run record keeps no variable values: these are the values given to this report."
		switch {
		case d.Variables.Source == "recorded":
			note = "As the run recorded them when it started."
		case d.Variables.MatchesRun == nil:
		case *d.Variables.MatchesRun:
			note += " The steps' fingerprints match the run's, so its steps were given the same values."
		default:
			note += " The plan's steps differ from the run's (see Plan hash): the run may have used other values."
		}
		fmt.Fprintf(w, "%s\n\n| variable | value |\n|---|---|\n", note)
		for _, v := range d.Variables.Values {
			val := "(sensitive)"
			if !v.Sensitive {
				val = mdCode(hclValue(v.Value))
			}
			fmt.Fprintf(w, "| %s | %s |\n", mdCode(v.Name), val)
		}
	}

	fmt.Fprintln(w, "\n## Steps and checks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | step | type | status | attempts | started | duration | assertions | rollback |")
	fmt.Fprintln(w, "|--:|---|---|---|--:|--:|--:|---|---|")
	for i, s := range d.Steps {
		attempts, started, dur, rb := "-", "-", "-", "-"
		if s.Attempts > 0 {
			attempts = fmt.Sprint(s.Attempts)
		}
		if s.Started != nil {
			started = "+" + FormatDuration(s.Started.Sub(d.Run.Started))
		}
		if s.Seconds > 0 {
			dur = FormatDuration(secs(s.Seconds))
		}
		if s.Rollback != "" {
			rb = resultWord(s.Rollback)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", i+1, mdCode(s.Addr), mdCell(orDash(s.Uses)),
			statusCell(s.Status), attempts, started, dur, assertCell(s.Assertions), rb)
	}

	var details bytes.Buffer
	for _, s := range d.Steps {
		if len(s.Summary) == 0 && len(s.Failures) == 0 && s.Error == "" && len(s.History) < 2 {
			continue
		}
		fmt.Fprintf(&details, "\n### %s (%s): %s\n", mdCode(s.Addr), mdText(orDash(s.Uses)), resultWord(s.Status))
		if len(s.Summary) > 0 || len(s.Failures) > 0 {
			fmt.Fprintln(&details)
		}
		for _, f := range s.Summary {
			text := mdText(f.text)
			if f.Name == "output" {
				text = mdCode(f.text)
			}
			fmt.Fprintf(&details, "- %s: %s\n", f.Name, text) // names are identifiers: nothing to escape
		}
		for _, a := range s.Failures {
			verdict := "FAILED"
			if a.Severity == string(plan.SeverityWarn) {
				verdict = "WARNING"
			}
			fmt.Fprintf(&details, "- **%s** %s", verdict, mdCode(a.That))
			if msg := strings.TrimSpace(a.Message); msg != "" {
				fmt.Fprintf(&details, ": %s", mdText(msg))
			}
			fmt.Fprintln(&details)
			if a.Error != "" {
				fmt.Fprintf(&details, "  - could not evaluate: %s\n", mdText(a.Error))
			}
			for _, v := range a.Values {
				fmt.Fprintf(&details, "  - %s = %s\n", mdCode(v.Expr), mdCode(v.Value))
			}
		}
		if len(s.History) > 1 {
			fmt.Fprintf(&details, "\nAttempts:\n\n")
			for _, a := range s.History {
				fmt.Fprintf(&details, "- run segment %d, attempt %d: %s", a.Segment, a.Attempt, resultWord(a.Status))
				if a.Seconds > 0 {
					fmt.Fprintf(&details, " in %s", FormatDuration(secs(a.Seconds)))
				}
				if a.Error != "" {
					fmt.Fprintf(&details, ": %s", mdText(strings.SplitN(a.Error, "\n", 2)[0]))
				}
				fmt.Fprintln(&details)
			}
		}
		if s.Error != "" {
			fmt.Fprintf(&details, "\nError:\n\n%s", mdBlock(s.Error))
		}
	}
	if details.Len() > 0 {
		fmt.Fprintf(w, "\n## Details\n%s", details.String())
	}

	if len(d.Rollbacks) > 0 {
		fmt.Fprintln(w, "\n## Rollbacks")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "In the order they ran.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| step | type | status | duration | error |")
		fmt.Fprintln(w, "|---|---|---|--:|---|")
		for _, rb := range d.Rollbacks {
			dur := "-"
			if rb.Seconds > 0 {
				dur = FormatDuration(secs(rb.Seconds))
			}
			msg := rb.Error
			if msg == "" {
				msg = rb.Message
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", mdCode(rb.Step), mdCell(orDash(rb.Uses)), statusCell(rb.Status), dur, mdCell(orDash(msg)))
		}
	}
}

func statusCell(s string) string {
	switch event.Status(s) {
	case event.StatusFailed, event.StatusCancelled, event.StatusInterrupted:
		return "**" + resultWord(s) + "**"
	}
	return resultWord(s)
}

func assertCell(n AssertCounts) string {
	var parts []string
	if n.Passed > 0 {
		parts = append(parts, fmt.Sprintf("%d passed", n.Passed))
	}
	if n.Warned > 0 {
		parts = append(parts, fmt.Sprintf("%d warned", n.Warned))
	}
	if n.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", n.Failed))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// hclValue shows a JSON value as HCL would write it.
func hclValue(raw json.RawMessage) string {
	ty, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return string(raw)
	}
	v, err := ctyjson.Unmarshal(raw, ty)
	if err != nil {
		return string(raw)
	}
	return strings.Join(strings.Fields(string(hclwrite.TokensForValue(v).Bytes())), " ")
}

// mdText escapes text for a Markdown line.
func mdText(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;", "[", "\\[", "]", "\\]", "|", "\\|", "\r", "", "\n", " ")
	return r.Replace(s)
}

// mdCell escapes text for a table cell.
func mdCell(s string) string { return mdText(s) }

// mdCode renders s as inline code, whatever backticks it holds.
func mdCode(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ")
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	// A | ends a table cell even inside code.
	return fence + pad + strings.ReplaceAll(s, "|", "\\|") + pad + fence
}

// mdBlock renders s as a fenced code block.
func mdBlock(s string) string {
	fence := strings.Repeat("`", max(3, longestRun(s, '`')+1))
	return fence + "\n" + strings.TrimRight(s, "\n") + "\n" + fence + "\n"
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// FormatDuration shows a duration as the report and the CLI do: ms under
// a second, tenths under a minute, whole seconds above.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
