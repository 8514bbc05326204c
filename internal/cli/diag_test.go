package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// A diagnostic quoting input with control characters (a terminal escape,
// a bell) shows them as escapes.
func TestDiagnosticsShowNoControlCharacters(t *testing.T) {
	var b bytes.Buffer
	writeDiagnostics(&b, nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Bad name", Detail: "step \"a\x1b[2Jb\x07\u009b\" is\tnot\nvalid"}}, nil)
	got := b.String()
	if strings.ContainsAny(got, "\x1b\x07\u009b") || !strings.Contains(got, `a\x1b[2Jb\x07\x9b`) || !strings.Contains(got, "is\tnot\nvalid") {
		t.Fatalf("%q", got)
	}
}
