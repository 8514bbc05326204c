package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/steps"
)

func newTestCLI(stdin string, terminal bool) (*CLI, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &CLI{
		ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		isTerminal: func() bool { return terminal },
		registry:   steps.Builtin(),
		environ:    []string{},
	}, &out, &errOut
}

func writeTestPlan(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const touchPlan = `
step "touch" {
  uses    = "exec"
  command = ["touch", "touched"]
}
`

func TestApplyAsksOnATerminal(t *testing.T) {
	path := writeTestPlan(t, touchPlan)
	c, out, _ := newTestCLI("no\n", true)
	if code := c.Main([]string{"apply", path}); code != ExitFailed {
		t.Fatalf("answering no: exit %d", code)
	}
	if !strings.Contains(out.String(), "+ step.touch (exec)") || !strings.Contains(out.String(), "Apply cancelled.") {
		t.Fatalf("the plan is shown, then the cancellation:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "touched")); err == nil {
		t.Fatal("nothing may run without a yes")
	}
	c, out, _ = newTestCLI("yes\n", true)
	if code := c.Main([]string{"apply", path}); code != ExitOK {
		t.Fatalf("answering yes: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "touched")); err != nil {
		t.Fatal("yes runs the plan")
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		plan string
		args []string
		want int
	}{
		{"ok", touchPlan, nil, ExitOK},
		{"step fails", `step "f" {
  uses    = "exec"
  command = ["false"]
}`, nil, ExitFailed},
		{"rollback fails", `step "a" {
  uses    = "exec"
  command = ["true"]
  rollback {
    uses    = "exec"
    command = ["false"]
  }
}
step "f" {
  uses    = "exec"
  command = ["false"]
  depends_on = [step.a]
}`, nil, ExitRollback},
		{"timeout", `step "s" {
  uses     = "sleep"
  duration = "10s"
}`, []string{"--timeout", "50ms"}, ExitInterrupted},
		{"invalid plan", `step "s" { uses = "nope" }`, nil, ExitUsage},
		{"unknown target", touchPlan, []string{"--target", "nope"}, ExitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTestPlan(t, tc.plan)
			c, out, errOut := newTestCLI("", false)
			args := append([]string{"apply", "--auto-approve", path}, tc.args...)
			if code := c.Main(args); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.want, out, errOut)
			}
		})
	}
}

func TestValidateExitCodes(t *testing.T) {
	c, _, _ := newTestCLI("", false)
	if code := c.Main([]string{"validate", writeTestPlan(t, touchPlan)}); code != ExitOK {
		t.Fatalf("valid: %d", code)
	}
	c, _, errOut := newTestCLI("", false)
	if code := c.Main([]string{"validate", writeTestPlan(t, `step "s" { uses = "nope" }`)}); code != ExitFailed {
		t.Fatalf("invalid: %d", code)
	}
	if !strings.Contains(errOut.String(), "plan.hcl:1:19") {
		t.Fatalf("file:line:col expected:\n%s", errOut)
	}
	c, _, _ = newTestCLI("", false)
	if code := c.Main([]string{"frobnicate"}); code != ExitUsage {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestCancelledQuestionDoesNotSwallowTheNextAnswer(t *testing.T) {
	r, w := io.Pipe()
	c, _, _ := newTestCLI("", true)
	c.stdin = r
	ask := c.prompter()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ask(ctx, "first? "); err == nil {
		t.Fatal("a cancelled question returns an error")
	}
	go func() { _, _ = io.WriteString(w, "yes\n") }()
	got, err := ask(context.Background(), "second? ")
	if err != nil || got != "yes" {
		t.Fatalf("the line typed after the cancellation answers the next question: %q, %v", got, err)
	}
	w.Close()
}

func TestProgressLine(t *testing.T) {
	ev := event.Event{Type: event.StepProgress, Step: "step.copy", Progress: &event.Progress{
		Unit: "bytes", Done: 3 << 30, Total: 4 << 30, Rate: 200 << 20, ETA: 5, Message: "data",
		Items: []event.ProgressItem{{Name: "app.orders", Done: 1, Total: 4}, {Name: "app.items"}},
	}}
	want := "step.copy: data 3.0 GiB of 4.0 GiB (75%) at 200.0 MiB/s, ETA 5.0s — app.orders 25%, app.items"
	if got := progressLine(ev); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	one := event.Event{Type: event.StepProgress, Step: "step.sync", Progress: &event.Progress{Unit: "tables", Done: 1, Total: 1, Message: "initial copy"}}
	if got, want := progressLine(one), "step.sync: initial copy 1 of 1 table (100%)"; got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	var buf bytes.Buffer
	render := textRenderer(&buf, "Applying")
	render(ev)
	render(ev) // throttled when not a terminal
	if strings.Count(buf.String(), "step.copy: data") != 1 {
		t.Fatalf("plain progress lines are throttled:\n%s", buf.String())
	}
}
