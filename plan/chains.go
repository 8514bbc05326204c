package plan

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/hashicorp/hcl/v2"
)

type chainCollector struct {
	nodes   []ast.Node
	covered map[ast.Node]bool
	// computed says the expression has a predicate ({.rows > 0}) or reads
	// a field of a computed value (first(output.tables).rows).
	computed bool
}

type pathElem struct {
	name    string
	isIndex bool
	dynamic bool
	loc     file.Location // of the name or index, in runes
}

// chainPath reads output.tables[0].name as a root (with its location) and a
// path; ok is false for chains that do not start at an identifier.
func chainPath(n ast.Node) (string, file.Location, []pathElem, bool) {
	switch v := n.(type) {
	case *ast.IdentifierNode:
		return v.Value, v.Location(), nil, true
	case *ast.PointerNode:
		// # (the element a predicate runs on), #index, #acc.
		return "#" + v.Name, v.Location(), nil, true
	case *ast.MemberNode:
		root, rootLoc, path, ok := chainPath(v.Node)
		if !ok {
			return "", rootLoc, nil, false
		}
		loc := v.Location()
		switch p := v.Property.(type) {
		case *ast.StringNode:
			path = append(path, pathElem{name: p.Value, loc: loc})
		case *ast.IntegerNode:
			path = append(path, pathElem{isIndex: true, loc: loc})
		default:
			path = append(path, pathElem{isIndex: true, dynamic: true, loc: loc})
		}
		return root, rootLoc, path, true
	}
	return "", file.Location{}, nil, false
}

// chain is one value an expression reads: output.tables[0].name.
type chain struct {
	text    string // as expr-lang prints it
	root    string
	rootLoc file.Location
	path    []pathElem
}

// readChains lists the values an expression reads from the assertion
// roots (output, steps, checks, var), outermost chains only.
// computed says whether it has predicates or reads fields of computed
// values, which checkPredicates checks.
func readChains(node ast.Node) (chains []chain, computed bool) {
	c := &chainCollector{covered: map[ast.Node]bool{}}
	ast.Walk(&node, c)
	var out []chain
	for _, n := range c.nodes {
		if c.covered[n] {
			continue
		}
		root, rootLoc, path, ok := chainPath(n)
		if !ok || !assertRoots[root] {
			continue
		}
		out = append(out, chain{text: n.String(), root: root, rootLoc: rootLoc, path: path})
	}
	return out, c.computed
}

// walkExprPath checks a path against a shape and returns the shape at its
// end (nil when not known before the run); a problem is reported from the
// start of the chain (at from) to the name or index that does not fit.
func walkExprPath(shape *Shape, path []pathElem, base string, from int, rangeOf func(from, to int) hcl.Range) (*Shape, *hcl.Diagnostic) {
	cur := base
	for _, p := range path {
		if shape == nil || p.dynamic {
			return nil, nil
		}
		next, d := stepShape(shape, p.name, p.isIndex, cur, hcl.Range{})
		if d != nil {
			d.Subject = rangeOf(from, p.loc.To).Ptr()
			return nil, d
		}
		shape = next
		if p.isIndex {
			cur += "[…]"
		} else {
			cur += "." + p.name
		}
	}
	return shape, nil
}
