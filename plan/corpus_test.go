package plan_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/plan"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid")

// marker is an expected diagnostic written on the offending line.
type marker struct {
	file    string // path as loaded
	line    int
	summary string
	matched bool
}

var markerRE = regexp.MustCompile(`#\s*ERROR:\s*([^#]*[^#\s])`)

// readMarkers finds every "# ERROR: <summary>" in a file.
func readMarkers(t *testing.T, path string) []*marker {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*marker
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	for line := 1; sc.Scan(); line++ {
		for _, m := range markerRE.FindAllStringSubmatch(sc.Text(), -1) {
			out = append(out, &marker{file: path, line: line, summary: m[1]})
		}
	}
	return out
}

// readVars reads a NAME.vars sidecar: one name=value per line, each line
// optionally followed by a " # ERROR: ..." marker.
func readVars(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(src), "\n") {
		if i := strings.Index(line, " # ERROR:"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// formatDiag renders a diagnostic on one line, paths relative to testdata.
func formatDiag(d *hcl.Diagnostic) string {
	loc := "(no location)"
	if d.Subject != nil {
		loc = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	sev := ""
	if d.Severity == hcl.DiagWarning {
		sev = "warning: "
	}
	line := fmt.Sprintf("%s: %s%s: %s", loc, sev, d.Summary, d.Detail)
	line = strings.ReplaceAll(line, "\n", `\n`)
	return strings.ReplaceAll(line, "testdata"+string(filepath.Separator), "")
}

// checkPos verifies that a range's byte offsets agree with its line and
// column (columns count characters), so that snippets underline the right text.
func checkPos(t *testing.T, src []byte, rng hcl.Range) {
	t.Helper()
	for _, p := range []hcl.Pos{rng.Start, rng.End} {
		if p.Byte < 0 || p.Byte > len(src) {
			t.Errorf("%s: byte offset %d outside the file (%d bytes)", rng, p.Byte, len(src))
			return
		}
		before := string(src[:p.Byte])
		line := 1 + strings.Count(before, "\n")
		col := 1 + utf8.RuneCountInString(before[strings.LastIndex(before, "\n")+1:])
		if line != p.Line || col != p.Column {
			t.Errorf("%s: byte offset %d is at %d:%d, but the range says %d:%d", rng, p.Byte, line, col, p.Line, p.Column)
		}
	}
	if rng.End.Byte < rng.Start.Byte {
		t.Errorf("%s: ends before it starts", rng)
	}
}

func planFilesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.hcl", "*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

func baseName(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path))
}

// TestInvalidPlans loads every plan under testdata/invalid and checks its
// diagnostics against the # ERROR: markers and the golden file.
func TestInvalidPlans(t *testing.T) {
	files := planFilesIn(t, filepath.Join("testdata", "invalid"))
	if len(files) < 36 {
		t.Fatalf("only %d invalid plans", len(files))
	}
	seen := map[string]string{}
	for _, path := range files {
		base := baseName(path)
		if prev, ok := seen[base]; ok {
			t.Fatalf("%s and %s share the golden file %s.golden", prev, path, base)
		}
		seen[base] = path
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			checkInvalid(t, path)
		})
	}
}

func checkInvalid(t *testing.T, path string) {
	base := baseName(path)
	varsPath := base + ".vars"
	p, diags := plan.Load(path, plan.Options{
		Types:   testTypes(),
		Environ: []string{},
		Vars:    readVars(t, varsPath),
	})
	if !diags.HasErrors() {
		t.Fatalf("loaded without errors (plan %v)", p != nil)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	markers := readMarkers(t, path)
	varMarkers := []*marker(nil)
	if _, err := os.Stat(varsPath); err == nil {
		varMarkers = readMarkers(t, varsPath)
	}
	if len(markers)+len(varMarkers) == 0 {
		t.Fatalf("%s has no # ERROR: markers", path)
	}
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Summary == "" || d.Detail == "" {
			t.Errorf("diagnostic without summary or detail: %s", formatDiag(d))
		}
		if d.Subject == nil {
			// Problems with command-line values have no place in the plan:
			// they are marked in the .vars file.
			found := false
			for _, m := range varMarkers {
				if m.summary == d.Summary {
					m.matched, found = true, true
				}
			}
			if !found {
				t.Errorf("diagnostic without location and no matching marker in %s: %s", varsPath, formatDiag(d))
			}
			continue
		}
		if d.Subject.Filename != path {
			t.Errorf("diagnostic in %q, want %q: %s", d.Subject.Filename, path, formatDiag(d))
			continue
		}
		checkPos(t, src, *d.Subject)
		found, onLine := false, []string(nil)
		for _, m := range markers {
			if m.line == d.Subject.Start.Line {
				onLine = append(onLine, m.summary)
				if m.summary == d.Summary {
					m.matched, found = true, true
				}
			}
		}
		if !found {
			t.Errorf("unexpected diagnostic (markers on line %d: %q):\n\t%s", d.Subject.Start.Line, onLine, formatDiag(d))
		}
	}
	for _, m := range append(markers, varMarkers...) {
		if !m.matched {
			t.Errorf("%s:%d: expected %q, got no such diagnostic on that line", m.file, m.line, m.summary)
		}
	}

	var got strings.Builder
	for _, d := range diags {
		got.WriteString(formatDiag(d))
		got.WriteByte('\n')
	}
	golden := base + ".golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./plan -update to create it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("diagnostics differ from %s (run go test ./plan -update and review the diff)\n--- got\n%s--- want\n%s", golden, got.String(), want)
	}
}
