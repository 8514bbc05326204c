package cli

func runPlan(c *CLI, args []string) int {
	fs := c.newFlags("plan", "[flags] PLAN")
	var vf varFlags
	vf.register(fs)
	var targets multiFlag
	fs.Var(&targets, "target", "show only this step and what it depends on (repeatable)")
	pos, code, ok := c.parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	path, ok := c.planPath(pos)
	if !ok {
		return ExitUsage
	}
	p, ok := c.load(path, vf)
	if !ok {
		return ExitUsage
	}
	sel, ok := c.selectTargets(p, targets)
	if !ok {
		return ExitUsage
	}
	writePlan(c.stdout, p, sel, nil)
	return ExitOK
}
