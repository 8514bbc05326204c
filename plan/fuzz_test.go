package plan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/plan"
)

// seedFiles adds every testdata plan with one of the extensions to f.
func seedFiles(f *testing.F, exts ...string) {
	f.Helper()
	for _, dir := range []string{"valid", "invalid"} {
		for _, ext := range exts {
			files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
			if err != nil {
				f.Fatal(err)
			}
			for _, name := range files {
				src, err := os.ReadFile(name)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(src)
			}
		}
	}
}

// loadTimeout bounds one Load: the fuzzer reports no hang by itself.
const loadTimeout = 10 * time.Second

// loadFuzzed loads src as the plan file name and checks what must hold
// whatever the input: no panic (the fuzzer catches it), and either a plan
// with its graph or errors, every one inside the file it names.
func loadFuzzed(t *testing.T, name string, src []byte) (*plan.Plan, hcl.Diagnostics) {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	var p *plan.Plan
	var diags hcl.Diagnostics
	done := make(chan struct{})
	go func() {
		defer close(done)
		p, diags = plan.Load(path, plan.Options{Types: testTypes(), Environ: []string{}})
	}()
	start := time.Now()
	select {
	case <-done:
		// How fast is the benchmarks' business: a bound here would flake
		// on a loaded machine. Only a load that never ends fails.
		t.Logf("Load took %v", time.Since(start))
	case <-time.After(loadTimeout):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("Load took more than %v:\n%s", loadTimeout, buf)
	}
	if !diags.HasErrors() {
		if p == nil || p.Graph == nil {
			t.Fatalf("no errors, but no plan or graph")
		}
		if _, err := p.Graph.Waves(); err != nil {
			t.Fatalf("no errors, but %v", err)
		}
	}
	for _, d := range diags {
		if d.Summary == "" {
			t.Errorf("diagnostic without summary: %#v", d)
		}
		if d.Subject == nil || d.Subject.Filename != path {
			continue
		}
		if s := d.Subject; s.Start.Byte < 0 || s.End.Byte > len(src) || s.Start.Byte > s.End.Byte || s.Start.Line < 1 || s.Start.Column < 1 {
			t.Errorf("range %s (bytes %d-%d) outside the file of %d bytes: %s: %s", s, s.Start.Byte, s.End.Byte, len(src), d.Summary, d.Detail)
		}
	}
	return p, diags
}

func FuzzLoadHCL(f *testing.F) {
	seedFiles(f, ".hcl")
	f.Add([]byte(`step "a" {
  uses = "exec"
  command = ["echo", "${step.a.output.stdout}"]
  assert { that = "steps.a.stdout != \"\"" }
}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		loadFuzzed(t, "plan.hcl", src)
	})
}

func FuzzLoadYAML(f *testing.F) {
	seedFiles(f, ".yaml", ".yml")
	f.Add([]byte("steps:\n  a:\n    uses: exec\n    command: [echo, \"${step.a.output.stdout}\"]\n    depends_on: [step.a]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("locals:\n  base: &x [pg_dump, -Fd]\n  argv: *x\nsteps:\n  a: &s\n    uses: exec\n    command: *x\n  b: *s\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		loadFuzzed(t, "plan.yaml", src)
	})
}

// hclString writes s as an HCL quoted string that decodes to s.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	rs := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	for i, r := range rs {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == '$' || r == '%') && i+1 < len(rs) && rs[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func FuzzAssertion(f *testing.F) {
	seeds := [][2]string{
		{`output.exit_code == 0`, ``},
		{`all(output.tables, {.rows > 0}) && output.total > 0`, `empty: {{ filter(output.tables, {.rows == 0}) }}`},
		{`output.tables[0].name != "" && steps.prep.stdout matches "^ok"`, `{{ output.tables[0] }} and {{ steps.prep.exit_code }}`},
		{`var.min <= output.total`, `{{ '}}' }} {{ var.min`},
		{`output.exit_code == 0 &&& output.stderr == ''`, `{{ output.exit_code: {{ output.stderr }}`},
		{`len(output.stdout)`, `{{}}`},
		{`steps.nope.x > 0 || checks.counts.total > 0`, `{{ output.nope }}`},
		{"output.x\n&& é", "{{ \"\\\"}}\" }}"},
		{`{"a": {"b": 1}}.a.b == 1`, `{{ {"a": {"b": 1}} }}`},
		{`all(output.tables, {any(output.tables, {#.name == .nme})}) && find(output.tables, {.rows > 0}).rws > 0`, `{{ map(output.tables, {#index}) | sortBy(#) }}`},
		{`output.tables | reduce(#acc + .rows, 0) > first(output.tables).rows`, `{{ groupBy(output.tables, {.name})['x'][0].rows }}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, that, message string) {
		src := fmt.Sprintf(`variable "min" { default = 1 }
step "prep" {
  uses    = "exec"
  command = ["true"]
}
check "counts" {
  uses     = "row_counts"
  database = database.db
  assert {
    that    = %s
    message = %s
  }
}
database "db" { url = "postgres://db.example.com/app" }
`, hclString(that), hclString(message))
		p, diags := loadFuzzed(t, "plan.hcl", []byte(src))
		if diags.HasErrors() {
			return
		}
		as := p.Step("check.counts").Asserts
		if len(as) != 1 || as[0].Program == nil || as[0].That != strings.ToValidUTF8(that, "\uFFFD") {
			t.Fatalf("assertions = %+v", as)
		}
		for _, r := range as[0].Reads {
			if r.Program == nil {
				t.Errorf("read %q without a program", r.Expr)
			}
		}
	})
}
