package plan_test

import (
	"context"
	"errors"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/steptype"
)

// rowCountsArgs and rowCountsOutput describe a small read-only fake type
// whose output holds a list, so that tests can reach list fields.
type rowCountsArgs struct {
	Database *pgkit.Database `hcl:"database"`
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

var rowCountsType = steptype.Def[rowCountsArgs, rowCountsOutput]{
	Summary:    "Counts rows (test fake).",
	IsReadOnly: true,
	Fn: func(context.Context, *steptype.Env, *rowCountsArgs) (*rowCountsOutput, error) {
		return nil, errors.New("row_counts: a test fake")
	},
}

// testTypes are the built-in exec and sleep types (their arguments are
// settled) and the fake row_counts. A fixed set, so that messages listing
// the types do not change when a built-in type is added.
func testTypes() *steps.Registry {
	builtin := steps.Builtin()
	types := map[string]steptype.Type{"row_counts": rowCountsType}
	for _, name := range []string{"exec", "sleep"} {
		t, ok := builtin.Type(name)
		if !ok {
			panic("no built-in step type " + name)
		}
		types[name] = t
	}
	return steps.New(types)
}
