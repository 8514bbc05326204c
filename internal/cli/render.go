package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/planrun/planrun/internal/bytesize"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
)

// jsonRenderer prints one JSON event per line (for CI).
func jsonRenderer(w io.Writer) func(event.Event) {
	enc := json.NewEncoder(w)
	return func(ev event.Event) {
		_ = enc.Encode(ev) // a closed stdout is not worth failing the run for
	}
}

// textRenderer prints events as they happen, one or a few lines each. verb
// says what the run does ("Applying", "Checking"). Progress is redrawn in
// place on a terminal, and printed every few seconds otherwise.
func textRenderer(w io.Writer, verb string) func(event.Event) {
	pv := &progressView{w: w, live: isTerminalWriter(w), last: map[string]time.Time{}}
	return func(ev event.Event) {
		if ev.Type == event.StepProgress {
			pv.show(ev)
			return
		}
		pv.clear()
		switch ev.Type {
		case event.RunStarted:
			what := plural.Of(len(ev.Steps), "step")
			if verb == "Checking" {
				what = plural.Of(len(ev.Steps), "check")
			}
			fmt.Fprintf(w, "%s plan %q (%s)\n\n", verb, ev.Plan, what)
		case event.StepStarted:
			fmt.Fprintf(w, "%s: running (%s)\n", ev.Step, ev.Uses)
		case event.StepLog:
			fmt.Fprintf(w, "%s: %s\n", ev.Step, ev.Message)
		case event.StepRetrying:
			fmt.Fprintf(w, "%s: %s: %s\n", ev.Step, ev.Message, ev.Error)
		case event.StepFinished:
			switch ev.Status {
			case event.StatusSucceeded:
				fmt.Fprintf(w, "%s: succeeded in %s\n", ev.Step, report.FormatDuration(secs(ev.Seconds)))
			case event.StatusSkipped:
				fmt.Fprintf(w, "%s: %s\n", ev.Step, ev.Message)
			case event.StatusReused:
				fmt.Fprintf(w, "%s: reused (%s)\n", ev.Step, ev.Message)
			default:
				fmt.Fprintf(w, "%s: %s after %s\n", ev.Step, ev.Status, report.FormatDuration(secs(ev.Seconds)))
			}
			writeAssertions(w, ev.Assertions)
			if ev.Error != "" {
				var ae bool
				for _, a := range ev.Assertions {
					if !a.Passed && a.Severity == string(plan.SeverityError) {
						ae = true
					}
				}
				if !ae {
					fmt.Fprintf(w, "    error: %s\n", indentLines(ev.Error, "    "))
				}
			}
		case event.RollbackStarted:
			fmt.Fprintf(w, "%s: rolling back (%s)\n", ev.Step, ev.Uses)
		case event.RollbackFinished:
			switch ev.Status {
			case event.StatusRolledBack:
				fmt.Fprintf(w, "%s: rolled back in %s\n", ev.Step, report.FormatDuration(secs(ev.Seconds)))
			default:
				fmt.Fprintf(w, "%s: rollback %s", ev.Step, ev.Status)
				if ev.Error != "" {
					fmt.Fprintf(w, ": %s", indentLines(ev.Error, "    "))
				} else if ev.Message != "" {
					fmt.Fprintf(w, ": %s", ev.Message)
				}
				fmt.Fprintln(w)
			}
			writeAssertions(w, ev.Assertions)
		}
	}
}

func writeAssertions(w io.Writer, asserts []event.AssertResult) {
	for _, a := range asserts {
		switch {
		case a.Passed:
			fmt.Fprintf(w, "    ok    %s\n", a.That)
		case a.Severity == string(plan.SeverityWarn):
			fmt.Fprintf(w, "    WARN  %s\n", a.That)
		default:
			fmt.Fprintf(w, "    FAIL  %s\n", a.That)
		}
		if a.Passed {
			continue
		}
		if a.Message != "" {
			fmt.Fprintf(w, "          %s\n", indentLines(a.Message, "          "))
		}
		if a.Error != "" {
			fmt.Fprintf(w, "          could not evaluate: %s\n", a.Error)
		}
		for _, v := range a.Values {
			fmt.Fprintf(w, "          %s = %s\n", v.Expr, v.Value)
		}
	}
}

func indentLines(s, indent string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// writeSummary prints the table at the end of a run.
func writeSummary(w io.Writer, p *plan.Plan, res *engine.Result, sel func(*plan.Step) bool) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tTYPE\tSTATUS\tATTEMPTS\tDURATION\tASSERTIONS\tROLLBACK")
	for _, st := range p.Steps {
		if sel != nil && !sel(st) {
			continue
		}
		sr := res.Steps[st.Addr]
		dur := "-"
		if d := sr.Duration(); d > 0 {
			dur = report.FormatDuration(d)
		}
		asserts := "-"
		if len(sr.Assertions) > 0 {
			passed, warned := 0, 0
			for _, a := range sr.Assertions {
				if a.Passed {
					passed++
				} else if a.Severity == string(plan.SeverityWarn) {
					warned++
				}
			}
			asserts = fmt.Sprintf("%d/%d passed", passed, len(sr.Assertions))
			if warned > 0 {
				asserts += fmt.Sprintf(", %d warned", warned)
			}
		}
		rb := "-"
		if sr.Rollback != nil {
			rb = string(sr.Rollback.Status)
		}
		attempts := "-"
		if sr.Attempts > 0 {
			attempts = fmt.Sprint(sr.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Addr, st.Uses, sr.Status, attempts, dur, asserts, rb)
	}
	tw.Flush()
	if p.Downtime != nil {
		switch {
		case res.Downtime != nil:
			fmt.Fprintf(w, "\nDowntime (start of %s to end of %s): %s\n", p.Downtime.From, res.DowntimeEnd, report.FormatDuration(*res.Downtime))
		case res.DowntimeOpen:
			fmt.Fprintf(w, "\nDowntime: not closed: %s started, but neither %s nor the rollback of %s completed; the window may still be open\n", p.Downtime.From, p.Downtime.To, p.Downtime.From)
		default:
			fmt.Fprintf(w, "\nDowntime: not measured (%s or %s did not run)\n", p.Downtime.From, p.Downtime.To)
		}
	}
	if res.RollbackInterrupted {
		fmt.Fprintln(w, "\nRollbacks were interrupted: some hooks did not run. Check the state of the systems, then run 'planrun rollback'.")
	}
}

// progressView draws step progress: one line redrawn in place on a
// terminal, or a plain line at most every plainEvery otherwise (CI logs).
type progressView struct {
	w     io.Writer
	live  bool
	shown bool
	last  map[string]time.Time
}

const plainEvery = 10 * time.Second

func (v *progressView) show(ev event.Event) {
	line := progressLine(ev)
	if v.live {
		fmt.Fprintf(v.w, "\r\033[K%s", line)
		v.shown = true
		return
	}
	if time.Since(v.last[ev.Step]) < plainEvery {
		return
	}
	v.last[ev.Step] = time.Now()
	fmt.Fprintln(v.w, line)
}

func (v *progressView) clear() {
	if v.shown {
		fmt.Fprint(v.w, "\r\033[K")
		v.shown = false
	}
}

func progressLine(ev event.Event) string {
	p := ev.Progress
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", ev.Step)
	if p.Message != "" {
		fmt.Fprintf(&b, " %s", p.Message)
	}
	// Units come plural ("tables"); a count of one takes the singular.
	amount := func(n int64) string {
		if p.Unit == "bytes" {
			return bytesize.Format(n)
		}
		return fmt.Sprintf("%d %s", n, plural.Choose(n, strings.TrimSuffix(p.Unit, "s"), p.Unit))
	}
	if p.Total > 0 && p.Unit != "bytes" {
		fmt.Fprintf(&b, " %d of %s (%.0f%%)", p.Done, amount(p.Total), 100*float64(p.Done)/float64(p.Total))
	} else {
		fmt.Fprintf(&b, " %s", amount(p.Done))
		if p.Total > 0 {
			fmt.Fprintf(&b, " of %s (%.0f%%)", amount(p.Total), 100*float64(p.Done)/float64(p.Total))
		}
	}
	if p.Rate > 0 {
		fmt.Fprintf(&b, " at %s/s", amount(int64(p.Rate)))
	}
	if p.ETA > 0 {
		fmt.Fprintf(&b, ", ETA %s", report.FormatDuration(secs(p.ETA)))
	}
	for i, it := range p.Items {
		if i == 3 {
			fmt.Fprintf(&b, " +%d more", len(p.Items)-3)
			break
		}
		sep := ","
		if i == 0 {
			sep = " —"
		}
		fmt.Fprintf(&b, "%s %s", sep, it.Name)
		if it.Total > 0 {
			fmt.Fprintf(&b, " %.0f%%", 100*float64(it.Done)/float64(it.Total))
		}
	}
	return b.String()
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
