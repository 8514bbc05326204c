package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
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
	c := l.compileCached(as.That, true)
	if c.parseErr {
		return nil, nil, append(diags, l.exprDiag("Invalid assertion", thatAttr.Expr, as.That, c.err))
	}
	shapes := map[string]*Shape{}
	refs, reads, d := l.checkAssertReads(c.chains, st, out, thatAttr.Expr, as.That, 0, true, shapes)
	diags = append(diags, d...)
	diags = append(diags, l.checkPredicates(c.written, shapes, thatAttr.Expr, as.That, 0)...)
	if !d.HasErrors() {
		diags = append(diags, l.checkLiteralCompares(c.compares, shapes, thatAttr.Expr, as.That)...)
	}
	if c.err != nil {
		return nil, nil, append(diags, l.exprDiag("Invalid assertion", thatAttr.Expr, as.That, c.err))
	}
	as.Program = c.prog
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

// exprConfigs are the expr-lang configurations of one Load. expr.Compile
// builds a configuration (a map of every builtin) for each call, which was
// most of the time spent loading a large plan; a configuration caches type
// information as it is used, so it is not shared between goroutines.
type exprConfigs struct {
	asBool, any *conf.Config
}

func newExprConfig(ops ...expr.Option) *conf.Config {
	c := conf.CreateNew()
	for _, op := range ops {
		op(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	c.Check()
	return c
}

func (l *loader) exprConfig(asBool bool) *conf.Config {
	if l.exprConfigs == nil {
		l.exprConfigs = &exprConfigs{
			asBool: newExprConfig(expr.Env(AssertEnv()), expr.AsBool()),
			any:    newExprConfig(expr.Env(AssertEnv())),
		}
	}
	if asBool {
		return l.exprConfigs.asBool
	}
	return l.exprConfigs.any
}

// parseExpr and finishExpr do what expr.Compile(src, expr.Env(AssertEnv()))
// does, plus expr.AsBool() when asBool, with the loader's configurations.
// parseExpr returns the syntax tree, as written.
func (l *loader) parseExpr(src string) (*parser.Tree, error) {
	return parser.ParseWithConfig(src, l.exprConfig(false))
}

// finishExpr type checks, optimizes and compiles the tree (rewriting it).
func (l *loader) finishExpr(tree *parser.Tree, asBool bool) (*vm.Program, error) {
	config := l.exprConfig(asBool)
	if _, err := new(checker.Checker).PatchAndCheck(tree, config); err != nil {
		return nil, err
	}
	if config.Optimize {
		if err := optimizer.Optimize(&tree.Node, config); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, config)
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
		closeAt := closingBraces(rest[open:])
		if closeAt < 0 {
			return parts, refs, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid message",
				Detail:  "A {{ in the message has no closing }}.",
				Subject: l.stringRange(hclExpr, msg, offset+open, offset+open+2).Ptr(),
			})
		}
		if open > 0 {
			parts = append(parts, MsgPart{Text: rest[:open]})
		}
		src := rest[open+2 : open+closeAt]
		c := l.compileCached(src, false)
		if !c.parseErr {
			shapes := map[string]*Shape{}
			r, _, d := l.checkAssertReads(c.chains, st, out, hclExpr, msg, offset+open+2, false, shapes)
			diags = append(diags, d...)
			diags = append(diags, l.checkPredicates(c.written, shapes, hclExpr, msg, offset+open+2)...)
			refs = append(refs, r...)
		}
		if c.err != nil {
			diags = append(diags, l.exprDiagAt("Invalid message expression", hclExpr, msg, offset+open+2, c.err))
		} else {
			parts = append(parts, MsgPart{Text: src, Program: c.prog})
		}
		consumed := open + closeAt + 2
		rest = rest[consumed:]
		offset += consumed
	}
}

// closingBraces returns the index in s, which starts with "{{", of the "}}"
// that closes it, or -1. A "}}" inside a string literal or closing a map or
// predicate ({...}) of the expression does not count, so "{{ '}}' }}" and
// "{{ filter(x, {.a > {b: 1}.b}) }}" are one expression each.
func closingBraces(s string) int {
	depth := 0
	var quote byte
	for i := 2; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++
			case c == quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			} else if i+1 < len(s) && s[i+1] == '}' {
				return i
			}
		}
	}
	// Not closed as an expression (an unterminated string?): take the first
	// "}}" and let the compiler say what is wrong, unless another {{ opens
	// first ("{{ a {{ b }}": the first is not closed).
	end := strings.Index(s, "}}")
	if end < 0 || strings.Contains(s[2:end], "{{") {
		return -1
	}
	return end
}

func (c *chainCollector) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.MemberNode:
		c.nodes = append(c.nodes, v)
		c.covered[v.Node] = true
		if _, _, _, ok := chainPath(v); !ok {
			c.computed = true
		}
	case *ast.IdentifierNode:
		c.nodes = append(c.nodes, v)
	case *ast.PredicateNode:
		c.computed = true
	}
}

// compiledExpr is an expression compiled once per Load, whatever the number
// of assertions that repeat it ("output.exit_code == 0").
type compiledExpr struct {
	chains   []chain // what it reads, from the tree as written
	compares []literalCompare
	// written is the tree as written when it has predicates or reads a
	// field of a computed value, whose fields are checked against each
	// assertion's output (checkPredicates).
	written  ast.Node
	prog     *vm.Program
	err      error
	parseErr bool // err is a syntax error
}

// compileCached parses and compiles src once per Load. A program is safe
// to share: expr-lang runs it on a new VM each time.
func (l *loader) compileCached(src string, asBool bool) *compiledExpr {
	key := src
	if asBool {
		key = "bool\x00" + src
	}
	if c, ok := l.exprCache[key]; ok {
		return c
	}
	c := &compiledExpr{}
	tree, err := l.parseExpr(src)
	if err != nil {
		c.err, c.parseErr = err, true
	} else {
		// What it reads, before the checker and optimizer rewrite the tree.
		var computed bool
		c.chains, computed = readChains(tree.Node)
		c.compares = literalCompares(tree.Node)
		if computed {
			// finishExpr rewrites the tree (filter+map fused, len(filter)
			// made a count): keep a copy as written.
			if again, err := l.parseExpr(src); err == nil {
				c.written = again.Node
			}
		}
		c.prog, c.err = l.finishExpr(tree, asBool)
	}
	if l.exprCache == nil {
		l.exprCache = map[string]*compiledExpr{}
	}
	l.exprCache[key] = c
	return c
}

// checkAssertReads checks every value an expression reads (output.x,
// steps.NAME.y, var.z) against what exists, and returns the step addresses
// read plus, when withPrograms, a program per value for failure reports.
// The expression is at byte offset within src, the text of hclExpr.
//
// shapes, when not nil, receives the shape of each value read whose shape
// is known before the run, by the chain's text.
func (l *loader) checkAssertReads(chains []chain, st *Step, out *Shape, hclExpr hcl.Expression, src string, offset int, withPrograms bool, shapes map[string]*Shape) ([]string, []Read, hcl.Diagnostics) {
	var refs []string
	var reads []Read
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, ch := range chains {
		root, rootLoc, path := ch.root, ch.rootLoc, ch.path
		// expr-lang counts runes from the start of the expression.
		rangeOf := func(from, to int) hcl.Range {
			sub := src[offset:]
			return l.stringRange(hclExpr, src, offset+runeOffset(sub, from), offset+runeOffset(sub, to))
		}
		// The first name after the root (steps.NAME, var.NAME) with its root.
		nameRng := func() *hcl.Range {
			rng := rangeOf(rootLoc.From, path[0].loc.To)
			return &rng
		}
		shape, base := out, root
		switch root {
		case "steps", "checks":
			if len(path) == 0 || path[0].dynamic || path[0].isIndex {
				shape = nil // steps[expr]: not known before the run
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
					Subject: nameRng(),
				})
				continue
			}
			if addr != st.Addr {
				refs = append(refs, addr)
			}
			shape, base, path = nil, root+"."+path[0].name, path[1:]
			if target.Type != nil {
				shape = outputShape(target.Type.Output())
			}
		case "var":
			if len(path) > 0 && !path[0].dynamic && !path[0].isIndex {
				if _, ok := st.Scope.vars[path[0].name]; !ok {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Reference to undeclared input variable",
						Detail:  fmt.Sprintf("There is no variable named %q.%s", path[0].name, suggestion(path[0].name, mapKeys(st.Scope.vars))),
						Subject: nameRng(),
					})
					continue
				}
			}
			shape = nil
		}
		end, d := walkExprPath(shape, path, base, rootLoc.From, rangeOf)
		if d != nil {
			diags = append(diags, d)
			continue
		}
		if end != nil && shapes != nil {
			shapes[ch.text] = end
		}
		if !withPrograms {
			continue
		}
		if seen[ch.text] {
			continue
		}
		seen[ch.text] = true
		if c := l.compileCached(ch.text, false); c.err == nil {
			reads = append(reads, Read{Expr: ch.text, Program: c.prog})
		}
	}
	return refs, reads, diags
}

// exprDiag turns an expr-lang error into a diagnostic at its place in the file.
func (l *loader) exprDiag(summary string, hclExpr hcl.Expression, src string, err error) *hcl.Diagnostic {
	return l.exprDiagAt(summary, hclExpr, src, 0, err)
}

func (l *loader) exprDiagAt(summary string, hclExpr hcl.Expression, src string, offset int, err error) *hcl.Diagnostic {
	msg := err.Error()
	rng := l.stringRange(hclExpr, src, offset, len(src))
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		// expr-lang counts runes; the file is bytes.
		sub := src[offset:]
		from, to := runeOffset(sub, fe.From), runeOffset(sub, fe.To)
		if to <= from {
			to = from + 1
		}
		if to > len(sub) {
			to = len(sub)
		}
		rng = l.stringRange(hclExpr, src, offset+from, offset+to)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf("%s (in %q).", msg, src),
		Subject:  rng.Ptr(),
	}
}

// runeOffset is the byte offset of rune n of s.
func runeOffset(s string, n int) int {
	if n <= 0 {
		return 0
	}
	i := 0
	for off := range s {
		if i == n {
			return off
		}
		i++
	}
	return len(s)
}

// stringRange maps byte offsets within value, the decoded text of a string
// argument, to a range in the file, so that an error inside an assertion
// points at its own column even after escapes and doubled quotes.
func (l *loader) stringRange(hclExpr hcl.Expression, value string, from, to int) hcl.Range {
	name := hclExpr.Range().Filename
	if to < from {
		to = from
	}
	if e, ok := hclExpr.(*yamlhcl.StringExpr); ok {
		return hcl.Range{Filename: name, Start: e.PosAt(from), End: e.PosAt(to)}
	}
	start := hclExpr.Range().Start
	if e, ok := hclExpr.(*hclsyntax.TemplateExpr); ok && len(e.Parts) > 0 {
		start = e.Parts[0].Range().Start
	}
	f := l.plan.Files[name]
	if f == nil {
		return hcl.Range{Filename: name, Start: start, End: start}
	}
	var quote byte
	if start.Byte > 0 && start.Byte <= len(f.Bytes) && f.Bytes[start.Byte-1] == '"' {
		quote = '"'
	}
	return hcl.Range{
		Filename: name,
		Start:    yamlhcl.SourcePos(f.Bytes, start, value, from, quote),
		End:      yamlhcl.SourcePos(f.Bytes, start, value, to, quote),
	}
}

func (c *compareCollector) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok || !comparisonOps[b.Operator] {
		return
	}
	for _, pair := range [][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
		var kind Kind
		switch pair[1].(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			kind = KindNumber
		case *ast.StringNode:
			kind = KindString
		case *ast.BoolNode:
			kind = KindBool
		default:
			continue
		}
		if root, _, _, ok := chainPath(pair[0]); !ok || !assertRoots[root] {
			continue
		}
		c.out = append(c.out, literalCompare{
			read: pair[0].String(), op: b.Operator, kind: kind, literal: pair[1].String(), loc: pair[1].Location(),
		})
	}
}
