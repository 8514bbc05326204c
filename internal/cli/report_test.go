package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// reportPlan copies a table, changes one row on the target, compares with
// checksums (a warning), then fails in a step whose error would hold the
// secret token if it were not redacted.
const reportPlan = `
plan "reported" {
  description = "Copy, compare, fail"
}
variable "source_url" {
  type      = string
  sensitive = true
}
variable "target_url" {
  type      = string
  sensitive = true
}
variable "token" {
  type      = string
  sensitive = true
  default   = "tok-Hq7Zr2-never-reported"
}
variable "label" { default = "nightly" }
database "old" { url = var.source_url }
database "new" { url = var.target_url }
step "copy" {
  uses   = "copy"
  source = database.old
  target = database.new
  jobs   = 1
}
step "tamper" {
  uses     = "sql"
  database = database.new
  query    = "UPDATE items SET name = 'changed' WHERE id = 7"
  depends_on = [step.copy]
}
check "same" {
  uses       = "compare"
  source     = database.old
  target     = database.new
  data       = "checksum"
  depends_on = [step.tamper]
  assert {
    that     = "output.equal"
    severity = "warn"
    message  = "data differs (token {{ var.token }})"
  }
}
step "echo" {
  uses       = "exec"
  command    = ["echo", "token=${var.token}"]
  depends_on = [check.same]
}
step "fail" {
  uses       = "sql"
  database   = database.new
  query      = "SELECT '${var.token}'::int"
  depends_on = [step.echo]
}
`

// reportJSON is the part of the JSON report the test reads.
type reportJSON struct {
	Version int `json:"version"`
	Plan    struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"plan"`
	Run struct {
		ID     string          `json:"id"`
		Result string          `json:"result"`
		RanBy  json.RawMessage `json:"ran_by"`
		Error  string          `json:"error"`
	} `json:"run"`
	Variables struct {
		Values []struct {
			Name      string          `json:"name"`
			Sensitive bool            `json:"sensitive"`
			Value     json.RawMessage `json:"value"`
		} `json:"values"`
	} `json:"variables"`
	Steps []struct {
		Addr       string `json:"addr"`
		Kind       string `json:"kind"`
		Status     string `json:"status"`
		Assertions struct {
			Passed, Warned, Failed int
		} `json:"assertions"`
		Failures []struct {
			Message string `json:"message"`
		} `json:"assertion_failures"`
		Error   string `json:"error"`
		Summary []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"summary"`
	} `json:"steps"`
}

func (r *reportJSON) fact(t *testing.T, step, name string) string {
	t.Helper()
	for _, s := range r.Steps {
		if s.Addr != step {
			continue
		}
		for _, f := range s.Summary {
			if f.Name == name {
				var b bytes.Buffer
				if err := json.Compact(&b, f.Value); err != nil {
					t.Fatal(err)
				}
				return b.String()
			}
		}
	}
	t.Fatalf("%s has no %s in its summary: %+v", step, name, r.Steps)
	return ""
}

// TestReportPostgresStore reports a run recorded in a Postgres state
// database: its copy and compare summaries, its failed step's error, and
// never a secret.
func TestReportPostgresStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, state := Source.FreshDB(t), Target.FreshDB(t), Source.FreshDB(t)
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planFile, []byte(reportPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := []string{"-var", "source_url=" + src, "-var", "target_url=" + dst, "--state-url", state}
	code, out, errOut := runCLI(t, append([]string{"apply", "--auto-approve", planFile}, vars...)...)
	if code != 1 || !strings.Contains(out, "step.fail: failed") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}

	secrets := []string{"tok-Hq7Zr2-never-reported", Source.Password, Target.Password}
	noSecret := func(what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, text)
			}
		}
	}

	// The records are in Postgres: without --state-url there is no run.
	code, _, errOut = runCLI(t, "report", planFile, "-var", "source_url="+src, "-var", "target_url="+dst)
	if code != 1 || !strings.Contains(errOut, "has not been applied yet") {
		t.Fatalf("report without the state database: exit %d\n%s", code, errOut)
	}

	code, md, errOut := runCLI(t, append([]string{"report", planFile}, vars...)...)
	if code != 0 {
		t.Fatalf("report: exit %d\n%s", code, errOut)
	}
	noSecret("the Markdown report", md+errOut)
	for _, want := range []string{
		"# Run report: reported",
		"Copy, compare, fail",
		"| Result | **failed** |",
		"| `token` | (sensitive) |",
		"| `label` | `\"nightly\"` |",
		"- tables: 1\n- rows: 100\n",
		"- equal: false\n- mismatched: public.items\n",
		"- differing_keys: public.items: id=7 (changed)",
		"**WARNING** `output.equal`: data differs (token (sensitive))",
		"invalid input syntax for type integer",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}

	outFile := filepath.Join(dir, "report.json")
	code, stdout, errOut := runCLI(t, append([]string{"report", "--format", "json", "-o", outFile, planFile}, vars...)...)
	if code != 0 || stdout != "" {
		t.Fatalf("report -o: exit %d\n%s%s", code, stdout, errOut)
	}
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	noSecret("the JSON report", string(raw))
	var r reportJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if r.Version != 1 || r.Plan.Name != "reported" || r.Run.Result != "failed" || !strings.Contains(string(r.Run.RanBy), `"pid": `) {
		t.Fatalf("report header: %+v", r)
	}
	if !strings.Contains(r.Run.Error, "step.fail") || !strings.Contains(r.Run.Error, "(sensitive)") {
		t.Errorf("run error: %q", r.Run.Error)
	}
	var order []string
	for _, s := range r.Steps {
		order = append(order, s.Addr+"="+s.Status)
	}
	if got := strings.Join(order, " "); got != "step.copy=succeeded step.tamper=succeeded check.same=succeeded step.echo=succeeded step.fail=failed" {
		t.Errorf("steps in the order they ran: %s", got)
	}
	if got := r.fact(t, "step.copy", "rows"); got != "100" {
		t.Errorf("copy rows = %s", got)
	}
	if got := r.fact(t, "check.same", "mismatched"); got != `["public.items"]` {
		t.Errorf("compare mismatched = %s", got)
	}
	if got := r.fact(t, "check.same", "differing_keys"); got != `{"public.items":["id=7 (changed)"]}` {
		t.Errorf("compare differing_keys = %s", got)
	}
	if got := r.fact(t, "step.echo", "output"); !strings.Contains(got, `token=(sensitive)`) {
		t.Errorf("exec output = %s", got)
	}
	for _, s := range r.Steps {
		if s.Addr == "check.same" && (s.Kind != "check" || s.Assertions.Warned != 1 || len(s.Failures) != 1) {
			t.Errorf("check.same: %+v", s)
		}
	}
	for _, v := range r.Variables.Values {
		if v.Sensitive != (v.Name != "label") {
			t.Errorf("variable %s: sensitive %v", v.Name, v.Sensitive)
		}
		if v.Sensitive && string(v.Value) != `"(sensitive)"` {
			t.Errorf("variable %s: %s", v.Name, v.Value)
		}
	}

	// --run picks a run by id (or a unique prefix); an unknown one is a usage error.
	code, md2, errOut := runCLI(t, append([]string{"report", "--run", r.Run.ID[:10], planFile}, vars...)...)
	if code != 0 || !strings.Contains(md2, "`"+r.Run.ID+"`") {
		t.Fatalf("report --run prefix: exit %d\n%s%s", code, md2, errOut)
	}
	code, _, errOut = runCLI(t, append([]string{"report", "--run", "20000101T000000Z-00000000", planFile}, vars...)...)
	if code != 2 || !strings.Contains(errOut, "has no such run") {
		t.Fatalf("report --run unknown: exit %d\n%s", code, errOut)
	}
}

// TestReportDamagedJournal: a damaged record is an error naming it, never a
// panic or a half report.
func TestReportDamagedJournal(t *testing.T) {
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(planFile, []byte(`
plan "dmg" {}
step "a" {
  uses    = "exec"
  command = ["true"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "apply", "--auto-approve", planFile); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "dmg", "runs", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("run records: %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// A line cut before the last (a torn last line is only a warning).
	first := bytes.IndexByte(raw, '\n')
	raw = append(append(raw[:first+1:first+1], raw[first+1:first+20]...), raw[first+1:]...)
	if err := os.WriteFile(files[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "report", planFile)
	if code != 1 || out != "" || !strings.Contains(errOut, "is damaged at line") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}
