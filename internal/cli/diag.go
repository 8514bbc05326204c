package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/internal/redact"
)

// writeDiagnostics renders diagnostics Terraform-style, with file:line:col,
// the enclosing block, the source line and a caret under the problem.
func writeDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, secrets []string) {
	red := redact.New(secrets...)
	for _, d := range diags {
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
		io.WriteString(w, red.String(b.String()))
	}
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
