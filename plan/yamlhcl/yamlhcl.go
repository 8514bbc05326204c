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
