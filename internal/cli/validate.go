package cli

import (
	"fmt"

	"github.com/planrun/planrun/internal/plural"
)

func runValidate(c *CLI, args []string) int {
	fs := c.newFlags("validate", "[flags] PLAN")
	var vf varFlags
	vf.register(fs)
	p, path, code, ok := c.parsePlan(fs, args, &vf, ExitFailed)
	if !ok {
		return code
	}
	waves, _ := p.Graph.Waves()
	nSteps, nChecks := 0, 0
	for _, st := range p.Steps {
		if st.Kind == "check" {
			nChecks++
		} else {
			nSteps++
		}
	}
	fmt.Fprintf(c.stdout, "%s is valid: plan %q, %s, %s, %s in %s.\n",
		path, p.Name, plural.Of(nSteps, "step"), plural.Of(nChecks, "check"), plural.Of(len(p.Variables), "variable"), plural.Of(len(waves), "wave"))
	return ExitOK
}
