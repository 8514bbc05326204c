package approve_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
)

const approvePlan = `
check "reachable" {
  uses    = "approve"
  message = "Is the maintenance page up?"
}

step "cutover" {
  uses       = "approve"
  message    = "Switch DATABASE_URL to RDS?"
  depends_on = [check.reachable]
  %s
}

step "switch" {
  uses    = "exec"
  command = ["echo", "approved by ${step.cutover.output.approved_by}"]
}
`

// scriptedPrompt answers each question with the next answer and records
// the questions.
type scriptedPrompt struct {
	mu        sync.Mutex
	answers   []string
	questions []string
}

func (s *scriptedPrompt) ask(ctx context.Context, question string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.questions = append(s.questions, question)
	if len(s.answers) == 0 {
		return "", errors.New("no answer scripted for this question")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

func TestApproveEndToEndYes(t *testing.T) {
	prompt := &scriptedPrompt{answers: []string{"yes", "yes"}}
	res, _ := e2etest.Apply(t, "plan.hcl", strings.Replace(approvePlan, "%s", "", 1), engine.Options{Prompt: prompt.ask})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	want := []string{"Is the maintenance page up? Type yes to continue: ", "Switch DATABASE_URL to RDS? Type yes to continue: "}
	if strings.Join(prompt.questions, "|") != strings.Join(want, "|") {
		t.Errorf("questions %q", prompt.questions)
	}
	out := e2etest.OutputOf(t, res, "step.cutover")
	by, _ := out["approved_by"].(string)
	if out["approved"] != true || by == "" || by == "--auto-approve" || out["at"] == "" {
		t.Errorf("cutover output %v", out)
	}
	if got := e2etest.OutputOf(t, res, "step.switch")["stdout"]; got != "approved by "+by+"\n" {
		t.Errorf("switch: stdout %q", got)
	}
}

func TestApproveEndToEndNo(t *testing.T) {
	prompt := &scriptedPrompt{answers: []string{"yes", "no"}}
	res, _ := e2etest.Apply(t, "plan.hcl", strings.Replace(approvePlan, "%s", "", 1), engine.Options{Prompt: prompt.ask})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if err := res.Steps["step.cutover"].Err; err == nil || !strings.Contains(err.Error(), `step.cutover: approve: not approved (the answer was "no"`) {
		t.Errorf("cutover: %v", err)
	}
	if s := res.Steps["step.switch"].Status; s != event.StatusNotRun {
		t.Errorf("switch ran after a no: %s", s)
	}
}

func TestApproveEndToEndAutoApprove(t *testing.T) {
	prompt := &scriptedPrompt{} // any question would fail the step
	res, _ := e2etest.Apply(t, "plan.hcl", strings.Replace(approvePlan, "%s", "", 1), engine.Options{AutoApprove: true, Prompt: prompt.ask})
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if len(prompt.questions) != 0 {
		t.Errorf("asked %q despite --auto-approve", prompt.questions)
	}
	if got := e2etest.OutputOf(t, res, "step.switch")["stdout"]; got != "approved by --auto-approve\n" {
		t.Errorf("switch: stdout %q", got)
	}
}

func TestApproveEndToEndNotInteractive(t *testing.T) {
	res, _ := e2etest.Apply(t, "plan.hcl", strings.Replace(approvePlan, "%s", "", 1), engine.Options{})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	err := res.Steps["check.reachable"].Err
	if err == nil || !strings.Contains(err.Error(), "not interactive") || !strings.Contains(err.Error(), "--auto-approve") {
		t.Errorf("reachable: %v", err)
	}
}

func TestApproveEndToEndNoAnswerInTime(t *testing.T) {
	// The check is approved; nobody answers the cutover question, until
	// the step's timeout cancels it.
	prompt := func(ctx context.Context, question string) (string, error) {
		if strings.HasPrefix(question, "Is the maintenance page up?") {
			return "yes", nil
		}
		<-ctx.Done()
		return "", ctx.Err()
	}
	res, _ := e2etest.Apply(t, "plan.hcl", strings.Replace(approvePlan, "%s", `timeout = "100ms"`, 1), engine.Options{Prompt: prompt})
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	err := res.Steps["step.cutover"].Err
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms: approve: no answer: context deadline exceeded") {
		t.Errorf("cutover: %v", err)
	}
}
