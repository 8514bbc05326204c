package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/cli"
)

// bigPlanDir writes a plan of about 20 MB: one file of a million locals
// (seconds to parse, the part no context reaches) and a directory of forty
// smaller files (parsed and checked one after another).
func bigPlanDir(t *testing.T) (file, dir string) {
	t.Helper()
	root := t.TempDir()
	locals := func(from, n int) string {
		var b strings.Builder
		b.WriteString("locals {\n")
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "  l%d = \"v%d\"\n", i, i)
		}
		b.WriteString("}\n")
		return b.String()
	}
	file = filepath.Join(root, "big.hcl")
	if err := os.WriteFile(file, []byte(locals(0, 1_000_000)+"step \"s\" {\n  uses  = \"exec\"\n  shell = \"echo ${local.l1}\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "split")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := 0; f < 40; f++ {
		src := locals(f*25_000, 25_000)
		if f == 0 {
			src += "step \"s\" {\n  uses  = \"exec\"\n  shell = \"echo ${local.l1}\"\n}\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part%02d.hcl", f)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return file, dir
}

// TestSignalStopsLoading: a SIGTERM stops every command that loads a plan
// promptly, with the interrupted exit code, however big the plan.
func TestSignalStopsLoading(t *testing.T) {
	file, dir := bigPlanDir(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"validate", []string{"validate", file}},
		{"validate a directory", []string{"validate", dir}},
		{"plan", []string{"plan", file}},
		{"graph", []string{"graph", file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlanrun(t, t.TempDir(), tc.args...)
			time.Sleep(200 * time.Millisecond)
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			code := p.wait(t)
			if took := time.Since(signalled); took > 2*time.Second {
				t.Errorf("exited %s after SIGTERM", took)
			}
			if code != cli.ExitInterrupted {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, cli.ExitInterrupted, p.stdout, p.stderr)
			}
			if got := p.stderr.String(); got != "planrun: interrupted\n" {
				t.Errorf("stderr %q", got)
			}
		})
	}
}

// TestFmtRefusesDeepNesting: fmt's parser would overflow the stack (a
// crash, not an error) on this; it is refused with its place instead.
func TestFmtRefusesDeepNesting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep.hcl")
	if err := os.WriteFile(path, []byte("x = "+strings.Repeat("(", 200000)+"1"+strings.Repeat(")", 200000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"fmt", "--check", path}, strings.NewReader(""), &stdout, &stderr)
	if code != cli.ExitUsage || !strings.Contains(stderr.String(), "Error: Too deeply nested") || !strings.Contains(stderr.String(), path+":1:105") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%.600s", code, &stdout, &stderr)
	}
}
