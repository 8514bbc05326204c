package nesting

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

func TestCheck(t *testing.T) {
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	for _, tc := range []struct {
		name string
		src  string
		mode Mode
		want string // "" when accepted, else the position of the refusal
	}{
		{"parens at the limit", "x = " + deep("(", ")", MaxDepth-1) + "\n", Config, ""},
		{"parens past the limit", "x = " + deep("(", ")", 200) + "\n", Config, "1:105"},
		{"brackets", "x = " + deep("[", "]", 200000) + "\n", Config, "1:105"},
		{"braces", "x = " + strings.Repeat("{a = ", 200) + "1" + strings.Repeat("}", 200) + "\n", Config, "1:505"},
		{"in a block", "step \"s\" {\n  x = " + deep("(", ")", 200) + "\n}\n", Config, "2:105"},
		{"a chain of +", "x = 1" + strings.Repeat(" + 1", 200) + "\n", Config, "1:407"},
		{"unary !", "x = " + strings.Repeat("!", 200) + "true\n", Config, "1:105"},
		{"conditionals", "x = " + strings.Repeat("true ? 1 : ", 200) + "2\n", Config, "1:1110"},
		{"indexes", "x = a" + strings.Repeat("[0]", 200) + "\n", Config, "1:306"},
		{"interpolations", "x = " + strings.Repeat(`"${`, 60) + "1" + strings.Repeat(`}"`, 60) + "\n", Config, "1:155"},
		{"template directives", "x = \"" + strings.Repeat("%{ if true }", 200) + strings.Repeat("%{ endif }", 200) + "\"\n", Config, "1:1182"},
		{"a long template", "x = <<EOT\n" + strings.Repeat("${a.b} %{ if c }d%{ endif }\n", 5000) + "EOT\n", Config, ""},
		{"a long flat list", "x = [" + strings.Repeat("1, ", 100000) + "1]\n", Config, ""},
		{"many short lines", strings.Repeat("x = a.b.c + d.e\n", 100000), Config, ""},
		{"brackets in strings and comments", "x = \"((((" + strings.Repeat("(", 500) + "\"\n# " + strings.Repeat("[", 500) + "\ny = <<EOT\n" + strings.Repeat("{", 500) + "\nEOT\n", Config, ""},
		{"closers in strings do not hide depth", "x = \"" + strings.Repeat(")", 500) + "\" + " + deep("(", ")", 200) + "\n", Config, "1:608"},
		{"expression", deep("(", ")", 200), Expression, "1:101"},
		{"template", strings.Repeat("${", 200) + "1" + strings.Repeat("}", 200), Template, "1:202"},
		{"template text", strings.Repeat("((([[[", 1000), Template, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Check([]byte(tc.src), "f.hcl", hcl.InitialPos, tc.mode)
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("refused at %s: %s", d.Subject, d.Detail)
			case tc.want != "" && d == nil:
				t.Fatal("accepted")
			case tc.want != "":
				if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.want || d.Subject.Filename != "f.hcl" {
					t.Errorf("refused at %s:%s, want f.hcl:%s", d.Subject.Filename, got, tc.want)
				}
				if d.Summary != "Too deeply nested" {
					t.Errorf("summary %q", d.Summary)
				}
			}
		})
	}
}

// TestExamplesAreShallow: no example plan comes near the limit.
func TestExamplesAreShallow(t *testing.T) {
	files, _ := filepath.Glob("../../../examples/*/*.hcl")
	more, _ := filepath.Glob("../../testdata/*/*.hcl")
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found %d files", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if d := estimate(src, Config, MaxDepth); d > 20 {
			t.Errorf("%s: estimate %d", f, d)
		}
	}
}

// FuzzEstimateBound: the byte scan never estimates below the tokens' depth,
// or deep source could slip past Check into the parser.
func FuzzEstimateBound(f *testing.F) {
	for _, s := range []string{
		"x = (1 + 2) * a.b[0]\n", "x = \"a${b}c%{if d}e%{endif}\"\n", "x = <<EOT\n${a.b}\")\nEOT\ny = [1, 2]\n",
		"# ((\nx = /* ] */ f(1, 2)\n", "x = {\n a = 1 + 2\n b = [3]\n}\n", "x = \"\\\"(\" + (1)\n", "x = \"${ ( }\" + 1\n",
		"x = <<-EOT\n  a\n  EOT\n", "x = \"a\nb\" + (((1)))\n", "x = $${a} + %%{b}\n",
		"/*", "0 0 (0000000000}\"00000000000000000", // found by the fuzzer
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // Check lexes it
		}
		for _, mode := range []Mode{Config, Expression, Template} {
			est := estimate([]byte(s), mode, 1<<30)
			got, _ := exact([]byte(s), "f", hcl.InitialPos, mode, 1<<30)
			if est < got {
				t.Fatalf("mode %d: estimate %d < tokens %d for %q", mode, est, got, s)
			}
		}
	})
}
