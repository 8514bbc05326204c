package yamlhcl

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

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
