package plan_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

func TestScratch(t *testing.T) {
	f := os.Getenv("SCRATCH")
	if f == "" {
		t.Skip()
	}
	var vars []string
	if v := os.Getenv("SCRATCH_VARS"); v != "" {
		vars = strings.Split(v, ",")
	}
	p, diags := plan.Load(f, plan.Options{Types: steps.Builtin(), Environ: []string{}, Vars: vars})
	for _, d := range diags {
		if d.Subject != nil {
			fmt.Printf("%s:%d:%d-%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Subject.End.Line, d.Subject.End.Column, d.Summary, d.Detail)
		} else {
			fmt.Printf("-: %s: %s\n", d.Summary, d.Detail)
		}
	}
	if p != nil && !diags.HasErrors() {
		for _, st := range p.Steps {
			fmt.Println(st.Addr, st.Deps, len(st.Asserts))
		}
	}
}
