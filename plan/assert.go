package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/planrun/planrun/plan/yamlhcl"
)

// AssertEnv is the shape of the environment assertions run in: this step's
// output, earlier steps' and checks' outputs by name, and the variables. No
// process environment, no files.
func AssertEnv() map[string]any {
	return map[string]any{
		"output": map[string]any{},
		"steps":  map[string]any{},
		"checks": map[string]any{},
		"var":    map[string]any{},
	}
}

var assertRoots = map[string]bool{"output": true, "steps": true, "checks": true, "var": true}

// compileAssert compiles an assert block's condition and message with
// expr-lang, type-checks what it reads against the output shapes, and
// returns the steps it reads (they become DAG edges).
func (l *loader) compileAssert(blk *hcl.Block, st *Step, out *Shape) (*Assertion, []string, hcl.Diagnostics) {
	content, diags := blk.Body.Content(assertSchema)
	thatAttr := content.Attributes["that"]
	if thatAttr == nil {
		return nil, nil, diags
	}
	as := &Assertion{Severity: SeverityError, Range: thatAttr.Range}
	ctx := &hcl.EvalContext{}
	if d := decodeString(thatAttr, ctx, &as.That); d.HasErrors() {
		return nil, nil, append(diags, d...)
	}
	if a := content.Attributes["severity"]; a != nil {
		var sev string
		diags = append(diags, decodeString(a, ctx, &sev)...)
		switch Severity(sev) {
		case SeverityError, SeverityWarn:
			as.Severity = Severity(sev)
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid severity",
				Detail:  fmt.Sprintf("severity is %q (the default: the step fails) or %q (reported, the run goes on), not %q.", SeverityError, SeverityWarn, sev),
				Subject: a.Expr.Range().Ptr(),
			})
		}
	}
	prog, err := expr.Compile(as.That, expr.Env(AssertEnv()), expr.AsBool())
	if err != nil {
		return nil, nil, append(diags, l.exprDiag("Invalid assertion", thatAttr.Expr, as.That, err))
	}
	as.Program = prog
	tree, err := parser.Parse(as.That)
	if err != nil {
		return nil, nil, append(diags, l.exprDiag("Invalid assertion", thatAttr.Expr, as.That, err))
	}
	refs, reads, d := l.checkAssertReads(tree.Node, st, out, thatAttr.Expr, as.That)
	diags = append(diags, d...)
	as.Reads = reads
	if a := content.Attributes["message"]; a != nil {
		if d := decodeString(a, ctx, &as.Message); d.HasErrors() {
			return nil, nil, append(diags, d...)
		}
		parts, r, d := l.compileMessage(as.Message, st, out, a.Expr)
		diags = append(diags, d...)
		as.Msg = parts
		refs = append(refs, r...)
	}
	return as, uniqueSorted(refs), diags
}

// compileMessage splits "text {{ expr }} text" and compiles each expression.
func (l *loader) compileMessage(msg string, st *Step, out *Shape, hclExpr hcl.Expression) ([]MsgPart, []string, hcl.Diagnostics) {
	var parts []MsgPart
	var refs []string
	var diags hcl.Diagnostics
	rest, offset := msg, 0
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			if rest != "" {
				parts = append(parts, MsgPart{Text: rest})
			}
			return parts, refs, diags
		}
		closeAt := strings.Index(rest[open:], "}}")
		if closeAt < 0 {
			return parts, refs, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid message",
				Detail:  "A {{ in the message has no closing }}.",
				Subject: l.stringRange(hclExpr, offset+open, offset+open+2).Ptr(),
			})
		}
		if open > 0 {
			parts = append(parts, MsgPart{Text: rest[:open]})
		}
		src := rest[open+2 : open+closeAt]
		prog, err := expr.Compile(src, expr.Env(AssertEnv()))
		if err != nil {
			diags = append(diags, l.exprDiagAt("Invalid message expression", hclExpr, msg, offset+open+2, err))
		} else {
			tree, _ := parser.Parse(src)
			r, _, d := l.checkAssertReads(tree.Node, st, out, hclExpr, msg)
			diags = append(diags, d...)
			refs = append(refs, r...)
			parts = append(parts, MsgPart{Text: src, Program: prog})
		}
		consumed := open + closeAt + 2
		rest = rest[consumed:]
		offset += consumed
	}
}

type chainCollector struct {
	nodes   []ast.Node
	covered map[ast.Node]bool
}

func (c *chainCollector) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.MemberNode:
		c.nodes = append(c.nodes, v)
		c.covered[v.Node] = true
	case *ast.IdentifierNode:
		c.nodes = append(c.nodes, v)
	}
}

type pathElem struct {
	name    string
	isIndex bool
	dynamic bool
}

// chainPath reads output.tables[0].name as a root and a path; ok is false
// for chains that do not start at an identifier.
func chainPath(n ast.Node) (string, []pathElem, bool) {
	switch v := n.(type) {
	case *ast.IdentifierNode:
		return v.Value, nil, true
	case *ast.MemberNode:
		root, path, ok := chainPath(v.Node)
		if !ok {
			return "", nil, false
		}
		switch p := v.Property.(type) {
		case *ast.StringNode:
			path = append(path, pathElem{name: p.Value})
		case *ast.IntegerNode:
			path = append(path, pathElem{isIndex: true})
		default:
			path = append(path, pathElem{isIndex: true, dynamic: true})
		}
		return root, path, true
	}
	return "", nil, false
}

// checkAssertReads finds every value an expression reads (output.x,
// steps.NAME.y, var.z), checks each against what exists, and returns the
// step addresses read plus a program per value for failure reports.
func (l *loader) checkAssertReads(node ast.Node, st *Step, out *Shape, hclExpr hcl.Expression, src string) ([]string, []Read, hcl.Diagnostics) {
	c := &chainCollector{covered: map[ast.Node]bool{}}
	ast.Walk(&node, c)
	var refs []string
	var reads []Read
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, n := range c.nodes {
		if c.covered[n] {
			continue
		}
		root, path, ok := chainPath(n)
		if !ok || !assertRoots[root] {
			continue
		}
		loc := n.Location()
		rng := l.stringRange(hclExpr, loc.From, loc.To)
		shape, base := out, root
		switch root {
		case "steps", "checks":
			if len(path) == 0 || path[0].dynamic || path[0].isIndex {
				break
			}
			kind := "step"
			if root == "checks" {
				kind = "check"
			}
			addr := st.Scope.Prefix + kind + "." + path[0].name
			target := l.stepIndex[addr]
			if target == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared " + kind,
					Detail: fmt.Sprintf("The assertion reads %s.%s, but there is no %s named %q.%s",
						root, path[0].name, kind, path[0].name, suggestion(path[0].name, l.stepNames(st.Scope, StepKind(kind)))),
					Subject: rng.Ptr(),
				})
				continue
			}
			if addr != st.Addr {
				refs = append(refs, addr)
			}
			shape, base, path = nil, root+"."+path[0].name, path[1:]
			if target.Type != nil {
				shape = OutputShape(target.Type.Output())
			}
		case "var":
			if len(path) > 0 && !path[0].dynamic && !path[0].isIndex {
				if _, ok := st.Scope.vars[path[0].name]; !ok {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared input variable",
						Detail:  fmt.Sprintf("There is no variable named %q.%s", path[0].name, suggestion(path[0].name, mapKeys(st.Scope.vars))),
						Subject: rng.Ptr(),
					})
					continue
				}
			}
			shape = nil
		}
		if d := walkExprPath(shape, path, base, rng); d != nil {
			diags = append(diags, d)
			continue
		}
		text := n.String()
		if seen[text] {
			continue
		}
		seen[text] = true
		if prog, err := expr.Compile(text, expr.Env(AssertEnv())); err == nil {
			reads = append(reads, Read{Expr: text, Program: prog})
		}
	}
	return refs, reads, diags
}

func walkExprPath(shape *Shape, path []pathElem, base string, rng hcl.Range) *hcl.Diagnostic {
	cur := base
	for _, p := range path {
		if shape == nil || p.dynamic {
			return nil
		}
		next, d := stepShape(shape, p.name, p.isIndex, cur, rng)
		if d != nil {
			return d
		}
		shape = next
		if p.isIndex {
			cur += "[…]"
		} else {
			cur += "." + p.name
		}
	}
	return nil
}

// exprDiag turns an expr-lang error into a diagnostic at its place in the file.
func (l *loader) exprDiag(summary string, hclExpr hcl.Expression, src string, err error) *hcl.Diagnostic {
	return l.exprDiagAt(summary, hclExpr, src, 0, err)
}

func (l *loader) exprDiagAt(summary string, hclExpr hcl.Expression, src string, offset int, err error) *hcl.Diagnostic {
	msg := err.Error()
	rng := l.stringRange(hclExpr, offset, len(src))
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		from, to := fe.From, fe.To
		if to <= from {
			to = from + 1
		}
		rng = l.stringRange(hclExpr, offset+from, offset+to)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf("%s (in %q).", msg, src),
		Subject:  rng.Ptr(),
	}
}

// stringRange maps byte offsets within a string argument to a range in the
// file, so that an error inside an assertion points at its own column.
func (l *loader) stringRange(hclExpr hcl.Expression, from, to int) hcl.Range {
	start := hclExpr.Range().Start
	switch e := hclExpr.(type) {
	case *yamlhcl.StringExpr:
		start = e.ContentStart()
	case *hclsyntax.TemplateExpr:
		if len(e.Parts) > 0 {
			start = e.Parts[0].Range().Start
		}
	}
	name := hclExpr.Range().Filename
	f := l.plan.Files[name]
	if f == nil {
		return hcl.Range{Filename: name, Start: start, End: start}
	}
	advance := func(pos hcl.Pos, n int) hcl.Pos {
		for i := 0; i < n && pos.Byte < len(f.Bytes); i++ {
			if f.Bytes[pos.Byte] == '\n' {
				pos.Line++
				pos.Column = 1
			} else {
				pos.Column++
			}
			pos.Byte++
		}
		return pos
	}
	if to < from {
		to = from
	}
	s := advance(start, from)
	return hcl.Range{Filename: name, Start: s, End: advance(s, to-from)}
}
