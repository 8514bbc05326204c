package cli

import (
	"fmt"
	"io/fs"

	"github.com/planrun/planrun/internal/library"
)

// runGet fetches the plan's git libraries at their refs, checks them
// against planrun.lock.hcl (a moved tag is an error), pins new ones, and
// loads the plan to report problems inside the libraries.
func runGet(c *CLI, args []string) int {
	flags := c.newFlags("get", "[-upgrade] [flags] PLAN")
	var vf varFlags
	vf.register(flags)
	upgrade := flags.Bool("upgrade", false, "accept refs that moved since the lock file was written, and update it")
	pos, code, ok := c.parseFlags(flags, args, 1)
	if !ok {
		return code
	}
	path, ok := c.planPath(pos)
	if !ok {
		return ExitUsage
	}
	resolver, err := library.NewResolver(planDir(path))
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun get: %v\n", err)
		return ExitFailed
	}
	var fetchErr error
	changed := false
	var lines []string
	fetching := func(name, source string) (fs.FS, string, error) {
		src, err := library.ParseSource(source)
		if err == nil && src.Kind == library.Git {
			ch, err := resolver.Get(c.ctx, name, source, *upgrade)
			if err != nil {
				if fetchErr == nil {
					fetchErr = err
				}
				return nil, "", err
			}
			entry := resolver.Lock.Entries[name]
			state := "unchanged"
			if ch {
				state = "pinned"
				changed = true
			}
			lines = append(lines, fmt.Sprintf("library %q: %s at commit %.12s (%s)", name, source, entry.Commit, state))
		} else if err == nil {
			lines = append(lines, fmt.Sprintf("library %q: %s (nothing to fetch)", name, source))
		}
		return resolver.Resolve(name, source)
	}
	p, loaded := c.loadWith(path, vf, fetching)
	for _, l := range lines {
		fmt.Fprintln(c.stdout, l)
	}
	if fetchErr != nil {
		return ExitFailed
	}
	if changed {
		if err := resolver.Lock.Write(); err != nil {
			fmt.Fprintf(c.stderr, "planrun get: %v\n", err)
			return ExitFailed
		}
		fmt.Fprintf(c.stdout, "Wrote %s.\n", relPath(resolver.Lock.Path))
	}
	if !loaded {
		return c.unlessInterrupted(ExitUsage)
	}
	n := fmt.Sprintf("%d libraries", len(p.Libraries))
	if len(p.Libraries) == 1 {
		n = "1 library"
	}
	fmt.Fprintf(c.stdout, "Plan %q loads with %s.\n", p.Name, n)
	return ExitOK
}
