package approve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// ApproveArgs are the arguments of approve.
type ApproveArgs struct {
	Message string `hcl:"message,optional" doc:"The question shown to the operator (default \"Continue?\"); they must type yes."`
}

// ApproveOutput is the output of approve.
type ApproveOutput struct {
	Approved   bool    `json:"approved" doc:"The operator typed yes (or --auto-approve was given)."`
	ApprovedBy string  `json:"approved_by" doc:"The operating-system user who answered, or \"--auto-approve\"."`
	At         string  `json:"at" doc:"When it was approved (RFC 3339, UTC)."`
	Seconds    float64 `json:"seconds" doc:"How long the operator took to answer."`
}

// autoApprover is approved_by when --auto-approve passed the gate.
const autoApprover = "--auto-approve"

// Type changes nothing, so it may gate a check run too.
var Type = steptype.Def[ApproveArgs, ApproveOutput]{
	Summary:    "A manual gate: asks the operator to type yes on the terminal; --auto-approve passes it.",
	IsReadOnly: true,
	Fn:         runApprove,
}

func runApprove(ctx context.Context, env *steptype.Env, a *ApproveArgs) (*ApproveOutput, error) {
	msg := strings.TrimSpace(a.Message)
	if msg == "" {
		msg = "Continue?"
	}
	if env.AutoApprove {
		env.Logf("approved by --auto-approve: %s", msg)
		return &ApproveOutput{Approved: true, ApprovedBy: autoApprover, At: time.Now().UTC().Format(time.RFC3339)}, nil
	}
	if env.Prompt == nil {
		return nil, errors.New("approve: the run is not interactive, so nobody can approve; run it from a terminal or pass --auto-approve")
	}
	start := time.Now()
	// Prompt owns the terminal read and returns when ctx is done (Ctrl-C, the
	// step's timeout), so there is nothing here to wait for besides it.
	answer, err := env.Prompt(ctx, msg+" Type yes to continue: ")
	now := time.Now()
	out := &ApproveOutput{ApprovedBy: operator(), At: now.UTC().Format(time.RFC3339), Seconds: now.Sub(start).Seconds()}
	if ctx.Err() != nil {
		return out, fmt.Errorf("approve: no answer: %w", ctx.Err())
	}
	if err != nil {
		return out, fmt.Errorf("approve: reading the answer: %w", err)
	}
	// Only the whole word, like Terraform: "y" or "Yes, but..." is not a yes.
	if strings.TrimSpace(answer) != "yes" {
		return out, fmt.Errorf("approve: not approved (the answer was %q, not \"yes\")", env.Cut(strings.ToValidUTF8(strings.TrimSpace(answer), ""), 40))
	}
	out.Approved = true
	return out, nil
}

// operator names who answered, for the journal: the OS user, or $USER when
// the user database cannot say (some containers).
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return "unknown"
}
