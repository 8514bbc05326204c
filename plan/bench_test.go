package plan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planrun/planrun/plan"
)

// bigPlan writes a plan of n steps: chains of 50 whose steps read the
// previous one's output, each chain starting with a fan-in step that
// depends on the last ten steps before it; an assertion on each step, a few
// variables and locals.
func bigPlan(n int) string {
	var b strings.Builder
	b.WriteString(`plan "big" {
  on_failure = "rollback"
}

variable "app" {
  type    = string
  default = "acme-prod"
}

variable "jobs" {
  type    = number
  default = 8
  validation {
    condition     = var.jobs >= 1
    error_message = "jobs must be at least 1."
  }
}

variable "token" {
  type      = string
  sensitive = true
  default   = "tok-123"
}

locals {
  work = "${path.plan}/work"
  dump = "${local.work}/${var.app}.dump"
  env  = { APP = var.app, JOBS = tostring(var.jobs) }
}

database "src" {
  url = "postgres://app:pw@src.example.com/app"
}
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\nstep \"s%d\" {\n  uses = \"exec\"\n", i)
		switch {
		case i == 0:
			b.WriteString("  command = [\"pg_dump\", \"-f\", local.dump, database.src.url]\n")
		case i%50 == 0:
			var deps []string
			for j := i - 10; j < i; j++ {
				deps = append(deps, fmt.Sprintf("step.s%d", j))
			}
			fmt.Fprintf(&b, "  command    = [\"true\"]\n  depends_on = [%s]\n", strings.Join(deps, ", "))
		default:
			fmt.Fprintf(&b, "  shell = \"echo ${step.s%d.output.stdout} ${var.token}\"\n  env   = local.env\n", i-1)
		}
		fmt.Fprintf(&b, "  timeout = \"5m\"\n  assert {\n    that    = \"output.exit_code == 0 && len(output.stdout) >= 0\"\n    message = \"s%d failed: {{ output.stderr }}\"\n  }\n}\n", i)
	}
	return b.String()
}

func BenchmarkValidate2000Steps(b *testing.B) {
	const n = 2000
	path := filepath.Join(b.TempDir(), "big.hcl")
	if err := os.WriteFile(path, []byte(bigPlan(n)), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := plan.Options{Types: testTypes(), Environ: []string{}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, diags := plan.Load(path, opts)
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if len(p.Steps) != n {
			b.Fatalf("%d steps", len(p.Steps))
		}
	}
}

// TestBigPlan keeps the benchmark's plan valid and checks its shape.
func TestBigPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.hcl")
	if err := os.WriteFile(path, []byte(bigPlan(120)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := plan.Load(path, plan.Options{Types: testTypes(), Environ: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := p.Step("step.s51").Deps; len(got) != 1 || got[0] != "step.s50" {
		t.Errorf("s51 deps = %v", got)
	}
	if got := p.Step("step.s100").Deps; len(got) != 10 || got[0] != "step.s90" {
		t.Errorf("s100 deps = %v", got)
	}
	waves, err := p.Graph.Waves()
	if err != nil || len(waves) != 120 {
		t.Errorf("%d waves, %v", len(waves), err)
	}
}

// localsPlan writes a plan of n locals (`lN = "vN"`) and one step that
// reads the last.
func localsPlan(n int) string {
	var b strings.Builder
	b.WriteString("locals {\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  l%d = \"v%d\"\n", i, i)
	}
	fmt.Fprintf(&b, "}\n\nstep \"one\" {\n  uses  = \"exec\"\n  shell = \"echo ${local.l%d}\"\n}\n", n-1)
	return b.String()
}

// BenchmarkValidateLocals shows how loading grows with the number of
// locals: it must stay linear.
func BenchmarkValidateLocals(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "locals.hcl")
			if err := os.WriteFile(path, []byte(localsPlan(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			opts := plan.Options{Types: testTypes(), Environ: []string{}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, diags := plan.Load(path, opts)
				if diags.HasErrors() {
					b.Fatal(diags)
				}
				if len(p.Locals) != n {
					b.Fatalf("%d locals", len(p.Locals))
				}
			}
		})
	}
}
