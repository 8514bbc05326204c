package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/plan"
)

const oneStep = "\nstep \"s\" {\n  uses  = \"exec\"\n  shell = \"true\"\n}\n"

// sparse writes a file of size bytes that takes no room on disk.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals: absurd plans are refused at once, with the file and, where
// there is one, the line and column.
func TestRefusals(t *testing.T) {
	deep := strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150)
	var manySteps, manyLocals strings.Builder
	manyLocals.WriteString("locals {\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&manySteps, "step \"s%d\" {\n  uses  = \"exec\"\n  shell = \"true\"\n}\n", i)
		fmt.Fprintf(&manyLocals, "  l%d = %d\n", i, i)
	}
	manyLocals.WriteString("}\n" + oneStep)
	for _, tc := range []struct {
		name    string
		files   map[string]string
		big     map[string]int64 // sparse files: name -> size
		varFile string
		summary string
		at      string // file:line:col of the subject
		detail  string // "" to skip
	}{
		{
			name: "file too large", big: map[string]int64{"plan.hcl": plan.MaxFileBytes + 1},
			summary: "Plan file too large", at: "plan.hcl:1:1",
			detail: "plan.hcl is larger than 64 MiB, the most a plan file may weigh.",
		},
		{
			name: "files together too large", big: map[string]int64{"a.hcl": 40 << 20, "b.hcl": 40 << 20},
			summary: "Plan file too large", at: "b.hcl:1:1",
			detail: "With b.hcl the plan's files weigh more than 64 MiB, the most a plan may weigh.",
		},
		{
			name:    "a binary file",
			files:   map[string]string{"plan.hcl": "step \"s\" {\n  uses = \"exec\"\x00\x01\n}\n"},
			summary: "Not a text file", at: "plan.hcl:2:16",
			detail: "plan.hcl holds a NUL byte: a plan file is text (HCL or YAML, in UTF-8).",
		},
		{
			name:    "a terminal escape in a step name",
			files:   map[string]string{"plan.hcl": "step \"s\x1b[2J\" {\n  uses = \"exec\"\n}\n"},
			summary: "Not a text file", at: "plan.hcl:1:8",
			detail: "plan.hcl holds the control character 0x1b: a plan file is text (HCL or YAML, in UTF-8).",
		},
		{
			name:    "bytes that are not UTF-8",
			files:   map[string]string{"plan.yaml": "steps:\n  s:\n    uses: \xff\xfe\n"},
			summary: "Not a text file", at: "plan.yaml:3:11",
			detail: "plan.yaml holds bytes that are not UTF-8: a plan file is text (HCL or YAML, in UTF-8).",
		},
		{
			name:    "parentheses in HCL",
			files:   map[string]string{"plan.hcl": "locals {\n  x = " + deep + "\n}\n" + oneStep},
			summary: "Too deeply nested", at: "plan.hcl:2:106",
		},
		{
			name:    "a chain of operators in HCL",
			files:   map[string]string{"plan.hcl": "locals {\n  x = 1" + strings.Repeat(" + 1", 150) + "\n}\n" + oneStep},
			summary: "Too deeply nested", at: "plan.hcl:2:405",
		},
		{
			name:    "lists in YAML",
			files:   map[string]string{"plan.yaml": "locals:\n  x: " + strings.Repeat("[", 150) + "1" + strings.Repeat("]", 150) + "\n"},
			summary: "Too deeply nested", at: "plan.yaml:2:104",
			detail: "Lists and mappings nest more than 100 levels deep here (aliases expanded). planrun refuses it rather than exhaust the stack.",
		},
		{
			name:    "a template in YAML",
			files:   map[string]string{"plan.yaml": "locals:\n  x: \"${" + deep + "}\"\n"},
			summary: "Too deeply nested", at: "plan.yaml:2:108",
		},
		{
			name:    "a variables file",
			files:   map[string]string{"plan.hcl": "variable \"x\" {\n  default = 1\n}\n" + oneStep, "vars.hcl": "x = " + deep + "\n"},
			varFile: "vars.hcl", summary: "Too deeply nested", at: "vars.hcl:1:105",
		},
		{
			name:    "a JSON variables file",
			files:   map[string]string{"plan.hcl": "variable \"x\" {\n  default = 1\n}\n" + oneStep, "vars.json": "{\"x\": " + strings.Repeat("[", 150) + "1" + strings.Repeat("]", 150) + "}\n"},
			varFile: "vars.json", summary: "Too deeply nested", at: "vars.json:1:105",
		},
		{
			name:    "too many steps",
			files:   map[string]string{"plan.hcl": manySteps.String()},
			summary: "Too many steps and checks", at: "plan.hcl:21:1",
			detail: "A plan declares at most 5 steps and checks, libraries included; this is one more.",
		},
		{
			name:    "too many locals",
			files:   map[string]string{"plan.hcl": manyLocals.String()},
			summary: "Too many locals", at: "plan.hcl:7:3",
			detail: "A plan declares at most 5 locals, libraries included; this is one more.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePlan(t, tc.files)
			for name, size := range tc.big {
				sparse(t, filepath.Join(dir, name), size)
			}
			path := dir
			if len(tc.files)+len(tc.big) == 1 {
				for name := range tc.files {
					path = filepath.Join(dir, name)
				}
			}
			opts := plan.Options{Types: testTypes(), Environ: []string{}}
			if tc.varFile != "" {
				path = filepath.Join(dir, "plan.hcl")
				opts.VarFiles = []string{filepath.Join(dir, tc.varFile)}
			}
			start := time.Now()
			_, diags := plan.LoadWithLimits(path, opts, 5, 5)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Summary == tc.summary {
					found = d
				}
			}
			if found == nil {
				t.Fatalf("no %q in %v", tc.summary, diags)
			}
			if found.Subject == nil {
				t.Fatalf("no subject: %v", found)
			}
			at := fmt.Sprintf("%s:%d:%d", filepath.Base(found.Subject.Filename), found.Subject.Start.Line, found.Subject.Start.Column)
			if at != tc.at {
				t.Errorf("at %s, want %s", at, tc.at)
			}
			if tc.detail != "" && strings.ReplaceAll(found.Detail, dir+string(filepath.Separator), "") != tc.detail {
				t.Errorf("detail %q, want %q", found.Detail, tc.detail)
			}
		})
	}
}

// TestLoadContextStops: a cancelled load returns at once with an
// Interrupted diagnostic, before and during a big load (in the parse or
// after it, depending on the machine).
func TestLoadContextStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locals.hcl")
	if err := os.WriteFile(path, []byte(localsPlan(200000)), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := plan.Options{Types: testTypes(), Environ: []string{}}
	interrupted := func(diags hcl.Diagnostics) bool {
		for _, d := range diags {
			if d.Summary == "Interrupted" {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, diags := plan.LoadContext(ctx, path, opts); !interrupted(diags) {
		t.Errorf("cancelled before: %v", diags)
	}
	for _, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		start := time.Now()
		_, diags := plan.LoadContext(ctx, path, opts)
		took := time.Since(start)
		cancel()
		t.Logf("cancelled after %s: returned after %s", after, took)
		if !interrupted(diags) {
			t.Errorf("cancelled after %s: finished in %s without an Interrupted diagnostic", after, took)
		}
		// Slack for the stretch between two checks of the context (a
		// parse of one body), which a loaded 2-core machine stretches to
		// half a second and more.
		if took > after+1500*time.Millisecond {
			t.Errorf("cancelled after %s: returned after %s", after, took)
		}
	}
}
