package cli_test

import (
	"regexp"
	"strconv"
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

// writerLine is the demo's account of its writer.
var writerLine = regexp.MustCompile(`Writer: ([\d,]+) writes acknowledged \(all ([\d,]+) on the target\), ([\d,]+) refused while fenced; writes were blocked for ([\d.]+) s\.`)

// TestDemoWriter runs the trigger-capture demo with its writer: writes
// acknowledged throughout, all of them on the target, and the window the
// writer was blocked measured and short.
func TestDemoWriter(t *testing.T) {
	code, out, errOut := runCLI(t, "demo", "--size", "small", "--example", "heroku-zero-downtime")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	m := writerLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no writer line:\n%s", out)
	}
	num := func(s string) int {
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	acked, onTarget, refused := num(m[1]), num(m[2]), num(m[3])
	window, err := strconv.ParseFloat(m[4], 64)
	if err != nil {
		t.Fatal(err)
	}
	if acked == 0 || onTarget != acked || refused == 0 || window <= 0 || window >= 3 {
		t.Errorf("acknowledged %d, on the target %d, refused %d, blocked %.2f s: want some writes, all on the target, some refused, blocked under 3 s\n%s",
			acked, onTarget, refused, window, out)
	}
	t.Log(m[0])
}
