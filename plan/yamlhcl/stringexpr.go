package yamlhcl

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/planrun/planrun/plan/internal/nesting"
)

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
