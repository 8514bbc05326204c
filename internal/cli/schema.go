package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/planrun/planrun/schemas"
)

// runSchema prints the plan file's JSON Schema, or a step type's arguments
// and output schemas.
func runSchema(c *CLI, args []string) int {
	fs := c.newFlags("schema", "[--list] [TYPE]")
	list := fs.Bool("list", false, "list the schema files")
	pos, code, ok := c.parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	if *list {
		for _, name := range schemas.Names() {
			fmt.Fprintln(c.stdout, name)
		}
		return ExitOK
	}
	if len(pos) == 0 {
		raw, _ := schemas.Get("plan.json")
		c.stdout.Write(raw)
		return ExitOK
	}
	name := pos[0]
	argsRaw, ok := schemas.Get("steps/" + name + ".args.json")
	if !ok {
		fmt.Fprintf(c.stderr, "planrun schema: no step type %q; the types are: %s\n", name, strings.Join(c.registry.Names(), ", "))
		return ExitUsage
	}
	outRaw, _ := schemas.Get("steps/" + name + ".output.json")
	out, err := json.MarshalIndent(map[string]json.RawMessage{"args": argsRaw, "output": outRaw}, "", "  ")
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun schema: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(c.stdout, "%s\n", out)
	return ExitOK
}
