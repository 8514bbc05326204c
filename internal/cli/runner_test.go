package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// The variables a run records never hold a secret: sensitive ones are
// replaced, and a password inside a plain variable is redacted.
func TestRecordedVarsHoldNoSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.hcl")
	src := `
variable "url" {}
variable "token" { sensitive = true }
variable "jobs" { default = 4 }
database "db" { url = var.url }
step "s" {
  uses     = "sleep"
  duration = "0s"
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Environ: []string{},
		Vars: []string{"url=postgres://app:pw-Q7x9@db.example.com/shop", "token=tk-3Zb8"}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := recordedVars(p, redact.New(p.Secrets()...))
	raw, _ := json.Marshal(got)
	for _, secret := range []string{"pw-Q7x9", "tk-3Zb8"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("recorded %s", raw)
		}
	}
	if got["token"] != sensitiveValue || got["jobs"] != json.Number("4") || !strings.Contains(got["url"].(string), "db.example.com/shop") {
		t.Errorf("recorded %s", raw)
	}
}
