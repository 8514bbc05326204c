package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/internal/redact"
)

// writeDiagnostics renders diagnostics Terraform-style, with file:line:col,
// the enclosing block, the source line and a caret under the problem.
func writeDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, secrets []string) {
	red := redact.New(secrets...)
	for i, d := range diags {
		if i == maxDiagnostics {
			fmt.Fprintf(w, "... and %d more (the first %d are shown)\n", len(diags)-i, maxDiagnostics)
			return
		}
		var b bytes.Buffer
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		fmt.Fprintf(&b, "%s: %s\n", sev, d.Summary)
		if d.Subject != nil {
			rng := *d.Subject
			fmt.Fprintf(&b, "\n  on %s:%d:%d", rng.Filename, rng.Start.Line, rng.Start.Column)
			f := files[rng.Filename]
			if f != nil {
				if nav, ok := f.Nav.(interface{ ContextString(int) string }); ok {
					if ctx := nav.ContextString(rng.Start.Byte); ctx != "" {
						fmt.Fprintf(&b, ", in %s", ctx)
					}
				}
			}
			b.WriteString(":\n")
			if f != nil {
				writeSnippet(&b, f.Bytes, rng)
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(&b, "\n%s\n", d.Detail)
		}
		b.WriteString("\n")
		io.WriteString(w, visible(red.String(b.String())))
	}
}

// maxDiagnostics is how many diagnostics are shown: past a few dozen they
// are one mistake repeated, or a file that is not a plan at all.
const maxDiagnostics = 30

// visible writes control characters from the input (a terminal escape in a
// plan) as escapes, so that they never reach the terminal as themselves.
func visible(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, strings.NewReplacer(controlEscapes()...).Replace(s))
}

// controlEscapes pairs each control character (line breaks and tabs aside)
// with its \xNN escape.
func controlEscapes() []string {
	var pairs []string
	for r := rune(0); r < 0xa0; r++ {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			pairs = append(pairs, string(r), fmt.Sprintf("\\x%02x", r))
		}
	}
	return pairs
}

func writeSnippet(b *bytes.Buffer, src []byte, rng hcl.Range) {
	lines := strings.Split(string(src), "\n")
	if rng.Start.Line < 1 || rng.Start.Line > len(lines) {
		return
	}
	line := strings.TrimRight(lines[rng.Start.Line-1], "\r")
	prefix := fmt.Sprintf("  %d: ", rng.Start.Line)
	fmt.Fprintf(b, "%s%s\n", prefix, line)
	startCol := rng.Start.Column
	endCol := len([]rune(line)) + 1
	if rng.End.Line == rng.Start.Line && rng.End.Column > startCol {
		endCol = rng.End.Column
	}
	if startCol < 1 {
		startCol = 1
	}
	width := endCol - startCol
	if width < 1 {
		width = 1
	}
	// Keep tabs as tabs so that the caret lines up under them.
	var pad strings.Builder
	for i, r := range []rune(line) {
		if i >= startCol-1 {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	fmt.Fprintf(b, "%s%s%s\n", strings.Repeat(" ", len(prefix)), pad.String(), strings.Repeat("^", width))
}
