package cli

import (
	"fmt"
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
		path, p.Name, plural(nSteps, "step"), plural(nChecks, "check"), plural(len(p.Variables), "variable"), plural(len(waves), "wave"))
	return ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
