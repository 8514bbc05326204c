package steps

import (
	"context"
	"errors"
)

// SequencesArgs are the arguments of sequences.
type SequencesArgs struct{}

// SequencesOutput is the output of sequences.
type SequencesOutput struct{}

// sequencesType is being written; it fails when run until then.
var sequencesType = Def[SequencesArgs, SequencesOutput]{
	Summary: "(in progress)",
	Fn: func(context.Context, *Env, *SequencesArgs) (*SequencesOutput, error) {
		return nil, errors.New("sequences: not built yet")
	},
}
