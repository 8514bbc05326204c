package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/internal/report"
	"github.com/planrun/planrun/plan"
)

// writePlan shows what apply would do: waves of steps that can run
// together, each with its arguments as known now, its assertions and its
// rollback. took, when given, holds each step's duration in a recorded
// rehearsal, and notes what its output said to expect. Everything it shows is redacted of the plan's secrets: a
// plain argument may carry one (command = ["echo", database.x.url]).
func writePlan(w io.Writer, p *plan.Plan, selected func(*plan.Step) bool, took map[string]time.Duration, notes map[string]string) {
	var b strings.Builder
	writePlanText(&b, p, selected, took, notes)
	_, _ = io.WriteString(w, redact.New(p.Secrets()...).String(b.String()))
}

func writePlanText(w io.Writer, p *plan.Plan, selected func(*plan.Step) bool, took map[string]time.Duration, notes map[string]string) {
	fmt.Fprintf(w, "Plan %q", p.Name)
	if p.Description != "" {
		fmt.Fprintf(w, ": %s", p.Description)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  on failure: %s\n", p.OnFailure)
	if p.Downtime != nil {
		fmt.Fprintf(w, "  downtime window: from the start of %s to the end of %s\n", p.Downtime.From, p.Downtime.To)
	}
	waves, _ := p.Graph.Waves()
	n := 0
	for _, wave := range waves {
		var shown []*plan.Step
		for _, addr := range wave {
			if st := p.Step(addr); selected == nil || selected(st) {
				shown = append(shown, st)
			}
		}
		if len(shown) == 0 {
			continue
		}
		n++
		fmt.Fprintf(w, "\nWave %d\n", n)
		for _, st := range shown {
			writeStep(w, p, st, took, notes)
		}
	}
	if len(took) > 0 && p.Downtime != nil {
		if d, ok := rehearsalDowntime(p, took); ok {
			fmt.Fprintf(w, "\nExpected downtime (from the rehearsal): %s\n", report.FormatDuration(d))
		}
	}
}

// rehearsalDowntime adds up the recorded durations of the steps in the
// downtime window along the plan's order (an upper bound when steps overlap).
func rehearsalDowntime(p *plan.Plan, took map[string]time.Duration) (time.Duration, bool) {
	waves, _ := p.Graph.Waves()
	var total time.Duration
	in := false
	for _, wave := range waves {
		var longest time.Duration
		hit := false
		for _, addr := range wave {
			if addr == p.Downtime.From {
				in = true
			}
			if in {
				longest = max(longest, took[addr])
			}
			if addr == p.Downtime.To {
				hit = true
			}
		}
		total += longest
		if hit && in {
			return total, true
		}
	}
	return 0, false
}

func writeStep(w io.Writer, p *plan.Plan, st *plan.Step, took map[string]time.Duration, notes map[string]string) {
	fmt.Fprintf(w, "  + %s (%s)", st.Addr, st.Uses)
	if d, ok := took[st.Addr]; ok {
		fmt.Fprintf(w, "  [rehearsal: %s]", report.FormatDuration(d))
	}
	fmt.Fprintln(w)
	if note := notes[st.Addr]; note != "" {
		fmt.Fprintf(w, "      rehearsal: %s\n", note)
	}
	if len(st.Deps) > 0 {
		fmt.Fprintf(w, "      after: %s\n", strings.Join(st.Deps, ", "))
	}
	if st.When != nil {
		fmt.Fprintf(w, "      when: %s", sourceText(p, st.When.Range()))
		if v := st.WhenPreview; v != cty.NilVal && v.IsWhollyKnown() && !plan.IsSensitive(v) && v.Type() == cty.Bool && !v.IsNull() {
			if v.True() {
				fmt.Fprint(w, " (true: runs)")
			} else {
				fmt.Fprint(w, " (false: skipped)")
			}
		}
		fmt.Fprintln(w)
	}
	if st.Timeout > 0 {
		fmt.Fprintf(w, "      timeout: %s\n", st.Timeout)
	}
	if st.Retry.Attempts > 1 {
		fmt.Fprintf(w, "      retry: %s, backoff %s\n", plural.Of(st.Retry.Attempts, "attempt"), st.Retry.Backoff)
	}
	writeArgs(w, st.Args, "      ")
	for _, as := range st.Asserts {
		sev := ""
		if as.Severity == plan.SeverityWarn {
			sev = " (warn)"
		}
		fmt.Fprintf(w, "      assert%s: %s\n", sev, as.That)
	}
	if rb := st.Rollback; rb != nil {
		fmt.Fprintf(w, "      rollback: %s\n", rb.Uses)
		writeArgs(w, rb.Args, "          ")
	}
}

func writeArgs(w io.Writer, args []plan.Arg, indent string) {
	width := 0
	for _, a := range args {
		width = max(width, len(a.Name))
	}
	for _, a := range args {
		val := showValue(a.Value, indent+strings.Repeat(" ", width+3))
		if a.Ref != "" {
			val = a.Ref
			if where := databaseWhere(a.Value); where != "" {
				val += " (" + where + ")" // so that whoever types yes knows where it goes
			}
		}
		fmt.Fprintf(w, "%s%-*s = %s\n", indent, width, a.Name, val)
	}
}

// databaseWhere names the server a database argument leads to —
// user@host:port/dbname, never the password — or "" while its URL is not
// known.
func databaseWhere(v cty.Value) string {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() || !v.Type().HasAttribute("url") {
		return ""
	}
	u := v.GetAttr("url")
	if u.IsNull() || !u.IsKnown() || u.Type() != cty.String {
		return ""
	}
	return pgkit.Where(u.AsString())
}

// showValue renders a value as HCL, or says why it cannot be shown. A
// collection with some sensitive elements shows the others.
func showValue(v cty.Value, indent string) string {
	switch {
	case v.IsMarked():
		return "(sensitive)"
	case v.ContainsMarked() && v.IsKnown() && !v.IsNull() && v.CanIterateElements():
		return showCollection(v, indent)
	case !v.IsWhollyKnown():
		return "(known after apply)"
	case v.IsNull():
		return "null"
	case v.Type() == cty.String && strings.Contains(v.AsString(), "\n"):
		lines := strings.Split(strings.TrimRight(v.AsString(), "\n"), "\n")
		return "<<EOT\n" + indent + "  " + strings.Join(lines, "\n"+indent+"  ") + "\n" + indent + "EOT"
	}
	out := strings.TrimSpace(string(hclwrite.Format(hclwrite.TokensForValue(v).Bytes())))
	return strings.ReplaceAll(out, "\n", "\n"+indent)
}

func showCollection(v cty.Value, indent string) string {
	ty := v.Type()
	var b strings.Builder
	if ty.IsObjectType() || ty.IsMapType() {
		b.WriteString("{\n")
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			key := k.AsString()
			if !hclsyntax.ValidIdentifier(key) {
				key = fmt.Sprintf("%q", key)
			}
			fmt.Fprintf(&b, "%s  %s = %s\n", indent, key, showValue(e, indent+"  "))
		}
		b.WriteString(indent + "}")
		return b.String()
	}
	b.WriteString("[")
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(showValue(e, indent))
	}
	b.WriteString("]")
	return b.String()
}

func sourceText(p *plan.Plan, rng hcl.Range) string {
	f := p.Files[rng.Filename]
	if f == nil || rng.End.Byte > len(f.Bytes) || rng.Start.Byte > rng.End.Byte {
		return "(expression)"
	}
	return string(f.Bytes[rng.Start.Byte:rng.End.Byte])
}
