package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// A sensitive value enters fingerprints keyed: without the key a guess of
// the secret cannot be checked against a record; with it the fingerprints
// are stable, and those an older planrun recorded unkeyed still match.
func TestFingerprintsKeyedAndLegacy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.hcl")
	src := `
variable "pw" { sensitive = true }
step "secret" {
  uses  = "exec"
  shell = "echo ${var.pw}"
}
step "plain" {
  uses  = "exec"
  shell = "echo hello"
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(pw string) *plan.Plan {
		p, diags := plan.Load(path, plan.Options{Types: steps.Builtin(), Environ: []string{}, Vars: []string{"pw=" + pw}})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return p
	}
	p := load("letmein")
	k1, err := (&journal.FileStore{Dir: filepath.Join(dir, "one")}).FingerprintKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := (&journal.FileStore{Dir: filepath.Join(dir, "two")}).FingerprintKey(t.Context())
	if err != nil || bytes.Equal(k1, k2) {
		t.Fatalf("keys %x %x: %v", k1, k2, err)
	}
	a, b, legacy := fingerprints(p, k1), fingerprints(p, k2), fingerprints(p, nil)
	if a["step.secret"] == b["step.secret"] || a["step.secret"] == legacy["step.secret"] {
		t.Fatalf("the secret's step is not keyed: %v %v %v", a, b, legacy)
	}
	if a["step.plain"] != b["step.plain"] || a["step.plain"] != legacy["step.plain"] {
		t.Fatalf("a step without secrets changed: %v %v %v", a, b, legacy)
	}
	if again := fingerprints(load("letmein"), k1); again["step.secret"] != a["step.secret"] {
		t.Fatalf("not stable: %v %v", again, a)
	}
	// The dictionary an attacker with the record but no key would try.
	for _, guess := range []string{"letmein", "password"} {
		if fingerprints(load(guess), nil)["step.secret"] == a["step.secret"] {
			t.Fatalf("the unkeyed fingerprint of %q matches the record", guess)
		}
	}
	if fingerprints(load("other"), k1)["step.secret"] == a["step.secret"] {
		t.Fatal("another secret, same fingerprint")
	}
	// A run an older planrun recorded (unkeyed) is the same plan; with
	// another secret it is not.
	if got := journal.Changes(legacy, asRecorded(p, legacy, a)); len(got) != 0 {
		t.Fatalf("an older record reads as changed: %v", got)
	}
	other := fingerprints(load("other"), nil)
	if got := journal.Changes(other, asRecorded(p, other, a)); len(got) != 1 || got[0] != "step.secret changed" {
		t.Fatalf("changes %v", got)
	}
}
