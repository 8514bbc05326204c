// Package yamlhcl presents YAML documents as hcl.Body values, the way hcl's
// own JSON syntax does, so that one decoder serves HCL and YAML plans alike.
//
// Mappings become bodies: a key is an attribute or a block depending on the
// schema asked for (a sequence of mappings is several blocks). String scalars
// are HCL templates, so "${step.dump.output.path}" evaluates, and adds a
// reference, exactly as it does in HCL. Every position is an hcl.Range into
// the YAML file, so diagnostics point at the YAML line and column.
package yamlhcl

import (
	"bytes"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/planrun/planrun/plan/internal/nesting"
)

// File is a parsed YAML file.
type File struct {
	Name  string
	Bytes []byte
	Root  *yaml.Node // the document's top mapping (nil for an empty file)
	lines []int      // byte offset of each line start

	expanding map[*yaml.Node]bool // the anchors whose aliases are being expanded
	aliases   int                 // aliases expanded so far
	depth     int                 // of the collection expr is in, aliases expanded
}

// Parse parses YAML source. An empty document gives a File with a nil Root.
func Parse(src []byte, filename string) (*File, hcl.Diagnostics) {
	f := &File{Name: filename, Bytes: src, lines: lineStarts(src)}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		if strings.HasSuffix(msg, indentHint) {
			// yaml.v3 names the line of the mapping the key should be in;
			// the key itself is the first line indented to no open level.
			if l, indent, outer, inner, ok := misindented(src); ok && l >= line {
				pos := f.Pos(l, indent+1)
				detail := fmt.Sprintf("This line is indented %d spaces, between the levels of the lines above it (%d and %d): line it up with one of them.", indent, outer, inner)
				if outer < 0 {
					detail = fmt.Sprintf("This line is indented %d spaces, less than the first line of the document (%d).", indent, inner)
				}
				return f, hcl.Diagnostics{{
					Severity: hcl.DiagError,
					Summary:  "Invalid YAML",
					Detail:   detail,
					Subject:  &hcl.Range{Filename: filename, Start: pos, End: f.advance(pos, lineLen(src, pos.Byte))},
				}}
			}
		}
		pos := f.Pos(line, 1)
		return f, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid YAML",
			Detail:   msg,
			Subject:  &hcl.Range{Filename: filename, Start: pos, End: pos},
		}}
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	f.Root = doc.Content[0]
	if d := f.checkDepth(f.Root, 1); d != nil {
		return f, hcl.Diagnostics{d}
	}
	if f.Root.Kind != yaml.MappingNode {
		return f, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid plan file",
			Detail:   "The top level of a YAML plan must be a mapping (plan:, variables:, steps:, ...).",
			Subject:  f.NodeRange(f.Root).Ptr(),
		}}
	}
	return f, nil
}

// checkDepth refuses a collection nested deeper than nesting.MaxDepth (as
// HCL source is refused): the expressions it becomes are walked recursively.
func (f *File) checkDepth(n *yaml.Node, depth int) *hcl.Diagnostic {
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
		return nil
	}
	if depth > nesting.MaxDepth {
		return f.tooDeep(n)
	}
	for _, c := range n.Content {
		if d := f.checkDepth(c, depth+1); d != nil {
			return d
		}
	}
	return nil
}

func (f *File) tooDeep(n *yaml.Node) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Too deeply nested",
		Detail:  fmt.Sprintf("Lists and mappings nest more than %d levels deep here (aliases expanded). planrun refuses it rather than exhaust the stack.", nesting.MaxDepth),
		Subject: f.openRange(n).Ptr(),
	}
}

var yamlErrLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner), with a hint. yaml.v3 reports their line 0-based: usually the
// line where the enclosing collection starts, or where the problem is when
// that collection starts on the first line.
var parserProblems = map[string]string{
	"did not find expected ',' or ']'":       " (a [ list is not closed)",
	"did not find expected ',' or '}'":       " (a { mapping is not closed)",
	"did not find expected key":              indentHint,
	"did not find expected '-' indicator":    indentHint,
	"did not find expected node content":     "",
	"did not find expected <document start>": "",
	"did not find expected <stream-start>":   "",
	"found duplicate %TAG directive":         "",
	"found duplicate %YAML directive":        "",
	"found incompatible YAML document":       "",
	"found undefined tag handle":             "",
}

const indentHint = " (check the indentation)"

// misindented finds the first line of block YAML whose indentation is not
// that of any mapping or list open above it (deeper than its parent,
// shallower than its siblings): its 1-based line and indentation, and the
// levels it falls between (outer -1 when it is left of all of them). Block
// scalars (| and >) and flow collections spanning lines are skipped.
func misindented(src []byte) (line, indent, outer, inner int, ok bool) {
	var levels []int  // the indentation of each open level, innermost last
	scalarAbove := -1 // skip lines deeper than this: a block scalar's text
	flow := 0         // open [ and { brackets
	for i, raw := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimRight(raw, " \t\r")
		text := strings.TrimLeft(trimmed, " ")
		indent := len(trimmed) - len(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if scalarAbove >= 0 {
			if indent > scalarAbove {
				continue
			}
			scalarAbove = -1
		}
		if flow > 0 {
			flow = max(flow+flowDepth(text), 0)
			continue
		}
		if text == "---" || text == "..." || strings.HasPrefix(text, "--- ") {
			levels = nil
			continue
		}
		for len(levels) > 0 && levels[len(levels)-1] > indent {
			inner = levels[len(levels)-1]
			levels = levels[:len(levels)-1]
			if len(levels) == 0 {
				return i + 1, indent, -1, inner, true
			}
			if levels[len(levels)-1] < indent {
				return i + 1, indent, levels[len(levels)-1], inner, true
			}
		}
		if len(levels) == 0 || levels[len(levels)-1] < indent {
			levels = append(levels, indent)
		}
		// "- key: value": the key opens a level of its own, past the dash.
		for strings.HasPrefix(text, "- ") {
			rest := strings.TrimLeft(text[2:], " ")
			indent += len(text) - len(rest)
			text = rest
			levels = append(levels, indent)
		}
		if isBlockScalar(text) {
			scalarAbove = levels[len(levels)-1]
		}
		flow = max(flowDepth(text), 0)
	}
	return 0, 0, 0, 0, false
}

// isBlockScalar says whether a line ends by opening a block scalar (key: |).
func isBlockScalar(text string) bool {
	if i := strings.Index(text, " #"); i >= 0 {
		text = strings.TrimRight(text[:i], " ")
	}
	f := strings.Fields(text)
	if len(f) == 0 {
		return false
	}
	last := strings.TrimRight(f[len(f)-1], "0123456789+-")
	return (last == "|" || last == ">") && (len(f) > 1 || text[0] == '|' || text[0] == '>')
}

// flowDepth is how many [ and { a line opens, less those it closes
// (outside quotes and comments).
func flowDepth(text string) int {
	depth := 0
	var quote rune
	for _, c := range text {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return depth
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth
}

// lineLen is the length in bytes of the rest of the line at off.
func lineLen(src []byte, off int) int {
	if i := bytes.IndexByte(src[off:], '\n'); i >= 0 {
		return i
	}
	return len(src) - off
}

// yamlErrorLine reads the 1-based line and the message of a yaml.v3 error.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, lineGiven := 0, false
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg, lineGiven = m[2], true
	}
	if hint, ok := parserProblems[msg]; ok {
		// 0-based; when the line is 0, yaml.v3 leaves the prefix out.
		return line + 1, msg + hint
	}
	if !lineGiven {
		line = 1
	}
	return line, msg
}

func lineStarts(src []byte) []int {
	starts := []int{0}
	for i, b := range src {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// Pos converts a YAML line and column (1-based, column in characters) to an hcl.Pos.
func (f *File) Pos(line, col int) hcl.Pos {
	if line < 1 {
		line = 1
	}
	if line > len(f.lines) {
		line = len(f.lines)
	}
	off := f.lines[line-1]
	for c := 1; c < col && off < len(f.Bytes) && f.Bytes[off] != '\n'; c++ {
		_, size := utf8.DecodeRune(f.Bytes[off:])
		off += size
	}
	return hcl.Pos{Line: line, Column: col, Byte: off}
}

// advance moves pos forward over n bytes of the file, staying on its line.
func (f *File) advance(pos hcl.Pos, n int) hcl.Pos {
	for i := 0; i < n && pos.Byte < len(f.Bytes) && f.Bytes[pos.Byte] != '\n'; {
		_, size := utf8.DecodeRune(f.Bytes[pos.Byte:])
		pos.Byte += size
		pos.Column++
		i += size
	}
	return pos
}

// quotedEnd finds the end of the quoted scalar that starts at start (on its
// opening quote), past the closing quote.
func (f *File) quotedEnd(start hcl.Pos) (hcl.Pos, bool) {
	if start.Byte >= len(f.Bytes) {
		return start, false
	}
	quote := f.Bytes[start.Byte]
	if quote != '"' && quote != '\'' {
		return start, false
	}
	for i := start.Byte + 1; i < len(f.Bytes); i++ {
		switch c := f.Bytes[i]; {
		case quote == '"' && c == '\\':
			i++
		case c == quote && quote == '\'' && i+1 < len(f.Bytes) && f.Bytes[i+1] == '\'':
			i++
		case c == quote:
			return SourcePos(f.Bytes, start, string(f.Bytes[start.Byte:i+1]), i+1-start.Byte, 0), true
		}
	}
	return start, false
}

// NodeRange is the source range of a node: exact for one-line scalars, from
// the node's start to the end of its last child for collections.
func (f *File) NodeRange(n *yaml.Node) hcl.Range {
	start := f.Pos(n.Line, n.Column)
	end := f.nodeEnd(n)
	if end.Byte < start.Byte {
		end = start
	}
	return hcl.Range{Filename: f.Name, Start: start, End: end}
}

func (f *File) nodeEnd(n *yaml.Node) hcl.Pos {
	if len(n.Content) > 0 {
		return f.nodeEnd(n.Content[len(n.Content)-1])
	}
	start := f.Pos(n.Line, n.Column)
	width := len(n.Value)
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		// Escapes make the source longer than the value: find the closing quote.
		if end, ok := f.quotedEnd(start); ok {
			return end
		}
		width += 2
	}
	if n.Kind == yaml.AliasNode {
		width++ // the *
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		width = 2 // "{}" or "[]"
	}
	return f.advance(start, width)
}

// Body returns n (a mapping) as an hcl.Body.
func (f *File) Body(n *yaml.Node) hcl.Body {
	return &body{file: f, node: n, hidden: map[string]bool{}}
}

// blockBody is the body of a block whose key (or list item) is at keyRange:
// a missing required argument is reported there.
func (f *File) blockBody(n *yaml.Node, keyRange hcl.Range) *body {
	return &body{file: f, node: n, hidden: map[string]bool{}, missing: &keyRange}
}

// Expr returns n as an HCL expression.
func (f *File) Expr(n *yaml.Node) (hcl.Expression, hcl.Diagnostics) {
	return f.expr(n)
}

func (f *File) expr(n *yaml.Node) (hclsyntax.Expression, hcl.Diagnostics) {
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		f.depth++
		defer func() { f.depth-- }()
		if f.depth > nesting.MaxDepth {
			return &hclsyntax.LiteralValueExpr{Val: cty.DynamicVal, SrcRange: f.NodeRange(n)}, hcl.Diagnostics{f.tooDeep(n)}
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		return f.aliasExpr(n)
	case yaml.SequenceNode:
		rng := f.NodeRange(n)
		tuple := &hclsyntax.TupleConsExpr{SrcRange: rng, OpenRange: f.openRange(n)}
		var diags hcl.Diagnostics
		for _, item := range n.Content {
			e, d := f.expr(item)
			diags = append(diags, d...)
			tuple.Exprs = append(tuple.Exprs, e)
		}
		return tuple, diags
	case yaml.MappingNode:
		rng := f.NodeRange(n)
		obj := &hclsyntax.ObjectConsExpr{SrcRange: rng, OpenRange: f.openRange(n)}
		var diags hcl.Diagnostics
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := &hclsyntax.LiteralValueExpr{Val: cty.StringVal(k.Value), SrcRange: f.NodeRange(k)}
			val, d := f.expr(v)
			diags = append(diags, d...)
			obj.Items = append(obj.Items, hclsyntax.ObjectConsItem{
				KeyExpr:   &hclsyntax.ObjectConsKeyExpr{Wrapped: key},
				ValueExpr: val,
			})
		}
		return obj, diags
	}
	return f.scalarExpr(n)
}

// maxAliasExpansions bounds the values aliases expand to in one file, so
// that a few lines of nested aliases ("billion laughs") cannot exhaust memory.
const maxAliasExpansions = 10000

// aliasExpr expands *name; an alias inside the value it names would expand
// forever and is an error.
func (f *File) aliasExpr(n *yaml.Node) (hclsyntax.Expression, hcl.Diagnostics) {
	rng := f.NodeRange(n)
	fail := func(summary, detail string) (hclsyntax.Expression, hcl.Diagnostics) {
		return &hclsyntax.LiteralValueExpr{Val: cty.DynamicVal, SrcRange: rng}, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr(),
		}}
	}
	if n.Alias == nil {
		return fail("Invalid alias", fmt.Sprintf("There is no anchor &%s.", n.Value))
	}
	if f.expanding[n.Alias] {
		return fail("Invalid alias", fmt.Sprintf("The alias *%s is inside the value it names, which would never end.", n.Value))
	}
	if f.aliases++; f.aliases > maxAliasExpansions {
		if f.aliases == maxAliasExpansions+1 {
			return fail("Too many aliases", fmt.Sprintf("Aliases in this file expand to more than %d values.", maxAliasExpansions))
		}
		return &hclsyntax.LiteralValueExpr{Val: cty.DynamicVal, SrcRange: rng}, nil
	}
	if f.expanding == nil {
		f.expanding = map[*yaml.Node]bool{}
	}
	f.expanding[n.Alias] = true
	defer delete(f.expanding, n.Alias)
	return f.expr(n.Alias)
}

func (f *File) openRange(n *yaml.Node) hcl.Range {
	start := f.Pos(n.Line, n.Column)
	return hcl.Range{Filename: f.Name, Start: start, End: f.advance(start, 1)}
}

func (f *File) scalarExpr(n *yaml.Node) (hclsyntax.Expression, hcl.Diagnostics) {
	rng := f.NodeRange(n)
	lit := func(v cty.Value) hclsyntax.Expression { return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: rng} }
	switch n.ShortTag() {
	case "!!null":
		return lit(cty.NullVal(cty.DynamicPseudoType)), nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return lit(cty.DynamicVal), scalarDiag(rng, err)
		}
		return lit(cty.BoolVal(b)), nil
	case "!!int", "!!float":
		text := strings.ReplaceAll(n.Value, "_", "")
		num, ok := new(big.Float).SetPrec(512).SetString(text)
		if !ok {
			var fl float64
			if err := n.Decode(&fl); err != nil {
				return lit(cty.DynamicVal), scalarDiag(rng, err)
			}
			return lit(cty.NumberFloatVal(fl)), nil
		}
		return lit(cty.NumberVal(num)), nil
	}
	// Strings (and anything else) are templates, as in HCL.
	start := rng.Start
	var quote byte
	switch n.Style {
	case yaml.DoubleQuotedStyle:
		start, quote = f.advance(start, 1), '"'
	case yaml.SingleQuotedStyle:
		start, quote = f.advance(start, 1), '\''
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The text starts on the line after the | or > indicator.
		if n.Line < len(f.lines) {
			start = f.Pos(n.Line+1, 1)
		}
	}
	if d := nesting.Check([]byte(n.Value), f.Name, start, nesting.Template); d != nil {
		return lit(cty.DynamicVal), hcl.Diagnostics{d}
	}
	tmpl, diags := hclsyntax.ParseTemplate([]byte(n.Value), f.Name, start)
	return &StringExpr{Expression: tmpl, Raw: n.Value, file: f, start: start, rng: rng, quote: quote}, diags
}

func scalarDiag(rng hcl.Range, err error) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value", Detail: err.Error(), Subject: rng.Ptr()}}
}

// StringExpr is a YAML string: an HCL template that can also be read as a bare
// traversal (depends_on: [step.dump]) or a type expression (type: list(string)).
type StringExpr struct {
	hclsyntax.Expression
	Raw   string
	file  *File
	start hcl.Pos
	rng   hcl.Range
	quote byte // '"' or '\'' for quoted scalars
}

// Range covers the whole scalar, quotes included.
func (e *StringExpr) Range() hcl.Range { return e.rng }

// StartRange is the start of the scalar.
func (e *StringExpr) StartRange() hcl.Range { return e.rng }

// UnwrapExpression exposes the template to hcl's expression helpers.
func (e *StringExpr) UnwrapExpression() hcl.Expression { return e.Expression }

// ContentStart is where the string's text starts in the file (after a quote).
func (e *StringExpr) ContentStart() hcl.Pos { return e.start }

// PosAt is the position in the file of byte off of the string's value
// (Raw), seeing through quotes, escapes and the indentation of
// multi-line scalars.
func (e *StringExpr) PosAt(off int) hcl.Pos {
	return SourcePos(e.file.Bytes, e.start, e.Raw, off, e.quote)
}

// SourcePos maps byte off of value, a string decoded from the source text
// that starts at start in src, to its position in src. quote says how the
// text was written: '"' with backslash escapes (YAML double quotes, HCL
// strings), a single quote for YAML single quotes (two of them stand for
// one), 0 for text taken as is. Bytes of the source that are not in the
// value (indentation, folded line breaks, the second $ of $${) are skipped. When value and source do not line up,
// it returns start rather than a wrong place.
func SourcePos(src []byte, start hcl.Pos, value string, off int, quote byte) hcl.Pos {
	if off <= 0 || start.Byte < 0 || start.Byte > len(src) {
		return start
	}
	if off > len(value) {
		off = len(value)
	}
	pos := start
	step := func(n int) {
		for ; n > 0 && pos.Byte < len(src); n-- {
			c := src[pos.Byte]
			pos.Byte++
			switch {
			case c == '\n':
				pos.Line++
				pos.Column = 1
			case c&0xC0 != 0x80: // not a UTF-8 continuation byte
				pos.Column++
			}
		}
	}
	v, skipped := 0, 0
	for v < off && pos.Byte < len(src) {
		c := src[pos.Byte]
		switch {
		case quote == '"' && c == '\\' && pos.Byte+1 < len(src):
			n, k := escapeWidth(src[pos.Byte:])
			if v+k > off {
				return pos // inside the escape: point at it
			}
			v += k
			step(n)
			continue
		case quote == '\'' && c == '\'' && pos.Byte+1 < len(src) && src[pos.Byte+1] == '\'':
			v++
			step(2)
			continue
		case c == value[v]:
			v++
			skipped = 0
			step(1)
			continue
		}
		if skipped++; skipped > 256 {
			return start
		}
		step(1)
	}
	if v < off {
		return start
	}
	// At the byte asked for: step over indentation the value does not have.
	for off < len(value) && pos.Byte < len(src) && src[pos.Byte] != value[off] &&
		(src[pos.Byte] == ' ' || src[pos.Byte] == '\t') {
		step(1)
	}
	return pos
}

// escapeWidth reads a backslash escape: its length in the source and the
// number of bytes it decodes to.
func escapeWidth(src []byte) (n, k int) {
	hex := func(digits int) (int, int) {
		if len(src) < 2+digits {
			return 2, 1
		}
		r, err := strconv.ParseUint(string(src[2:2+digits]), 16, 32)
		if err != nil || !utf8.ValidRune(rune(r)) {
			return 2 + digits, 1
		}
		return 2 + digits, utf8.RuneLen(rune(r))
	}
	switch src[1] {
	case 'x':
		return hex(2)
	case 'u':
		return hex(4)
	case 'U':
		return hex(8)
	case 'N', '_':
		return 2, 2 // U+0085, U+00A0
	case 'L', 'P':
		return 2, 3 // U+2028, U+2029
	case '\n':
		return 2, 0 // an escaped line break joins the lines
	case '\r':
		if len(src) > 2 && src[2] == '\n' {
			return 3, 0
		}
		return 2, 0
	}
	return 2, 1
}

// AsTraversal reads "step.dump" or "${step.dump}" as a traversal, so that
// hcl.AbsTraversalForExpr works on YAML strings as it does on HCL references.
func (e *StringExpr) AsTraversal() hcl.Traversal {
	src, start := e.Raw, e.start
	trimmed := strings.TrimSpace(src)
	if strings.HasPrefix(trimmed, "${") && strings.HasSuffix(trimmed, "}") && strings.Count(trimmed, "${") == 1 {
		offset := strings.Index(src, "${") + 2
		start = e.file.advance(start, offset)
		src = strings.TrimSuffix(trimmed[2:], "}")
	}
	if nesting.Check([]byte(src), e.file.Name, start, nesting.Expression) != nil {
		return nil // refused where the template was parsed
	}
	trav, diags := hclsyntax.ParseTraversalAbs([]byte(src), e.file.Name, start)
	if diags.HasErrors() {
		return nil
	}
	return trav
}

// ExprCall reads "list(string)" as a function call, for type expressions.
func (e *StringExpr) ExprCall() *hcl.StaticCall {
	if nesting.Check([]byte(e.Raw), e.file.Name, e.start, nesting.Expression) != nil {
		return nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(e.Raw), e.file.Name, e.start)
	if diags.HasErrors() {
		return nil
	}
	call, diags := hcl.ExprCall(expr)
	if diags.HasErrors() {
		return nil
	}
	return call
}

type body struct {
	file    *File
	node    *yaml.Node
	hidden  map[string]bool
	missing *hcl.Range // where a missing argument is reported; nil: the node
	derived bool       // the remains of PartialContent: duplicates are already reported
}

func (b *body) MissingItemRange() hcl.Range {
	if b.missing != nil {
		return *b.missing
	}
	start := b.file.Pos(b.node.Line, b.node.Column)
	return hcl.Range{Filename: b.file.Name, Start: start, End: start}
}

type entry struct {
	key, value *yaml.Node
}

// entries lists the mapping's visible keys in order, reporting duplicates.
func (b *body) entries() ([]entry, hcl.Diagnostics) {
	if b.node.Kind != yaml.MappingNode {
		if b.derived || (b.node.Kind == yaml.ScalarNode && b.node.ShortTag() == "!!null") {
			return nil, nil
		}
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid block",
			Detail:   fmt.Sprintf("A mapping (key: value lines) is required here, not %s.", describeNode(b.node)),
			Subject:  b.file.NodeRange(b.node).Ptr(),
		}}
	}
	var out []entry
	var diags hcl.Diagnostics
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(b.node.Content); i += 2 {
		k, v := b.node.Content[i], b.node.Content[i+1]
		if b.hidden[k.Value] {
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			if b.derived {
				continue
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate key",
				Detail:   fmt.Sprintf("The key %q was already given at line %d.", k.Value, prev.Line),
				Subject:  b.file.NodeRange(k).Ptr(),
			})
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k, v})
	}
	return out, diags
}

// describeNode names a node's kind for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return fmt.Sprintf("the value %q", v)
	}
	return "this"
}

func (b *body) Content(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	content, remain, diags := b.PartialContent(schema)
	if !b.isMapping() {
		return content, diags
	}
	rest, d := remain.(*body).entries()
	diags = append(diags, d...)
	var names []string
	for _, a := range schema.Attributes {
		names = append(names, a.Name)
	}
	for _, bl := range schema.Blocks {
		names = append(names, bl.Type)
	}
	for _, e := range rest {
		detail := fmt.Sprintf("An argument named %q is not expected here.", e.key.Value)
		if s := Suggest(e.key.Value, names); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unsupported argument",
			Detail:   detail,
			Subject:  b.file.NodeRange(e.key).Ptr(),
		})
	}
	return content, diags
}

// IsYAML says whether a body comes from a YAML file.
func IsYAML(b hcl.Body) bool {
	_, ok := b.(*body)
	return ok
}

// NotAMapping says whether a YAML body is a list or a value, not a mapping
// of arguments (nor empty): for a labelled block, a key that was meant as
// an argument of the block above it.
func NotAMapping(b hcl.Body) bool {
	yb, ok := b.(*body)
	return ok && !yb.isMapping()
}

func (b *body) isMapping() bool {
	return b.node.Kind == yaml.MappingNode || (b.node.Kind == yaml.ScalarNode && b.node.ShortTag() == "!!null")
}

func (b *body) PartialContent(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	entries, diags := b.entries()
	byName := map[string]entry{}
	for _, e := range entries {
		byName[e.key.Value] = e
	}
	content := &hcl.BodyContent{Attributes: hcl.Attributes{}, MissingItemRange: b.MissingItemRange()}
	remain := &body{file: b.file, node: b.node, hidden: map[string]bool{}, missing: b.missing, derived: true}
	for k := range b.hidden {
		remain.hidden[k] = true
	}
	if !b.isMapping() {
		// Not a mapping at all: that one problem is enough.
		return content, remain, diags
	}
	for _, as := range schema.Attributes {
		e, ok := byName[as.Name]
		if !ok {
			if as.Required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Missing required argument",
					Detail:   fmt.Sprintf("The argument %q is required, but no definition was found.", as.Name),
					Subject:  b.MissingItemRange().Ptr(),
				})
			}
			continue
		}
		remain.hidden[as.Name] = true
		expr, d := b.file.Expr(e.value)
		diags = append(diags, d...)
		keyRange := b.file.NodeRange(e.key)
		content.Attributes[as.Name] = &hcl.Attribute{
			Name:      as.Name,
			Expr:      expr,
			Range:     hcl.RangeBetween(keyRange, expr.Range()),
			NameRange: keyRange,
		}
	}
	for _, bs := range schema.Blocks {
		e, ok := byName[bs.Type]
		if !ok {
			continue
		}
		remain.hidden[bs.Type] = true
		blocks, d := b.blocks(bs, e)
		diags = append(diags, d...)
		content.Blocks = append(content.Blocks, blocks...)
	}
	return content, remain, diags
}

// blocks turns `key: {...}` or `key: [{...}, {...}]` into blocks; with labels,
// `key: {label: {...}}`.
func (b *body) blocks(bs hcl.BlockHeaderSchema, e entry) (hcl.Blocks, hcl.Diagnostics) {
	keyRange := b.file.NodeRange(e.key)
	if len(bs.LabelNames) > 0 {
		labelled := &body{file: b.file, node: e.value, hidden: map[string]bool{}}
		items, diags := labelled.entries()
		var out hcl.Blocks
		for _, it := range items {
			lr := b.file.NodeRange(it.key)
			out = append(out, &hcl.Block{
				Type:        bs.Type,
				Labels:      []string{it.key.Value},
				Body:        b.file.blockBody(it.value, lr),
				DefRange:    lr,
				TypeRange:   keyRange,
				LabelRanges: []hcl.Range{lr},
			})
		}
		return out, diags
	}
	var nodes []*yaml.Node
	isList := e.value.Kind == yaml.SequenceNode
	if isList {
		nodes = e.value.Content
	} else {
		nodes = []*yaml.Node{e.value}
	}
	var out hcl.Blocks
	var diags hcl.Diagnostics
	for _, n := range nodes {
		if n.Kind != yaml.MappingNode {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid block",
				Detail:   fmt.Sprintf("%q must be a mapping, or a list of mappings.", bs.Type),
				Subject:  b.file.NodeRange(n).Ptr(),
			})
			continue
		}
		// A list item is its own block: it is defined where it starts.
		defRange := hcl.RangeBetween(keyRange, b.file.openRange(n))
		if isList {
			defRange = b.file.openRange(n)
		}
		out = append(out, &hcl.Block{
			Type:      bs.Type,
			Body:      b.file.blockBody(n, defRange),
			DefRange:  defRange,
			TypeRange: keyRange,
		})
	}
	return out, diags
}

func (b *body) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	entries, diags := b.entries()
	attrs := hcl.Attributes{}
	for _, e := range entries {
		expr, d := b.file.Expr(e.value)
		diags = append(diags, d...)
		keyRange := b.file.NodeRange(e.key)
		attrs[e.key.Value] = &hcl.Attribute{
			Name:      e.key.Value,
			Expr:      expr,
			Range:     hcl.RangeBetween(keyRange, expr.Range()),
			NameRange: keyRange,
		}
	}
	return attrs, diags
}

// Suggest returns the closest of the candidates to given, or "" when none is close.
func Suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// Snippet returns the bytes of the file covered by rng (for tests and messages).
func (f *File) Snippet(rng hcl.Range) string {
	if rng.Start.Byte < 0 || rng.End.Byte > len(f.Bytes) || rng.Start.Byte > rng.End.Byte {
		return ""
	}
	return string(bytes.TrimSpace(f.Bytes[rng.Start.Byte:rng.End.Byte]))
}
