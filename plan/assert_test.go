package plan_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/steptype"
)

type noArgs struct{}

type pairsOutput struct {
	Tables []struct {
		A int `json:"a"`
		B int `json:"b"`
	} `json:"tables"`
}

type dumpOutput struct {
	Bytes int64  `json:"bytes"`
	Path  string `json:"path"`
}

func fail[A, O any](context.Context, *steptype.Env, *A) (*O, error) {
	return nil, errors.New("a test fake")
}

// assertTypes are two small fakes: "pairs" (read-only, a list of tables)
// and "fake_dump" (bytes and path).
func assertTypes() *steps.Registry {
	return steps.New(map[string]steptype.Type{
		"pairs":     steptype.Def[noArgs, pairsOutput]{IsReadOnly: true, Fn: fail[noArgs, pairsOutput]},
		"fake_dump": steptype.Def[noArgs, dumpOutput]{Fn: fail[noArgs, dumpOutput]},
	})
}

func loadSource(t *testing.T, name, src string, types plan.Types) (*plan.Plan, hcl.Diagnostics) {
	t.Helper()
	dir := writePlan(t, map[string]string{name: src})
	return plan.Load(filepath.Join(dir, name), plan.Options{Types: types, Environ: []string{}})
}

func TestAssertionReadsAndEdges(t *testing.T) {
	for _, tt := range []struct{ name, src string }{
		{"plan.hcl", `
step "dump" { uses = "fake_dump" }
check "same" {
  uses = "pairs"
  assert {
    that = "all(output.tables, {.a == .b}) && steps.dump.bytes > 0"
  }
}
`},
		{"plan.yaml", `
steps:
  dump: { uses: fake_dump }
checks:
  same:
    uses: pairs
    assert:
      - that: "all(output.tables, {.a == .b}) && steps.dump.bytes > 0"
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := loadSource(t, tt.name, tt.src, assertTypes())
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			st := p.Step("check.same")
			if got := readExprs(st.Asserts[0]); !reflect.DeepEqual(got, []string{"output.tables", "steps.dump.bytes"}) {
				t.Errorf("Reads = %q", got)
			}
			if !reflect.DeepEqual(st.Deps, []string{"step.dump"}) || !reflect.DeepEqual(p.Graph.Deps("check.same"), []string{"step.dump"}) {
				t.Errorf("deps = %v, graph %v; want the edge to step.dump", st.Deps, p.Graph.Deps("check.same"))
			}
			if !reflect.DeepEqual(p.Graph.Users("step.dump"), []string{"check.same"}) {
				t.Errorf("users of step.dump = %v", p.Graph.Users("step.dump"))
			}
		})
	}
}

// TestAssertionColumns checks that a problem inside an assertion or a
// message is underlined where it is, through quotes and escapes.
func TestAssertionColumns(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the text the diagnostic's range covers
		summary   string
		desc      string
	}{
		{"plan.hcl", "step \"s\" {\n  uses = \"fake_dump\"\n  assert { that = \"output.path == \\\"a\\\" && output.nope\" }\n}\n", "output.nope", "Unsupported attribute", "hcl escaped quotes"},
		{"plan.hcl", "step \"s\" {\n  uses = \"fake_dump\"\n  assert { that = \"output.path == \\\"é\\\" &&& true\" }\n}\n", "&", "Invalid assertion", "hcl non-ascii"},
		{"plan.hcl", "step \"s\" {\n  uses = \"fake_dump\"\n  assert {\n    that = <<-EOT\n      output.bytes > 0 &&\n      output.nope\n    EOT\n  }\n}\n", "output.nope", "Unsupported attribute", "hcl indented heredoc"},
		{"plan.hcl", "step \"s\" {\n  uses = \"fake_dump\"\n  assert {\n    that    = \"true\"\n    message = \"\\\"{{ output.path }}\\\" {{ steps.nope.x }}\"\n  }\n}\n", "steps.nope", "Reference to undeclared step", "hcl message after escapes"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: \"output.path == \\\"a\\\" && output.nope\"\n", "output.nope", "Unsupported attribute", "yaml double quoted escapes"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: 'output.path == ''a'' && output.nope'\n", "output.nope", "Unsupported attribute", "yaml single quoted"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: output.path == 'é' && output.nope\n", "output.nope", "Unsupported attribute", "yaml plain non-ascii"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: |\n          output.bytes > 0 &&\n            output.nope\n", "output.nope", "Unsupported attribute", "yaml literal block"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: >\n          output.bytes > 0 &&\n          output.nope\n", "output.nope", "Unsupported attribute", "yaml folded block"},
		{"plan.yaml", "steps:\n  s:\n    uses: fake_dump\n    assert:\n      - that: output.bytes > 0\n        message: \"size {{ output.bytes }} at {{ var.nope }}\"\n", "var.nope", "Reference to undeclared input variable", "yaml message"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p, diags := loadSource(t, tt.name, tt.src, assertTypes())
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			d := diags[0]
			if d.Summary != tt.summary || d.Subject == nil {
				t.Fatalf("diagnostic = %s", formatDiag(d))
			}
			var src []byte
			for _, f := range p.Files {
				src = f.Bytes
			}
			checkPos(t, src, *d.Subject)
			if got := string(src[d.Subject.Start.Byte:d.Subject.End.Byte]); got != tt.want {
				t.Errorf("the range covers %q, want %q (%s)", got, tt.want, formatDiag(d))
			}
		})
	}
}

func TestAssertionMessageParts(t *testing.T) {
	p, diags := loadSource(t, "plan.hcl", `
step "s" {
  uses = "fake_dump"
  assert {
    that    = "output.bytes > 0"
    message = "{{ output.bytes }} bytes in {{ output.path }}, no {{ '}}' }}"
  }
}
`, assertTypes())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for i, m := range p.Step("step.s").Asserts[0].Msg {
		got = append(got, m.Text)
		if isExpr := i%2 == 0; isExpr != (m.Program != nil) {
			t.Errorf("part %q: program %v", m.Text, m.Program != nil)
		}
	}
	// "}}" inside a string literal does not close the expression.
	want := []string{" output.bytes ", " bytes in ", " output.path ", ", no ", " '}}' "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parts = %q, want %q", got, want)
	}
}
