package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// ExecArgs are the arguments of exec.
type ExecArgs struct {
	Command      []string          `hcl:"command,optional" doc:"The program and its arguments, run without a shell. Give command or shell."`
	Shell        string            `hcl:"shell,optional" doc:"A script run with /bin/sh -c. Give command or shell."`
	Env          map[string]string `hcl:"env,optional" doc:"Extra environment variables for the command."`
	InheritEnv   *bool             `hcl:"inherit_env,optional" doc:"Pass planrun's own environment to the command (default true)."`
	Dir          string            `hcl:"dir,optional" doc:"Working directory, relative to the plan's directory (default: the plan's directory)."`
	Stdin        string            `hcl:"stdin,optional" doc:"Text written to the command's standard input."`
	OutputFormat string            `hcl:"output_format,optional" doc:"text (default) or json: parse standard output as JSON into output.json."`
	AllowFailure bool              `hcl:"allow_failure,optional" doc:"A non-zero exit code does not fail the step; assertions can read output.exit_code."`
}

// ExecOutput is the output of exec.
type ExecOutput struct {
	ExitCode int     `json:"exit_code" doc:"The command's exit code."`
	Stdout   string  `json:"stdout" doc:"Standard output (at most 1 MiB; the rest is dropped)."`
	Stderr   string  `json:"stderr" doc:"Standard error (at most 1 MiB)."`
	JSON     any     `json:"json" doc:"Standard output parsed as JSON, with output_format = \"json\"."`
	Seconds  float64 `json:"seconds" doc:"How long the command ran."`
}

var Type = steptype.Def[ExecArgs, ExecOutput]{
	Summary:   "Runs a command (argv or a shell script) and captures its exit code and output.",
	Fn:        runExec,
	ArgChecks: map[string]func(string) error{"output_format": steptype.CheckOneOf("", "text", "json")},
	ArgSet: func(given map[string]bool) (string, error) {
		switch {
		case given["command"] && given["shell"]:
			return "shell", errors.New("give command (a list) or shell (a script), not both")
		case !given["command"] && !given["shell"]:
			return "", errors.New("give command (a list) or shell (a script)")
		}
		return "", nil
	},
}

func runExec(ctx context.Context, env *steptype.Env, a *ExecArgs) (*ExecOutput, error) {
	var argv []string
	switch {
	case len(a.Command) > 0 && a.Shell != "":
		return nil, errors.New("exec: give command or shell, not both")
	case len(a.Command) > 0:
		argv = a.Command
	case a.Shell != "":
		argv = []string{"/bin/sh", "-c", a.Shell}
	default:
		return nil, errors.New("exec: give command (a list) or shell (a script)")
	}
	switch a.OutputFormat {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf("exec: output_format is \"text\" or \"json\", not %q", a.OutputFormat)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = env.PlanDir
	if a.Dir != "" {
		cmd.Dir = a.Dir
		if !filepath.IsAbs(a.Dir) {
			cmd.Dir = filepath.Join(env.PlanDir, a.Dir)
		}
	}
	cmd.Env = commandEnv(a.InheritEnv == nil || *a.InheritEnv, a.Env)
	if a.Stdin != "" {
		cmd.Stdin = strings.NewReader(a.Stdin)
	}
	// Its own process group, so that cancelling kills the children a shell
	// started; and killed if planrun dies, so that a crashed run leaves no
	// command running while the next apply resumes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout := &capped{limit: steptype.MaxCapture}
	stderr := &capped{limit: steptype.MaxCapture}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err := cmd.Run()
	out := &ExecOutput{Stdout: stdout.String(), Stderr: stderr.String(), Seconds: time.Since(start).Seconds()}
	if ctx.Err() != nil {
		// The exit status decides, not whether ctx is done by now: a
		// command that ran to its end did its work, and calling it
		// cancelled would make a resume run it again.
		ps := cmd.ProcessState
		if ps == nil || !ps.Exited() {
			return out, fmt.Errorf("exec %s: %w", argv[0], ctx.Err())
		}
		err = nil
		if !ps.Success() {
			err = &exec.ExitError{ProcessState: ps}
		}
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		out.ExitCode = exitErr.ExitCode()
		if !a.AllowFailure {
			return out, fmt.Errorf("exec %s: exit code %d%s", argv[0], out.ExitCode, lastLine(out.Stderr))
		}
	case err != nil && cmd.ProcessState == nil:
		return out, steptype.Refused(fmt.Errorf("exec %s: %w", argv[0], err)) // it never started
	case err != nil:
		return out, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	if a.OutputFormat == "json" {
		if err := json.Unmarshal([]byte(out.Stdout), &out.JSON); err != nil {
			return out, fmt.Errorf("exec %s: output_format is json, but standard output is not JSON: %w", argv[0], err)
		}
	}
	return out, nil
}

func commandEnv(inherit bool, extra map[string]string) []string {
	var env []string
	if inherit {
		env = os.Environ()
	} else {
		env = []string{"PATH=" + os.Getenv("PATH")}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}

// capped keeps the first limit bytes written and counts the rest.
type capped struct {
	buf     bytes.Buffer
	limit   int
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.limit - c.buf.Len()
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += len(p) - room
	return len(p), nil
}

func (c *capped) String() string {
	if c.dropped > 0 {
		return c.buf.String() + fmt.Sprintf("\n[planrun: %d more bytes dropped]", c.dropped)
	}
	return c.buf.String()
}
