package plan_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/plan"
)

// loadValid loads a plan that must have no diagnostics at all.
func loadValid(t *testing.T, path string) *plan.Plan {
	t.Helper()
	p, diags := plan.Load(path, plan.Options{
		Types:   testTypes(),
		Environ: []string{},
		Vars:    readVars(t, baseName(path)+".vars"),
	})
	for _, d := range diags {
		t.Errorf("%s", formatDiag(d))
	}
	if p == nil || diags.HasErrors() {
		t.FailNow()
	}
	if p.Graph == nil {
		t.Fatal("no graph")
	}
	if _, err := p.Graph.Waves(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidPlans(t *testing.T) {
	files := planFilesIn(t, filepath.Join("testdata", "valid"))
	if len(files) < 8 {
		t.Fatalf("only %d valid plans", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			p := loadValid(t, path)
			if len(p.Steps) == 0 {
				t.Fatal("no steps")
			}
			for _, st := range p.Steps {
				if st.Type == nil {
					t.Errorf("%s: no type", st.Addr)
				}
				if p.Step(st.Addr) != st {
					t.Errorf("%s: Step(addr) does not find it", st.Addr)
				}
				for _, d := range st.Deps {
					if p.Step(d) == nil {
						t.Errorf("%s depends on %s, which is not a step", st.Addr, d)
					}
				}
			}
		})
	}
}

func args(st *plan.Step) map[string]cty.Value {
	out := map[string]cty.Value{}
	for _, a := range st.Args {
		out[a.Name] = a.Value
	}
	return out
}

func strs(t *testing.T, v cty.Value) []string {
	t.Helper()
	v, _ = v.UnmarkDeep()
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if !e.IsKnown() {
			out = append(out, "(unknown)")
			continue
		}
		out = append(out, e.AsString())
	}
	return out
}

func TestValidMinimal(t *testing.T) {
	p := loadValid(t, "testdata/valid/minimal.hcl")
	if p.Name != "minimal" || p.OnFailure != plan.OnFailureRollback {
		t.Errorf("name %q, on_failure %q: want the file's name and rollback", p.Name, p.OnFailure)
	}
	st := p.Step("step.hello")
	if st == nil || st.Uses != "exec" || st.Kind != plan.KindStep {
		t.Fatalf("step.hello = %+v", st)
	}
	if got := strs(t, args(st)["command"]); !reflect.DeepEqual(got, []string{"echo", "hello"}) {
		t.Errorf("command = %v", got)
	}
	if st.Retry.Attempts != 1 || st.Timeout != 0 || st.When != nil {
		t.Errorf("defaults: retry %+v, timeout %v, when %v", st.Retry, st.Timeout, st.When)
	}
}

func TestValidVariables(t *testing.T) {
	p := loadValid(t, "testdata/valid/variables.hcl")
	vars := p.VarValues()
	if got := vars["jobs"]; !got.RawEquals(cty.NumberIntVal(4)) {
		t.Errorf("jobs = %#v", got)
	}
	if got := vars["tables"]; !got.Type().Equals(cty.List(cty.String)) {
		t.Errorf("tables has type %s, want list(string)", got.Type().FriendlyName())
	}
	if got := vars["target"].GetAttr("port"); !got.RawEquals(cty.NumberIntVal(5432)) {
		t.Errorf("target.port = %#v", got)
	}
	if got := vars["anything"]; !got.RawEquals(cty.StringVal("untyped")) {
		t.Errorf("anything = %#v", got)
	}
	if !p.IsSensitive("source_url") || p.IsSensitive("app") {
		t.Error("source_url must be sensitive and app not")
	}
	secrets := p.Secrets()
	for _, want := range []string{"postgres://app:s3cret-pw@heroku.example.com:5432/app", "s3cret-pw"} {
		if !contains(secrets, want) {
			t.Errorf("Secrets() = %q, want %q in it", secrets, want)
		}
	}
	var desc string
	for _, v := range p.Variables {
		if v.Name == "app" {
			desc = v.Description
		}
	}
	if desc != "The Heroku app" {
		t.Errorf("app's description = %q", desc)
	}
	st := p.Step("step.dump")
	a := args(st)
	if got := strs(t, a["command"]); !reflect.DeepEqual(got, []string{"pg_dump", "-Fd", "--jobs", "4", "-f", "dump", "--table=users", "--table=orders"}) {
		t.Errorf("command = %q", got)
	}
	env := a["env"]
	if !plan.IsSensitive(env) {
		t.Error("env reads a sensitive variable but is not marked")
	}
	if plan.IsSensitive(a["command"]) {
		t.Error("command is marked sensitive but reads no sensitive variable")
	}
	if got := elem(env, "TARGET"); !got.RawEquals(cty.StringVal("rds.example.com:5432")) {
		t.Errorf("env.TARGET = %#v", got)
	}
	if v, _ := st.WhenPreview.Unmark(); !v.RawEquals(cty.True) {
		t.Errorf("when = %#v, want true", st.WhenPreview)
	}
}

func TestValidLocals(t *testing.T) {
	p := loadValid(t, "testdata/valid/locals.hcl")
	a := args(p.Step("step.dump"))
	want := []string{"pg_dump", "-Fc", "-f", filepath.Join(p.Dir, "work", "acme-prod.dump")}
	if got := strs(t, a["command"]); !reflect.DeepEqual(got, want) {
		t.Errorf("command = %q, want %q", got, want)
	}
	if got := elem(a["env"], "LABEL"); !got.RawEquals(cty.StringVal("ACME-PROD")) {
		t.Errorf("env.LABEL = %#v", got)
	}
}

func TestValidReferences(t *testing.T) {
	p := loadValid(t, "testdata/valid/references.hcl")
	want := map[string][]string{
		"step.maintenance_on":  nil,
		"step.dump":            {"step.maintenance_on"},           // depends_on
		"step.schema":          nil,                               //
		"step.restore":         {"step.dump", "step.schema"},      // two references in a template
		"check.drained":        nil,                               //
		"step.switch":          {"check.drained", "step.restore"}, // when + depends_on
		"step.maintenance_off": {"check.drained", "step.switch"},  // depends_on a check
	}
	for addr, deps := range want {
		st := p.Step(addr)
		if st == nil {
			t.Fatalf("no %s", addr)
		}
		if !reflect.DeepEqual(st.Deps, deps) {
			t.Errorf("%s.Deps = %v, want %v", addr, st.Deps, deps)
		}
		if got := p.Graph.Deps(addr); !sameSet(got, deps) {
			t.Errorf("graph: %s depends on %v, want %v", addr, got, deps)
		}
	}
	if got := p.Step("step.maintenance_off").DependsOn; !reflect.DeepEqual(got, []string{"step.switch", "check.drained"}) {
		t.Errorf("DependsOn = %v", got)
	}
	if got := p.Step("step.restore").Reads(); !reflect.DeepEqual(got, []string{"step.dump", "step.schema"}) {
		t.Errorf("restore reads %v", got)
	}
	// The shell template reads unknown outputs: known after apply.
	if sh := args(p.Step("step.restore"))["shell"]; sh.IsKnown() {
		t.Errorf("shell = %#v, want unknown before the run", sh)
	}
	waves, err := p.Graph.Waves()
	if err != nil {
		t.Fatal(err)
	}
	wantWaves := [][]string{
		{"step.maintenance_on", "step.schema", "check.drained"},
		{"step.dump"},
		{"step.restore"},
		{"step.switch"},
		{"step.maintenance_off"},
	}
	if !reflect.DeepEqual(waves, wantWaves) {
		t.Errorf("waves = %v, want %v", waves, wantWaves)
	}
	if p.Step("check.drained").Kind != plan.KindCheck {
		t.Error("check.drained is not a check")
	}
}

func TestValidRetryTimeout(t *testing.T) {
	p := loadValid(t, "testdata/valid/retry_timeout.hcl")
	if p.OnFailure != plan.OnFailureStop {
		t.Errorf("on_failure = %q", p.OnFailure)
	}
	tests := []struct {
		addr    string
		timeout time.Duration
		retry   plan.Retry
	}{
		{"step.restore", 2 * time.Hour, plan.Retry{Attempts: 3, Backoff: 30 * time.Second, MaxBackoff: 5 * time.Minute}},
		{"step.analyze", 90 * time.Minute, plan.Retry{Attempts: 1}},
		{"step.quick", 0, plan.Retry{Attempts: 2, Backoff: time.Second}},
	}
	for _, tt := range tests {
		st := p.Step(tt.addr)
		if st.Timeout != tt.timeout || st.Retry != tt.retry {
			t.Errorf("%s: timeout %v, retry %+v; want %v, %+v", tt.addr, st.Timeout, st.Retry, tt.timeout, tt.retry)
		}
	}
}

func TestValidRollback(t *testing.T) {
	p := loadValid(t, "testdata/valid/rollback.hcl")
	if p.Downtime == nil || p.Downtime.From != "step.maintenance_on" || p.Downtime.To != "step.maintenance_off" {
		t.Fatalf("downtime = %+v", p.Downtime)
	}
	on := p.Step("step.maintenance_on")
	if on.Rollback == nil || on.Rollback.Uses != "exec" || on.Rollback.Timeout != time.Minute || on.Rollback.Retry.Attempts != 5 {
		t.Fatalf("maintenance_on rollback = %+v", on.Rollback)
	}
	if got := strs(t, args(&plan.Step{Action: *on.Rollback})["command"]); !reflect.DeepEqual(got, []string{"heroku", "maintenance:off", "--app", "acme-prod"}) {
		t.Errorf("rollback command = %q", got)
	}
	sw := p.Step("step.switch")
	if sw.Rollback == nil {
		t.Fatal("switch has no rollback")
	}
	// The rollback reads its own step's output: no edge, no cycle.
	if !reflect.DeepEqual(sw.Deps, []string{"step.maintenance_on"}) {
		t.Errorf("switch deps = %v", sw.Deps)
	}
	if p.Step("step.maintenance_off").Rollback != nil {
		t.Error("maintenance_off has a rollback")
	}
}

func TestValidAssertions(t *testing.T) {
	p := loadValid(t, "testdata/valid/assertions.hcl")
	dump := p.Step("step.dump")
	if len(dump.Asserts) != 2 {
		t.Fatalf("%d assertions on dump", len(dump.Asserts))
	}
	first := dump.Asserts[0]
	if first.That != `output.exit_code == 0 && output.stderr == ""` || first.Severity != plan.SeverityError || first.Program == nil {
		t.Errorf("first assertion = %+v", first)
	}
	var parts []string
	for _, m := range first.Msg {
		if m.Program != nil {
			parts = append(parts, "{{"+m.Text+"}}")
		} else {
			parts = append(parts, m.Text)
		}
	}
	if got := strings.Join(parts, "|"); got != "pg_dump failed (|{{ output.exit_code }}|): |{{ output.stderr }}" {
		t.Errorf("message parts = %q", got)
	}
	if dump.Asserts[1].Severity != plan.SeverityWarn {
		t.Errorf("second severity = %q", dump.Asserts[1].Severity)
	}
	counts := p.Step("check.counts")
	if got := readExprs(counts.Asserts[0]); !reflect.DeepEqual(got, []string{"output.tables", "var.min_rows", "output.total"}) {
		t.Errorf("reads = %q", got)
	}
	if got := readExprs(counts.Asserts[1]); !reflect.DeepEqual(got, []string{"output.tables[0].name"}) {
		t.Errorf("reads = %q", got)
	}
	// The edges of report come from its assertions alone.
	report := p.Step("step.report")
	if !reflect.DeepEqual(report.Deps, []string{"check.counts", "step.dump"}) {
		t.Errorf("report deps = %v", report.Deps)
	}
	if got := readExprs(report.Asserts[0]); !reflect.DeepEqual(got, []string{"steps.dump.exit_code", "checks.counts.tables"}) {
		t.Errorf("report reads = %q", got)
	}
	if got := p.Step("check.counts").Args[0]; got.Name != "database" || got.Ref != "database.heroku" {
		t.Errorf("database argument = %+v", got)
	}
}

// elem reads a key of a map or object value, without marks.
func elem(v cty.Value, key string) cty.Value {
	v, _ = v.UnmarkDeep()
	if v.Type().IsObjectType() {
		return v.GetAttr(key)
	}
	return v.Index(cty.StringVal(key))
}

func readExprs(a *plan.Assertion) []string {
	var out []string
	for _, r := range a.Reads {
		if r.Program == nil {
			out = append(out, "(no program) "+r.Expr)
			continue
		}
		out = append(out, r.Expr)
	}
	return out
}

// TestHCLYAMLTwins proves that migration.hcl and migration.yaml load to the
// same model.
func TestHCLYAMLTwins(t *testing.T) {
	for _, pair := range [][2]string{
		{"testdata/valid/migration.hcl", "testdata/valid/migration.yaml"},
		{"testdata/valid/minimal.hcl", "testdata/valid/minimal.yml"},
	} {
		t.Run(filepath.Base(pair[0]), func(t *testing.T) {
			h, y := loadValid(t, pair[0]), loadValid(t, pair[1])
			hd, yd := describePlan(t, h), describePlan(t, y)
			if len(hd) < 3 {
				t.Fatalf("describePlan found too little: %q", hd)
			}
			for i := 0; i < len(hd) || i < len(yd); i++ {
				var a, b string
				if i < len(hd) {
					a = hd[i]
				}
				if i < len(yd) {
					b = yd[i]
				}
				if a != b {
					t.Errorf("HCL and YAML differ:\n  hcl:  %s\n  yaml: %s", a, b)
				}
			}
		})
	}
}

// describePlan renders what a plan means (not where it was written) as
// sorted lines, so that two syntaxes can be compared.
func describePlan(t *testing.T, p *plan.Plan) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) {
		out = append(out, fmt.Sprintf(format, args...))
	}
	add("plan %s: %q on_failure=%s", p.Name, p.Description, p.OnFailure)
	if p.Downtime != nil {
		add("downtime %s .. %s", p.Downtime.From, p.Downtime.To)
	}
	for _, v := range p.Variables {
		add("variable %s: type=%s default=%s sensitive=%v validations=%d", v.Name, v.Type.FriendlyName(), goString(v.Default), v.Sensitive, len(v.Validations))
		for _, val := range v.Validations {
			add("variable %s: validation %q", v.Name, val.ErrorMessage)
		}
	}
	for _, l := range p.Locals {
		add("local %s", l.Name)
	}
	for _, d := range p.Databases {
		add("database %s", d.Name)
	}
	for _, s := range p.Secrets() {
		add("secret %s", s)
	}
	for name, v := range p.VarValues() {
		add("var %s = %s", name, goString(v))
	}
	for _, st := range p.Steps {
		add("%s: kind=%s uses=%s timeout=%v retry=%+v deps=%v depends_on=%v reads=%v when=%s",
			st.Addr, st.Kind, st.Uses, st.Timeout, st.Retry, st.Deps, st.DependsOn, st.Reads(), goString(st.WhenPreview))
		describeAction(st.Addr, &st.Action, add)
		if st.Rollback != nil {
			describeAction(st.Addr+" rollback", st.Rollback, add)
		}
	}
	for _, e := range p.Graph.Edges() {
		add("edge %s -> %s", e[1], e[0])
	}
	sort.Strings(out)
	return out
}

func describeAction(prefix string, a *plan.Action, add func(string, ...any)) {
	add("%s: uses=%s timeout=%v retry=%+v", prefix, a.Uses, a.Timeout, a.Retry)
	for _, arg := range a.Args {
		add("%s: arg %s = %s (ref %q)", prefix, arg.Name, goString(arg.Value), arg.Ref)
	}
	for i, as := range a.Asserts {
		add("%s: assert %d: %q message=%q severity=%s reads=%v parts=%d", prefix, i, as.That, as.Message, as.Severity, readExprs(as), len(as.Msg))
	}
}

func goString(v cty.Value) string {
	if v == cty.NilVal {
		return "(none)"
	}
	return v.GoString()
}

// TestNoDatabaseDriver keeps package plan free of pgx: plan/ turns files
// into a model and imports no database driver.
func TestNoDatabaseDriver(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH (%v): it is needed to list the dependencies of ./plan/...", err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "./plan/...")
	cmd.Dir = ".." // the module's root
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if !contains(deps, "github.com/planrun/planrun/plan/yamlhcl") || !contains(deps, "github.com/hashicorp/hcl/v2") {
		t.Fatalf("go list -deps does not list what plan imports: %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "jackc/pgx") || d == "github.com/planrun/planrun/steps" {
			t.Errorf("package plan depends on %s", d)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	a = append([]string(nil), a...)
	b = append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// TestDirectoryPlan loads a directory whose HCL and YAML files make one
// plan, referring to each other.
func TestDirectoryPlan(t *testing.T) {
	files := map[string]string{
		"main.hcl": `
plan "split" {}
variable "app" { default = "acme" }
step "dump" {
  uses    = "exec"
  command = ["pg_dump", var.app]
}
`,
		"steps.yaml": `
steps:
  restore:
    uses: exec
    command: [pg_restore, "${step.dump.output.stdout}"]
`,
		"notes.txt":     "not a plan file",
		"plan.lock.hcl": "this is not HCL {",
	}
	dir := writePlan(t, files)
	p, diags := plan.Load(dir, plan.Options{Types: testTypes(), Environ: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if p.Name != "split" || len(p.Files) != 2 {
		t.Errorf("name %q, %d files", p.Name, len(p.Files))
	}
	if got := p.Step("step.restore").Deps; !reflect.DeepEqual(got, []string{"step.dump"}) {
		t.Errorf("restore deps = %v", got)
	}
	// The hash covers the plan's files, and changes with them.
	again, _ := plan.Load(dir, plan.Options{Types: testTypes(), Environ: []string{}})
	files["steps.yaml"] += "\n# a comment\n"
	changed, _ := plan.Load(writePlan(t, files), plan.Options{Types: testTypes(), Environ: []string{}})
	if p.Hash == "" || p.Hash != again.Hash || p.Hash == changed.Hash {
		t.Errorf("hashes %s, %s, %s", p.Hash, again.Hash, changed.Hash)
	}
	// An empty directory is an error, not a panic.
	_, diags = plan.Load(t.TempDir(), plan.Options{Types: testTypes(), Environ: []string{}})
	if !diags.HasErrors() || diags[0].Summary != "Cannot read plan" {
		t.Errorf("empty directory: %v", diags)
	}
	_, diags = plan.Load(dir, plan.Options{})
	if !diags.HasErrors() || diags[0].Summary != "No step types" {
		t.Errorf("no types: %v", diags)
	}
}
