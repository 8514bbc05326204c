package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/planrun/planrun/internal/sampleapp"
)

// TestExamplesAreValid loads every example plan, as a user would first.
func TestExamplesAreValid(t *testing.T) {
	plans, _ := filepath.Glob("../../examples/*/plan.hcl")
	if len(plans) < 2 {
		t.Fatalf("examples: %v", plans)
	}
	for _, p := range plans {
		code, out, errOut := runCLI(t, "validate", p, "-var", "source_url=postgres://u:p@h/a", "-var", "target_url=postgres://u:q@h/b")
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", p, code, out, errOut)
		}
	}
}

// TestCheckLibraryExample runs the check-library example against a copy of
// the sample shop: every check holds, and a broken invariant is caught.
func TestCheckLibraryExample(t *testing.T) {
	ctx := context.Background()
	src, dst := Source.FreshDB(t), Target.FreshDB(t)
	if err := sampleapp.Seed(ctx, src, sampleapp.Small); err != nil {
		t.Fatal(err)
	}
	// The target is a real copy (seeding it separately would give its large
	// objects other OIDs than the source's).
	copyPlan := filepath.Join(t.TempDir(), "copy.hcl")
	if err := os.WriteFile(copyPlan, []byte(`
variable "src" { sensitive = true }
variable "dst" { sensitive = true }
database "old" { url = var.src }
database "new" { url = var.dst }
step "copy" {
  uses   = "copy"
  source = database.old
  target = database.new
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "apply", "--auto-approve", copyPlan, "-var", "src="+src, "-var", "dst="+dst); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	plan := "../../examples/check-library/plan.hcl"
	vars := []string{"-var", "source_url=" + src, "-var", "target_url=" + dst, "-var", "max_open_orders=1000"}
	code, out, errOut := runCLI(t, append([]string{"check", plan}, vars...)...)
	if code != 0 || !strings.Contains(out, "library.shop.check.open_orders: succeeded") || !strings.Contains(out, "WARN  len(output.constraints.not_valid) == 0") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	execSQL(t, dst, "UPDATE app.orders SET status = 'pending'")
	code, out, _ = runCLI(t, append([]string{"check", plan}, vars...)...)
	if code != 1 || !strings.Contains(out, "FAIL  output.rows[0].open <= var.max_open_orders") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// The check run leaves no record behind (nothing to resume).
	if _, err := os.Stat(filepath.Join(filepath.Dir(plan), ".planrun")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(filepath.Dir(plan), ".planrun"))
		for _, e := range entries {
			if e.Name() != "libs" {
				t.Errorf("check wrote %s", e.Name())
			}
		}
	}
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
