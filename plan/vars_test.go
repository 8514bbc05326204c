package plan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/plan"
)

// writePlan writes files into a new directory and returns its path.
func writePlan(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const precedencePlan = `
variable "a" { default = "default" }
variable "b" { default = "default" }
variable "c" { default = "default" }
variable "d" { default = "default" }
variable "e" { default = "default" }
variable "f" { default = "default" }
variable "n" {
  type    = number
  default = 1
}
step "s" {
  uses    = "exec"
  command = [var.a, var.b, var.c, var.d, var.e, var.f, tostring(var.n)]
}
`

// TestVariablePrecedence: default < PLANRUN_VAR_ < -var-file (in order) < -var.
func TestVariablePrecedence(t *testing.T) {
	dir := writePlan(t, map[string]string{
		"plan.hcl": precedencePlan,
		"one.hcl":  "c = \"hcl file\"\nd = \"hcl file\"\ne = \"hcl file\"\n",
		"two.json": `{"d": "json file", "e": "json file", "n": 7}`,
		"three.yaml": "e: yaml file\n" +
			"f: yaml file\n",
	})
	p, diags := plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types:    testTypes(),
		Environ:  []string{"PLANRUN_VAR_b=env", "PLANRUN_VAR_c=env", "PLANRUN_VAR_n=3", "PLANRUN_VAR_unknown=ignored", "b=not a plan variable"},
		VarFiles: []string{filepath.Join(dir, "one.hcl"), filepath.Join(dir, "two.json"), filepath.Join(dir, "three.yaml")},
		Vars:     []string{"f=flag", "f=last flag wins"},
	})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := map[string]cty.Value{
		"a": cty.StringVal("default"),
		"b": cty.StringVal("env"),
		"c": cty.StringVal("hcl file"),
		"d": cty.StringVal("json file"),
		"e": cty.StringVal("yaml file"),
		"f": cty.StringVal("last flag wins"),
		"n": cty.NumberIntVal(7),
	}
	for name, w := range want {
		if got := p.VarValues()[name]; !got.RawEquals(w) {
			t.Errorf("var.%s = %#v, want %#v", name, got, w)
		}
	}
	// -var and PLANRUN_VAR_ values are parsed per the type.
	p, diags = plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{"PLANRUN_VAR_n=3"},
	})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := p.VarValues()["n"]; !got.RawEquals(cty.NumberIntVal(3)) {
		t.Errorf("n from the environment = %#v", got)
	}
	_, diags = plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{}, Vars: []string{"n=three"},
	})
	if !diags.HasErrors() || diags[0].Summary != "Invalid value for variable" || !strings.Contains(diags[0].Detail, "-var n") {
		t.Errorf("-var n=three: %v", diags)
	}
}

func TestVarFileUndeclaredIsAWarning(t *testing.T) {
	dir := writePlan(t, map[string]string{
		"plan.hcl":  precedencePlan,
		"vars.yaml": "a: from yaml\nzz: nobody\n",
	})
	p, diags := plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{}, VarFiles: []string{filepath.Join(dir, "vars.yaml")},
	})
	if diags.HasErrors() || len(diags) != 1 {
		t.Fatalf("diags = %v", diags)
	}
	d := diags[0]
	if d.Severity != hcl.DiagWarning || d.Subject == nil || d.Subject.Start.Line != 2 || !strings.HasSuffix(d.Subject.Filename, "vars.yaml") {
		t.Errorf("warning = %s at %v", formatDiag(d), d.Subject)
	}
	if got := p.VarValues()["a"]; !got.RawEquals(cty.StringVal("from yaml")) {
		t.Errorf("a = %#v", got)
	}
}

func TestVarFileErrorsPointIntoTheFile(t *testing.T) {
	dir := writePlan(t, map[string]string{
		"plan.hcl":  precedencePlan,
		"bad.json":  `{"n": "many"}`,
		"typo.yaml": "a: [unclosed\n",
	})
	_, diags := plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{}, VarFiles: []string{filepath.Join(dir, "bad.json")},
	})
	if !diags.HasErrors() || diags[0].Subject == nil || !strings.HasSuffix(diags[0].Subject.Filename, "bad.json") {
		t.Errorf("bad.json: %v", diags)
	}
	_, diags = plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{}, VarFiles: []string{filepath.Join(dir, "typo.yaml")},
	})
	if !diags.HasErrors() || diags[0].Summary != "Invalid YAML" {
		t.Errorf("typo.yaml: %v", diags)
	}
	_, diags = plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{
		Types: testTypes(), Environ: []string{}, VarFiles: []string{filepath.Join(dir, "missing.hcl")},
	})
	if !diags.HasErrors() || diags[0].Summary != "Cannot read variables file" {
		t.Errorf("missing.hcl: %v", diags)
	}
}

func TestSensitiveValues(t *testing.T) {
	dir := writePlan(t, map[string]string{"plan.hcl": `
variable "token" {
  type      = string
  sensitive = true
}
variable "app" {
  type    = string
  default = "acme"
}
variable "target_url" {
  type      = string
  sensitive = true
}
variable "bad" {
  type      = number
  sensitive = true
}
database "heroku" { url = "postgres://app:url-pw@heroku.example.com/app" }
database "rds"    { url = var.target_url }
database "kv"     { url = "host=db.example.com user=app password='kv-pw' dbname=app" }
database "none"   { url = "postgres://app@nopw.example.com/app" }
step "call" {
  uses  = "exec"
  shell = "curl -H 'Authorization: Bearer ${var.token}' https://api.example.com/${var.app}"
  dir   = var.app
}
`})
	load := func(vars ...string) (*plan.Plan, hcl.Diagnostics) {
		return plan.Load(filepath.Join(dir, "plan.hcl"), plan.Options{Types: testTypes(), Environ: []string{}, Vars: vars})
	}
	p, diags := load("token=tok-123", "target_url=postgres://u:rds-pw@rds.example.com/app", "bad=4242")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := args(p.Step("step.call"))
	if !plan.IsSensitive(a["shell"]) {
		t.Error("shell interpolates a sensitive variable but is not marked sensitive")
	}
	if plan.IsSensitive(a["dir"]) {
		t.Error("dir is marked sensitive")
	}
	if !plan.IsSensitive(cty.StringVal("x").Mark("sensitive")) || plan.IsSensitive(cty.StringVal("x")) {
		t.Error("IsSensitive does not read the mark")
	}
	want := []string{"4242", "kv-pw", "postgres://u:rds-pw@rds.example.com/app", "rds-pw", "tok-123", "url-pw"}
	if got := p.Secrets(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}
	// Secrets returns a copy.
	p.Secrets()[0] = "changed"
	if p.Secrets()[0] != "4242" {
		t.Error("Secrets() shares its slice")
	}
	// A sensitive value that does not fit its type is not printed.
	_, diags = load("token=tok-123", "target_url=x", "bad=hunter2")
	if !diags.HasErrors() {
		t.Fatal("bad=hunter2 accepted for a number")
	}
	for _, d := range diags {
		if strings.Contains(d.Detail, "hunter2") || strings.Contains(d.Summary, "hunter2") {
			t.Errorf("a diagnostic shows the sensitive value: %s", formatDiag(d))
		}
	}
}
