package plan_test

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestFunctions(t *testing.T) {
	p, diags := loadSource(t, "plan.hcl", `
variable "token" {
  type      = string
  sensitive = true
  default   = "hunter2-very-secret"
  validation {
    condition     = length(var.token) >= 8
    error_message = "token must be at least 8 characters"
  }
}
locals {
  lengths = [length("héllo"), length(["a", "b"]), length({ a = 1, b = 2, c = 3 }), length(distinct(["x", "x"])), length([for i in range(4) : i])]
  env     = env("HOME")
}
step "s" {
  uses    = "exec"
  command = [for n in local.lengths : tostring(n)]
  env     = { HOME = local.env, LEN = tostring(length(var.token)) }
}
`, testTypes())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := args(p.Step("step.s"))
	if got := strs(t, a["command"]); len(got) != 5 || got[0] != "5" || got[1] != "2" || got[2] != "3" || got[3] != "1" || got[4] != "4" {
		t.Errorf("lengths = %q", got)
	}
	// no environment: env() is empty
	if got := elem(a["env"], "HOME"); !got.RawEquals(cty.StringVal("")) {
		t.Errorf("env(HOME) = %#v", got)
	}
	if !elem(a["env"], "LEN").RawEquals(cty.StringVal("19")) {
		t.Errorf("LEN = %#v", elem(a["env"], "LEN"))
	}
	_, diags = loadSource(t, "plan.hcl", `
step "s" {
  uses    = "exec"
  command = [tostring(length(true))]
}
`, testTypes())
	if !diags.HasErrors() || diags[0].Summary != "Invalid function argument" {
		t.Errorf("length(true): %v", diags)
	}
}

// TestLocalsReadLocals: each local is evaluated with only the locals it
// reads, in dependency order, whatever the order of declaration.
func TestLocalsReadLocals(t *testing.T) {
	p, diags := loadSource(t, "plan.hcl", `
locals {
  c    = "${local.b}-c"
  a    = "a"
  b    = "${local.a}-b"
  both = [local.a, local.c, local.c]
  keys = upper(local.b)
}
step "s" {
  uses    = "exec"
  command = concat(local.both, [local.keys])
}
`, testTypes())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := strs(t, args(p.Step("step.s"))["command"])
	want := []string{"a", "a-b-c", "a-b-c", "A-B"}
	if len(got) != len(want) {
		t.Fatalf("command = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("command[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}
