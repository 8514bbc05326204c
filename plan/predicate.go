package plan

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/hashicorp/hcl/v2"
)

// predicateBuiltins are the expr-lang builtins whose second argument is a
// predicate run on each element of the first ({.rows > 0}, {#.rows > 0}).
// expr-lang's parser keeps the same list (parser.predicates), unexported.
var predicateBuiltins = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"count": true, "sum": true, "find": true, "findIndex": true, "findLast": true,
	"findLastIndex": true, "groupBy": true, "sortBy": true, "reduce": true,
}

// elemScope is what # stands for inside a predicate: an element of the list
// (shape nil when not known before the run) and how to name it.
type elemScope struct {
	shape *Shape
	desc  string
}

// predChecker checks the fields read inside predicates against the element
// shape of the list they run on; fields read from the roots are checked by
// checkAssertReads, whose shapes (by chain text) it starts from.
type predChecker struct {
	shapes  map[string]*Shape
	rangeOf func(from, to int) hcl.Range // runes of the expression to the file
	diags   hcl.Diagnostics
	// elems names the elements of computed lists whose elements have a
	// name of their own: those of map(output.tables, {.columns}) are
	// output.tables[…].columns.
	elems map[string]string
}

// elemName names an element of the list named desc.
func (c *predChecker) elemName(desc string) string {
	if e, ok := c.elems[desc]; ok {
		return e
	}
	return desc + "[…]"
}

// checkPredicates checks the predicates of a tree as written (before the
// checker and optimizer rewrite it); the expression is at byte offset
// within src, the text of hclExpr.
func (l *loader) checkPredicates(tree ast.Node, shapes map[string]*Shape, hclExpr hcl.Expression, src string, offset int) hcl.Diagnostics {
	if tree == nil {
		return nil
	}
	sub := src[offset:]
	c := &predChecker{shapes: shapes, rangeOf: func(from, to int) hcl.Range {
		return l.stringRange(hclExpr, src, offset+runeOffset(sub, from), offset+runeOffset(sub, to))
	}}
	c.visit(tree, nil)
	return c.diags
}

// visit checks n and returns its shape when known before the run, and how
// to name it in a message.
func (c *predChecker) visit(n ast.Node, scope *elemScope) (*Shape, string) {
	switch v := n.(type) {
	case nil:
		return nil, ""
	case *ast.IdentifierNode:
		return c.shapes[v.Value], v.Value
	case *ast.PointerNode:
		switch v.Name {
		case "":
			if scope == nil {
				return nil, "#"
			}
			return scope.shape, scope.desc
		case "index":
			return &Shape{Kind: KindNumber}, "#index"
		}
		return nil, v.String()
	case *ast.MemberNode:
		if root, rootLoc, path, ok := chainPath(v); ok {
			c.visitDynamic(v, scope)
			switch {
			case assertRoots[root]:
				return c.shapes[v.String()], v.String()
			case root == "#" && scope != nil:
				end, desc, d := walkElemPath(scope.shape, path, scope.desc, rootLoc.From, c.rangeOf)
				if d != nil {
					c.diags = append(c.diags, d)
				}
				return end, desc
			}
			return nil, v.String()
		}
		// A member of a computed value: find(output.tables, {...}).name.
		base, desc := c.visit(v.Node, scope)
		var elem pathElem
		switch p := v.Property.(type) {
		case *ast.StringNode:
			elem = pathElem{name: p.Value, loc: v.Location()}
		case *ast.IntegerNode:
			elem = pathElem{isIndex: true, loc: v.Location()}
		default:
			c.visit(v.Property, scope)
			elem = pathElem{isIndex: true, dynamic: true, loc: v.Location()}
		}
		end, desc, d := walkElemPath(base, []pathElem{elem}, desc, startOf(v), c.rangeOf)
		if d != nil {
			c.diags = append(c.diags, d)
		}
		return end, desc
	case *ast.ChainNode:
		return c.visit(v.Node, scope)
	case *ast.BuiltinNode:
		return c.visitBuiltin(v, scope)
	case *ast.BinaryNode:
		l, _ := c.visit(v.Left, scope)
		r, _ := c.visit(v.Right, scope)
		if comparisonOps[v.Operator] {
			c.compareLiteral(v.Left, l, v.Right, v.Operator)
			c.compareLiteral(v.Right, r, v.Left, v.Operator)
		}
		return nil, v.String()
	case *ast.UnaryNode:
		c.visit(v.Node, scope)
	case *ast.SliceNode:
		c.visit(v.Node, scope)
		c.visit(v.From, scope)
		c.visit(v.To, scope)
	case *ast.CallNode:
		if m, ok := v.Callee.(*ast.MemberNode); ok && m.Method {
			c.visit(m.Node, scope) // a method is not a field
		} else {
			c.visit(v.Callee, scope)
		}
		for _, a := range v.Arguments {
			c.visit(a, scope)
		}
	case *ast.PredicateNode:
		return c.visit(v.Node, scope)
	case *ast.VariableDeclaratorNode:
		c.visit(v.Value, scope)
		c.visit(v.Expr, scope)
	case *ast.SequenceNode:
		var s *Shape
		var desc string
		for _, e := range v.Nodes {
			s, desc = c.visit(e, scope)
		}
		return s, desc
	case *ast.ConditionalNode:
		c.visit(v.Cond, scope)
		c.visit(v.Exp1, scope)
		c.visit(v.Exp2, scope)
	case *ast.ArrayNode:
		for _, e := range v.Nodes {
			c.visit(e, scope)
		}
	case *ast.MapNode:
		for _, e := range v.Pairs {
			c.visit(e, scope)
		}
	case *ast.PairNode:
		c.visit(v.Key, scope)
		c.visit(v.Value, scope)
	}
	return nil, ""
}

// visitDynamic visits the computed indexes of a chain (output.tables[#index]).
func (c *predChecker) visitDynamic(n ast.Node, scope *elemScope) {
	for {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return
		}
		switch m.Property.(type) {
		case *ast.StringNode, *ast.IntegerNode:
		default:
			c.visit(m.Property, scope)
		}
		n = m.Node
	}
}

func (c *predChecker) visitBuiltin(b *ast.BuiltinNode, scope *elemScope) (*Shape, string) {
	if len(b.Arguments) == 0 {
		return nil, b.String()
	}
	coll, desc := c.visit(b.Arguments[0], scope)
	var elem *Shape
	if coll != nil && coll.Kind == KindList {
		elem = coll.Elem
	}
	if !predicateBuiltins[b.Name] {
		for _, a := range b.Arguments[1:] {
			c.visit(a, scope)
		}
		switch b.Name {
		case "first", "last":
			return elem, c.elemName(desc)
		case "take", "reverse":
			return coll, desc
		case "len", "mean", "median":
			return &Shape{Kind: KindNumber}, b.String()
		}
		return nil, b.String()
	}
	inner := &elemScope{shape: elem, desc: c.elemName(desc)}
	var body *Shape
	var bodyDesc string
	if len(b.Arguments) > 1 {
		body, bodyDesc = c.visit(b.Arguments[1], inner)
	}
	for _, a := range b.Arguments[min(len(b.Arguments), 2):] {
		c.visit(a, scope) // sortBy's order, reduce's initial value
	}
	switch b.Name {
	case "filter", "sortBy":
		return coll, desc
	case "find", "findLast":
		return elem, inner.desc
	case "map":
		if body == nil {
			body = &Shape{Kind: KindAny}
		}
		if bodyDesc != "" {
			if c.elems == nil {
				c.elems = map[string]string{}
			}
			c.elems[b.String()] = bodyDesc
		}
		return &Shape{Kind: KindList, Elem: body}, b.String()
	case "all", "none", "any", "one":
		return &Shape{Kind: KindBool}, b.String()
	case "count", "findIndex", "findLastIndex":
		return &Shape{Kind: KindNumber}, b.String()
	case "groupBy":
		if coll == nil {
			return nil, b.String()
		}
		return &Shape{Kind: KindMap, Elem: coll}, b.String()
	}
	return nil, b.String()
}

// compareLiteral reports a value read in a predicate (.match, a field of an
// element) compared with a literal of another kind; values read from the
// roots are checkLiteralCompares's.
func (c *predChecker) compareLiteral(side ast.Node, shape *Shape, other ast.Node, op string) {
	if root, _, _, ok := chainPath(side); !ok || root != "#" {
		return
	}
	var kind Kind
	switch other.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		kind = KindNumber
	case *ast.StringNode:
		kind = KindString
	case *ast.BoolNode:
		kind = KindBool
	default:
		return
	}
	if shape == nil || (shape.Kind != KindNumber && shape.Kind != KindString && shape.Kind != KindBool) || shape.Kind == kind {
		return
	}
	loc, lit, read := other.Location(), other.String(), side.String()
	to := loc.To
	if to <= loc.From {
		to = loc.From + len([]rune(lit))
	}
	verdict := "is never true"
	if op == "!=" {
		verdict = "is always true"
	}
	c.diags = append(c.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Comparison of different kinds",
		Detail: fmt.Sprintf("%s is a %s and %s a %s: %s %s %s %s. Compare it with a %s.",
			read, shape.Kind, lit, kind, read, op, lit, verdict, shape.Kind),
		Subject: c.rangeOf(loc.From, to).Ptr(),
	})
}

// walkElemPath is walkExprPath that also names the value reached.
func walkElemPath(shape *Shape, path []pathElem, base string, from int, rangeOf func(from, to int) hcl.Range) (*Shape, string, *hcl.Diagnostic) {
	end, d := walkExprPath(shape, path, base, from, rangeOf)
	desc := base
	for _, p := range path {
		if p.isIndex {
			desc += "[…]"
		} else {
			desc += "." + p.name
		}
	}
	return end, desc, d
}

// startOf is where the text of n begins: the start of its leftmost operand.
func startOf(n ast.Node) int {
	for {
		switch v := n.(type) {
		case *ast.MemberNode:
			n = v.Node
		case *ast.ChainNode:
			n = v.Node
		case *ast.BinaryNode:
			n = v.Left
		case *ast.SliceNode:
			n = v.Node
		default:
			return n.Location().From
		}
	}
}
