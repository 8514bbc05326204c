package approve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// answeringPrompt is a Prompt that records the question and types answer.
func answeringPrompt(answer string, asked *string) func(context.Context, string) (string, error) {
	return func(_ context.Context, question string) (string, error) {
		*asked = question
		return answer, nil
	}
}

func TestApproveYes(t *testing.T) {
	var asked string
	before := time.Now().UTC().Add(-time.Second)
	out, err := runApprove(context.Background(), &steptype.Env{Prompt: answeringPrompt("yes\n", &asked)}, &ApproveArgs{Message: "Switch DATABASE_URL to RDS?"})
	if err != nil {
		t.Fatal(err)
	}
	if asked != "Switch DATABASE_URL to RDS? Type yes to continue: " {
		t.Errorf("asked %q", asked)
	}
	if !out.Approved || out.ApprovedBy == "" || out.ApprovedBy == autoApprover {
		t.Errorf("output = %+v", out)
	}
	at, err := time.Parse(time.RFC3339, out.At)
	if err != nil || !strings.HasSuffix(out.At, "Z") || at.Before(before) {
		t.Errorf("at = %q (%v)", out.At, err)
	}
}

func TestApproveDefaultMessage(t *testing.T) {
	var asked string
	if _, err := runApprove(context.Background(), &steptype.Env{Prompt: answeringPrompt("yes", &asked)}, &ApproveArgs{}); err != nil {
		t.Fatal(err)
	}
	if asked != "Continue? Type yes to continue: " {
		t.Errorf("asked %q", asked)
	}
}

func TestApproveAnythingButYesFails(t *testing.T) {
	for _, answer := range []string{"no", "y", "YES", "", "yes please"} {
		var asked string
		out, err := runApprove(context.Background(), &steptype.Env{Prompt: answeringPrompt(answer, &asked)}, &ApproveArgs{})
		if err == nil || !strings.Contains(err.Error(), "approve: not approved") {
			t.Errorf("answer %q: err = %v", answer, err)
		}
		if out == nil || out.Approved {
			t.Errorf("answer %q: output = %+v", answer, out)
		}
	}
}

func TestApproveNotInteractive(t *testing.T) {
	_, err := runApprove(context.Background(), &steptype.Env{}, &ApproveArgs{})
	if err == nil || !strings.Contains(err.Error(), "not interactive") || !strings.Contains(err.Error(), "--auto-approve") {
		t.Fatalf("err = %v", err)
	}
}

func TestApproveAutoApprove(t *testing.T) {
	// --auto-approve wins even when a terminal could be asked.
	prompt := func(context.Context, string) (string, error) {
		t.Error("asked despite --auto-approve")
		return "", nil
	}
	out, err := runApprove(context.Background(), &steptype.Env{AutoApprove: true, Prompt: prompt}, &ApproveArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Approved || out.ApprovedBy != "--auto-approve" || out.Seconds != 0 {
		t.Errorf("output = %+v", out)
	}
}

func TestApproveContextCancelled(t *testing.T) {
	// The prompt blocks like a terminal nobody answers, until ctx is done.
	prompt := func(ctx context.Context, _ string) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	out, err := runApprove(ctx, &steptype.Env{Prompt: prompt}, &ApproveArgs{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "approve: no answer") {
		t.Fatalf("err = %v", err)
	}
	if out.Approved || time.Since(start) > time.Second {
		t.Errorf("output %+v after %s", out, time.Since(start))
	}
}

func TestApprovePromptError(t *testing.T) {
	prompt := func(context.Context, string) (string, error) { return "", errors.New("stdin closed") }
	_, err := runApprove(context.Background(), &steptype.Env{Prompt: prompt}, &ApproveArgs{})
	if err == nil || !strings.Contains(err.Error(), "approve: reading the answer: stdin closed") {
		t.Fatalf("err = %v", err)
	}
}
