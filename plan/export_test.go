package plan

import (
	"context"

	"github.com/hashicorp/hcl/v2"
)

// LoadWithLimits loads with smaller MaxSteps and MaxLocals, for the tests
// of the refusals.
func LoadWithLimits(path string, opts Options, steps, locals int) (*Plan, hcl.Diagnostics) {
	return load(context.Background(), path, opts, limits{steps: steps, locals: locals})
}
