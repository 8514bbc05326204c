package plan_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/steptype"
)

type nestedOutput struct {
	Tables []nestedTable `json:"tables"`
	Extra  []any         `json:"extra"`
	ByName map[string]struct {
		Rows int `json:"rows"`
	} `json:"by_name"`
}

type nestedTable struct {
	Name    string `json:"name"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
}

func nestedTypes() *steps.Registry {
	return steps.New(map[string]steptype.Type{
		"nested": steptype.Def[noArgs, nestedOutput]{IsReadOnly: true, Fn: fail[noArgs, nestedOutput]},
	})
}

func predicatePlan(that string) string {
	return "check \"c\" {\n  uses = \"nested\"\n  assert { that = " + quoteHCL(that) + " }\n}\n"
}

func quoteHCL(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// errorsOf renders a load's errors as "line:col: detail".
func errorsOf(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		loc := "?"
		if d.Subject != nil {
			loc = fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
		}
		out = append(out, loc+": "+d.Detail)
	}
	return out
}

// TestNestedPredicateFields: a predicate over a list field of an element
// checks its fields against that list's element; # is the innermost
// element; #index, #acc and elements of unknown shape say nothing.
func TestNestedPredicateFields(t *testing.T) {
	for _, tt := range []struct{ that, want string }{
		{"all(output.tables, {all(.columns, {.nme != ''})})", `3:55: output.tables[…].columns[…] has no field "nme". Did you mean "name"? Its fields are: name, type.`},
		{"all(output.tables, {any(#.colums, {.name == 'id'})})", `3:44: output.tables[…] has no field "colums". Did you mean "columns"? Its fields are: columns, name.`},
		{"any(output.tables, {.columns[0].tpye == 'int'})", `3:40: output.tables[…].columns[…] has no field "tpye". Did you mean "type"? Its fields are: name, type.`},
		{"all(output.tables, {all(.columns, {#.name != '' && .type != ''}) && .name != ''})", ""},
		{"len(map(output.tables, {.name + string(#index)})) > 0", ""},
		{"reduce(output.tables, {#acc + len(.columns)}, 0) > 0", ""},
		{"all(output.extra, {.anything == 1})", ""},
		{"all(map(output.tables, {.columns}), {len(#) > 0})", ""},
		{"all(map(output.tables, {.name}), {# != ''})", ""},
		{"len(filter(output.tables, {.name in map(output.tables, {.name})})) > 0", ""},
		{"output.by_name['x'].rows > 0", ""},
		{"all(output.tables, {output.by_name[.name].rows > 0})", ""},
		{"all(output.tables, {output.by_name[.nam].rows > 0})", `3:55: output.tables[…] has no field "nam". Did you mean "name"? Its fields are: columns, name.`},
		{"all(map(output.tables, {.columns}), {all(#, {.nme != ''})})", `3:65: output.tables[…].columns[…] has no field "nme". Did you mean "name"? Its fields are: name, type.`},
	} {
		t.Run(tt.that, func(t *testing.T) {
			_, diags := loadSource(t, "plan.hcl", predicatePlan(tt.that), nestedTypes())
			got := strings.Join(errorsOf(diags), "\n")
			if got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestPredicateFieldsOfBuiltinTypes: issue #16's typo in a compare check
// (it validated, and the check held while a table differed) and the
// README's example, with the built-in types.
func TestPredicateFieldsOfBuiltinTypes(t *testing.T) {
	const plan = `
database "a" { url = "postgres://app@a.example.com/app" }
database "b" { url = "postgres://app@b.example.com/app" }
check "same" {
  uses   = "compare"
  source = database.a
  target = database.b
  data   = "checksum"
  assert { that = %s }
  assert {
    that    = "all(output.tables, {.source_rows == .target_rows})"
    message = "row counts differ: {{ filter(output.tables, {.source_rows != .target_rows}) }}"
  }
}
`
	for _, tt := range []struct{ that, want string }{
		{"none(output.checksums, {.mtch == false})", `9:44: output.checksums[…] has no field "mtch". Did you mean "match"?`},
		{"none(output.checksums, {.match == false})", ""},
		{"all(output.checksums, {.match || len(.differing_keys) > 0})", ""},
	} {
		t.Run(tt.that, func(t *testing.T) {
			_, diags := loadSource(t, "plan.hcl", fmt.Sprintf(plan, quoteHCL(tt.that)), steps.Builtin())
			got := strings.Join(errorsOf(diags), "\n")
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
