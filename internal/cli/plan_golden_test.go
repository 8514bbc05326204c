package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanOutputGolden renders `planrun plan` for every valid test plan and
// compares it with testdata/plan/NAME.golden (go test -update rewrites them;
// review the diff).
func TestPlanOutputGolden(t *testing.T) {
	plans, _ := filepath.Glob("../../plan/testdata/valid/*.*")
	n := 0
	for _, path := range plans {
		ext := filepath.Ext(path)
		if ext != ".hcl" && ext != ".yaml" && ext != ".yml" {
			continue
		}
		name := filepath.Base(path)
		if name == "assertions.hcl" {
			continue // uses a fake step type of the plan package's own tests
		}
		n++
		t.Run(name, func(t *testing.T) {
			args := []string{"plan", path}
			if vars := strings.TrimSuffix(path, ext) + ".vars"; fileExists(vars) {
				raw, _ := os.ReadFile(vars)
				for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
					if line != "" && !strings.HasPrefix(line, "#") {
						args = append(args, "-var", line)
					}
				}
			}
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			abs, _ := filepath.Abs(filepath.Dir(path))
			out = strings.ReplaceAll(out, abs, "$PLAN_DIR")
			golden := filepath.Join("testdata", "plan", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/cli -run TestPlanOutputGolden -update)", err)
			}
			if out != string(want) {
				t.Fatalf("planrun plan %s differs from %s:\n%s", name, golden, out)
			}
		})
	}
	if n < 8 {
		t.Fatalf("only %d valid plans found", n)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
