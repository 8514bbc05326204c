// Package nesting bounds how deeply HCL source nests, before hclsyntax
// parses it. hclsyntax's parser, and the walks over the expressions it
// builds, recurse once per level with no limit, and a goroutine that
// outgrows its stack crashes the process (no recover() catches it): a few
// hundred kilobytes of "((((", "!!!!" or "a + a + a ..." are enough.
//
// The depth at a place is the number of brackets, braces, parentheses,
// quotes, heredocs and interpolations open there, plus, on each of those
// levels, the operators, dots, closed brackets and template directives
// (if, for) chained since the last comma (or newline, in a body or an object): each
// is one more level of the expression tree.
//
// A byte scan estimates the depth, never below what the tokens give (a
// fuzz test holds it to that); only when the estimate is over the limit are
// the tokens counted, with hclsyntax's lexer (which does not recurse), to
// decide and to name the place.
package nesting

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// MaxDepth is the deepest a plan's source may nest.
const MaxDepth = 100

// Mode is what the source is.
type Mode int

const (
	Config     Mode = iota // a file: a body of attributes and blocks
	Expression             // one expression
	Template               // a template, such as a YAML string
)

// Check returns a diagnostic at the first place src nests deeper than
// MaxDepth, or nil.
func Check(src []byte, filename string, start hcl.Pos, mode Mode) *hcl.Diagnostic {
	// The scan reads bytes; the lexer reads invalid UTF-8 its own way.
	if utf8.Valid(src) && estimate(src, mode, MaxDepth) <= MaxDepth {
		return nil
	}
	depth, rng := exact(src, filename, start, mode, MaxDepth)
	if depth <= MaxDepth {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Too deeply nested",
		Detail: fmt.Sprintf("The source nests more than %d levels deep here (brackets, braces, parentheses, quotes and interpolations, "+
			"and the operators, attributes and indexes chained on each level). planrun refuses it rather than exhaust the stack.", MaxDepth),
		Subject: rng.Ptr(),
	}
}

// level is one open bracket (or the root) in the byte scan.
type level struct {
	open      byte // ( [ { $ (an interpolation or directive) " h (heredoc) t (a bare template) r (the root)
	chain     int
	marker    []byte // a heredoc's closing marker
	lineStart bool   // a heredoc's scan is at the start of a line
}

func isIdent(b byte, first bool) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || !first && (b == '-' || b >= '0' && b <= '9')
}

// estimate scans bytes for the deepest place, stopping once past limit.
func estimate(src []byte, mode Mode, limit int) int {
	root := level{open: 'r'}
	if mode == Template {
		root.open = 't'
	}
	stack := []level{root}
	sum, max := 0, 0 // sum: the chains of every level
	chain := func(n int) {
		stack[len(stack)-1].chain += n
		sum += n
	}
	push := func(l level) { stack = append(stack, l) }
	pop := func() {
		sum -= stack[len(stack)-1].chain
		stack = stack[:len(stack)-1]
		if open := stack[len(stack)-1].open; open != '"' && open != 'h' && open != 't' {
			chain(1) // the closed value is one more link of its parent's chain; template parts are a flat list
		}
	}
	for i := 0; i < len(src); {
		if d := len(stack) - 1 + sum; d > max {
			if max = d; max > limit {
				return max
			}
		}
		top := &stack[len(stack)-1]
		c := src[i]
		switch top.open {
		case '"', 'h', 't': // template text
			if top.open == 'h' && top.lineStart {
				end := bytes.IndexByte(src[i:], '\n')
				if end < 0 {
					end = len(src) - i
				}
				top.lineStart = false
				if bytes.Equal(bytes.TrimSpace(src[i:i+end]), top.marker) {
					pop()
					i += end
					continue
				}
			}
			switch {
			case c == '\\' && top.open == '"':
				i += 2
			case c == '"' && top.open == '"':
				pop()
				i++
			case c == '\n' && top.open == 'h':
				top.lineStart = true
				i++
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 3 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				if c == '%' {
					chain(1) // if and for nest what follows; the scan does not look for their ends
				}
				push(level{open: '$'})
				i += 2
			default:
				i++
			}
			continue
		}
		// Code.
		switch c {
		case '(', '[', '{':
			push(level{open: c})
		case ')':
			if top.open == '(' {
				pop()
			}
		case ']':
			if top.open == '[' {
				pop()
			}
		case '}': // closes the innermost { or interpolation, and what is open inside it
			for j := len(stack) - 1; j > 0; j-- {
				if stack[j].open == '{' || stack[j].open == '$' {
					for len(stack) > j+1 {
						sum -= stack[len(stack)-1].chain
						stack = stack[:len(stack)-1]
					}
					pop()
					break
				}
			}
		case '"':
			push(level{open: '"'})
		case ',':
			sum -= top.chain
			top.chain = 0
		case '\n':
			if top.open == '{' || top.open == 'r' && mode == Config {
				sum -= top.chain
				top.chain = 0
			}
		case '#':
			i = skipTo(src, i, "\n")
			continue
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				i = skipTo(src, i, "\n")
				continue
			}
			if i+1 < len(src) && src[i+1] == '*' {
				if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
					i += 2 + end + 2
					continue
				} // unterminated: the lexer reads operators
			}
			chain(1)
		case '<':
			if marker, next, ok := heredoc(src, i); ok {
				push(level{open: 'h', marker: marker, lineStart: true})
				i = next
				continue
			}
			chain(1)
		case '+', '-', '*', '%', '&', '|', '=', '!', '>', '?', '.':
			chain(1)
		}
		i++
	}
	if d := len(stack) - 1 + sum; d > max {
		max = d
	}
	return max
}

// skipTo returns the index of the next end at or after i (len(src) when none).
func skipTo(src []byte, i int, end string) int {
	j := bytes.Index(src[i:], []byte(end))
	if j < 0 {
		return len(src)
	}
	return i + j
}

// heredoc reads "<<MARKER\n" or "<<-MARKER\n" at i: the marker and where
// the text starts.
func heredoc(src []byte, i int) ([]byte, int, bool) {
	j := i + 2
	if j > len(src) || src[i+1] != '<' {
		return nil, 0, false
	}
	if j < len(src) && src[j] == '-' {
		j++
	}
	start := j
	for j < len(src) && isIdent(src[j], j == start) {
		j++
	}
	if j == start {
		return nil, 0, false
	}
	marker := src[start:j]
	if j < len(src) && src[j] == '\r' {
		j++
	}
	if j >= len(src) || src[j] != '\n' {
		return nil, 0, false
	}
	return marker, j + 1, true
}

// exact counts on hclsyntax's tokens: the depth, once past limit, and where.
func exact(src []byte, filename string, start hcl.Pos, mode Mode, limit int) (int, hcl.Range) {
	var toks hclsyntax.Tokens
	switch mode {
	case Config:
		toks, _ = hclsyntax.LexConfig(src, filename, start)
	case Expression:
		toks, _ = hclsyntax.LexExpression(src, filename, start)
	default:
		toks, _ = hclsyntax.LexTemplate(src, filename, start)
	}
	type tlevel struct {
		open  hclsyntax.TokenType
		chain int
	}
	const root = hclsyntax.TokenNil
	stack := []tlevel{{open: root}}
	sum, max := 0, 0
	chain := func(n int) {
		stack[len(stack)-1].chain += n
		sum += n
	}
	reset := func() {
		sum -= stack[len(stack)-1].chain
		stack[len(stack)-1].chain = 0
	}
	// popTo closes levels down to and including the innermost one opened by
	// one of opens, as the lexer pairs them; none: nothing closes.
	popTo := func(opens ...hclsyntax.TokenType) {
		for i := len(stack) - 1; i > 0; i-- {
			for _, o := range opens {
				if stack[i].open == o {
					for j := len(stack) - 1; j >= i; j-- {
						sum -= stack[j].chain
					}
					stack = stack[:i]
					if open := stack[i-1].open; open != hclsyntax.TokenOQuote && open != hclsyntax.TokenOHeredoc && (open != root || mode != Template) {
						chain(1)
					}
					return
				}
			}
			if opens[0] == hclsyntax.TokenOParen || opens[0] == hclsyntax.TokenOBrack {
				return // ) and ] close only their own bracket, innermost
			}
		}
	}
	for i, t := range toks {
		switch t.Type {
		case hclsyntax.TokenTemplateControl:
			if i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
				switch string(toks[i+1].Bytes) {
				case "if", "for":
					chain(1)
				case "endif", "endfor":
					if stack[len(stack)-1].chain > 0 {
						chain(-1)
					}
				}
			}
			stack = append(stack, tlevel{open: t.Type})
		case hclsyntax.TokenOParen, hclsyntax.TokenOBrack, hclsyntax.TokenOBrace,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			stack = append(stack, tlevel{open: t.Type})
		case hclsyntax.TokenCParen:
			popTo(hclsyntax.TokenOParen)
		case hclsyntax.TokenCBrack:
			popTo(hclsyntax.TokenOBrack)
		case hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
			popTo(hclsyntax.TokenOBrace, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl)
		case hclsyntax.TokenCQuote:
			popTo(hclsyntax.TokenOQuote)
		case hclsyntax.TokenCHeredoc:
			popTo(hclsyntax.TokenOHeredoc)
		case hclsyntax.TokenComma:
			reset()
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			if t.Type == hclsyntax.TokenComment && !bytes.HasSuffix(t.Bytes, []byte("\n")) {
				break
			}
			if open := stack[len(stack)-1].open; open == hclsyntax.TokenOBrace || open == root && mode == Config {
				reset()
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenBang, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual,
			hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenQuestion, hclsyntax.TokenDot, hclsyntax.TokenEllipsis:
			chain(1)
		}
		if d := len(stack) - 1 + sum; d > max {
			if max = d; max > limit {
				return max, t.Range
			}
		}
	}
	return max, hcl.Range{}
}
