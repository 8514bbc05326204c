package plan_test

import (
	"context"
	"errors"

	"github.com/planrun/planrun/steps"
)

// rowCountsArgs and rowCountsOutput describe a small read-only fake type
// whose output holds a list, so that tests can reach list fields.
type rowCountsArgs struct {
	Database *steps.Database `hcl:"database"`
	Schema   string          `hcl:"schema,optional"`
}

type rowCountsOutput struct {
	Tables []tableCount `json:"tables"`
	Total  int          `json:"total"`
}

type tableCount struct {
	Name string `json:"name"`
	Rows int    `json:"rows"`
}

var rowCountsType = steps.Def[rowCountsArgs, rowCountsOutput]{
	Summary:    "Counts rows (test fake).",
	IsReadOnly: true,
	Fn: func(context.Context, *steps.Env, *rowCountsArgs) (*rowCountsOutput, error) {
		return nil, errors.New("row_counts: a test fake")
	},
}

// testTypes are the built-in step types plus the fakes the corpus uses.
func testTypes() *steps.Registry {
	return steps.Builtin().With(map[string]steps.Type{"row_counts": rowCountsType})
}
