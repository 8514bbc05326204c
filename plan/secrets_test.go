package plan_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestShortSecretWarnings: a secret shorter than redact.ShortLen is hidden
// only where it stands alone, so validate warns of it at the variable or
// the database that holds it, once.
func TestShortSecretWarnings(t *testing.T) {
	src := `
variable "pw" {
  sensitive = true
  default   = "abc"
}
variable "token" {
  sensitive = true
  default   = "a-long-enough-token"
}
variable "name" {
  default = "ab"
}
variable "keys" {
  type      = list(string)
  sensitive = true
  default   = ["a-long-key", "k1"]
}
database "a" {
  url = "postgres://app:s3cr@a.example.com/app"
}
database "b" {
  url = "postgres://app:${var.pw}@b.example.com/app"
}
database "c" {
  url = "postgres://app:long-password@c.example.com/app"
}
step "s" {
  uses    = "exec"
  command = ["echo", var.token, var.name, join(",", var.keys)]
}
`
	_, diags := loadSource(t, "plan.hcl", src, testTypes())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range diags {
		if d.Severity != hcl.DiagWarning || d.Summary != "Short secret" {
			continue
		}
		got = append(got, fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Detail))
	}
	want := []string{
		"2:1 The sensitive value of var.pw is only 3 characters: it is hidden only where it stands alone, and a longer secret is safer.",
		"13:1 A sensitive value in var.keys is only 2 characters: it is hidden only where it stands alone, and a longer secret is safer.",
		"18:1 The password of database.a is only 4 characters: it is hidden only where it stands alone, and a longer secret is safer.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
