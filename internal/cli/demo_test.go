package cli_test

import (
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a user would, for both
// runbooks (small data: the runbooks themselves are tested at full size).
// The demo starts and removes its own two servers.
func TestDemo(t *testing.T) {
	for _, example := range []string{"heroku-to-rds", "zero-downtime", "heroku-zero-downtime"} {
		t.Run(example, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, "demo", "--size", "small", "--example", example)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			for _, want := range []string{"Applying examples/" + example + "/plan.hcl", " succeeded in ", "Demo finished in", "(exit code 0)"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	code, _, errOut := runCLI(t, "demo", "--example", "blue-green")
	if code != 2 || !strings.Contains(errOut, `--example is heroku-to-rds, zero-downtime or heroku-zero-downtime, not "blue-green"`) {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
