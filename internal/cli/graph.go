package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/planrun/planrun/plan"
)

func runGraph(c *CLI, args []string) int {
	fs := c.newFlags("graph", "[--format dot|mermaid] [flags] PLAN")
	var vf varFlags
	vf.register(fs)
	format := fs.String("format", "dot", "output format: dot or mermaid")
	p, _, code, ok := c.parsePlan(fs, args, &vf, ExitUsage)
	if !ok {
		return code
	}
	if *format != "dot" && *format != "mermaid" {
		fmt.Fprintf(c.stderr, "planrun graph: --format is dot or mermaid, not %q\n", *format)
		return ExitUsage
	}
	if *format == "mermaid" {
		writeMermaid(c.stdout, p)
	} else {
		writeDOT(c.stdout, p)
	}
	return ExitOK
}

// writeDOT prints the DAG for Graphviz; edges point in execution order.
func writeDOT(w io.Writer, p *plan.Plan) {
	fmt.Fprintf(w, "digraph %q {\n", p.Name)
	fmt.Fprintln(w, "  rankdir = \"TB\";")
	fmt.Fprintln(w, "  node [shape = \"box\"];")
	for _, st := range p.Steps {
		attrs := fmt.Sprintf("label = %q", st.Addr+"\n("+st.Uses+")")
		if st.Kind == plan.KindCheck {
			attrs += ", style = \"rounded,dashed\""
		}
		fmt.Fprintf(w, "  %q [%s];\n", st.Addr, attrs)
	}
	for _, e := range p.Graph.Edges() {
		fmt.Fprintf(w, "  %q -> %q;\n", e[0], e[1])
	}
	fmt.Fprintln(w, "}")
}

// writeMermaid prints the DAG as a Mermaid flowchart (renders in GitHub markdown).
func writeMermaid(w io.Writer, p *plan.Plan) {
	fmt.Fprintln(w, "flowchart TD")
	ids := map[string]string{}
	for i, st := range p.Steps {
		id := fmt.Sprintf("n%d", i)
		ids[st.Addr] = id
		label := strings.ReplaceAll(st.Addr+" ("+st.Uses+")", `"`, "'")
		if st.Kind == plan.KindCheck {
			fmt.Fprintf(w, "  %s([\"%s\"])\n", id, label)
		} else {
			fmt.Fprintf(w, "  %s[\"%s\"]\n", id, label)
		}
	}
	for _, e := range p.Graph.Edges() {
		fmt.Fprintf(w, "  %s --> %s\n", ids[e[0]], ids[e[1]])
	}
}
