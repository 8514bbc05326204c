package sleep

import (
	"context"
	"fmt"
	"time"

	"github.com/planrun/planrun/steps/steptype"
)

// SleepArgs are the arguments of sleep.
type SleepArgs struct {
	Duration string `hcl:"duration" doc:"How long to wait, such as \"30s\" or \"5m\"."`
}

// SleepOutput is the output of sleep.
type SleepOutput struct {
	Seconds float64 `json:"seconds" doc:"How long it waited."`
}

var Type = steptype.Def[SleepArgs, SleepOutput]{
	Summary:    "Waits for a while (to let connections drain, caches expire...).",
	IsReadOnly: true,
	ArgChecks:  map[string]func(string) error{"duration": checkSleepDuration},
	Fn: func(ctx context.Context, _ *steptype.Env, a *SleepArgs) (*SleepOutput, error) {
		d, err := steptype.ParseDuration(a.Duration, true)
		if err != nil {
			return nil, fmt.Errorf("sleep: duration: %w", err)
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

// checkSleepDuration accepts any duration, zero included.
func checkSleepDuration(s string) error {
	_, err := steptype.ParseDuration(s, true)
	return err
}
