package steps

import (
	"context"
	"fmt"
	"time"
)

// SleepArgs are the arguments of sleep.
type SleepArgs struct {
	Duration string `hcl:"duration" doc:"How long to wait, such as \"30s\" or \"5m\"."`
}

// SleepOutput is the output of sleep.
type SleepOutput struct {
	Seconds float64 `json:"seconds" doc:"How long it waited."`
}

var sleepType = Def[SleepArgs, SleepOutput]{
	Summary:    "Waits for a while (to let connections drain, caches expire...).",
	IsReadOnly: true,
	Fn: func(ctx context.Context, _ *Env, a *SleepArgs) (*SleepOutput, error) {
		d, err := time.ParseDuration(a.Duration)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("sleep: duration is a duration such as \"30s\", not %q", a.Duration)
		}
		start := time.Now()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return &SleepOutput{Seconds: time.Since(start).Seconds()}, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("sleep: %w", ctx.Err())
		}
	},
}
