package plan

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/hashicorp/hcl/v2"
)

// literalCompare is a value read from a root (output.status) compared with
// a literal ("200"): when the output's shape says the value is of another
// kind, the comparison can never hold (==) or always does (!=), whatever
// the run, which is a mistake worth a diagnostic before it.
type literalCompare struct {
	read    string // the value read, as a chain's text (see readChains)
	op      string
	kind    Kind   // the literal's
	literal string // as expr-lang prints it
	loc     file.Location
}

var comparisonOps = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

type compareCollector struct{ out []literalCompare }

func literalCompares(node ast.Node) []literalCompare {
	c := &compareCollector{}
	ast.Walk(&node, c)
	return c.out
}

// checkLiteralCompares reports comparisons of a value whose shape is known
// (shapes, from checkAssertReads) with a literal of another kind.
func (l *loader) checkLiteralCompares(compares []literalCompare, shapes map[string]*Shape, hclExpr hcl.Expression, src string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, c := range compares {
		shape := shapes[c.read]
		if shape == nil || (shape.Kind != KindNumber && shape.Kind != KindString && shape.Kind != KindBool) || shape.Kind == c.kind {
			continue
		}
		to := c.loc.To
		if to <= c.loc.From {
			to = c.loc.From + len([]rune(c.literal))
		}
		rng := l.stringRange(hclExpr, src, runeOffset(src, c.loc.From), runeOffset(src, to))
		verdict := "is never true"
		if c.op == "!=" {
			verdict = "is always true"
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Comparison of different kinds",
			Detail: fmt.Sprintf("%s is a %s and %s a %s: %s %s %s %s. Compare it with a %s.",
				c.read, shape.Kind, c.literal, c.kind, c.read, c.op, c.literal, verdict, shape.Kind),
			Subject: rng.Ptr(),
		})
	}
	return diags
}
