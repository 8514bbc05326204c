package sql

import "strings"

// sqlStatement is one statement of a script and the line it starts on.
type sqlStatement struct {
	text  string
	line  int
	words []string // its keywords and identifiers, lower case, without quotes or comments
}

// splitSQL splits a script at the semicolons that end statements, skipping
// those in quotes, dollar quotes, comments, parentheses and the
// BEGIN ATOMIC ... END body of a function, the way psql does.
func splitSQL(s string) []sqlStatement {
	var out []sqlStatement
	var (
		start, line, startLine = 0, 1, 0
		parens, begins         = 0, 0
		words                  []string // the statement's words, lower case
	)
	emit := func(end int) {
		if text := strings.TrimSpace(s[start:end]); startLine > 0 && text != "" {
			out = append(out, sqlStatement{text: text, line: startLine, words: words})
		}
		start, startLine, parens, begins, words = end+1, 0, 0, 0, nil
	}
	// skipTo advances i past the first occurrence of end, counting lines.
	skipTo := func(i int, end string) int {
		j := strings.Index(s[i:], end)
		if j < 0 {
			j = len(s) - i - len(end)
		}
		line += strings.Count(s[i:i+j+len(end)], "\n")
		return i + j + len(end)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\n' {
			line++
		}
		if startLine == 0 && !sqlSpace(c) && !(c == '-' && strings.HasPrefix(s[i:], "--")) && !(c == '/' && strings.HasPrefix(s[i:], "/*")) {
			startLine = line
		}
		switch {
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			i = skipTo(i, "\n")
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			i = sqlSkipComment(s, i, &line)
		case c == '\'':
			i = sqlSkipQuoted(s, i+1, '\'', false, &line)
		case c == '"':
			i = sqlSkipQuoted(s, i+1, '"', false, &line)
		case c == '$' && (i == 0 || !sqlIdentChar(s[i-1])):
			if tag, ok := sqlDollarTag(s[i:]); ok {
				i = skipTo(i+len(tag), tag)
			} else {
				i++
			}
		case c == '(':
			parens++
			i++
		case c == ')':
			parens--
			i++
		case c == ';' && parens <= 0 && begins == 0:
			emit(i)
			i++
		case sqlIdentStart(c):
			j := i
			for j < len(s) && sqlIdentChar(s[j]) {
				j++
			}
			word := strings.ToLower(s[i:j])
			if word == "e" && j < len(s) && s[j] == '\'' {
				i = sqlSkipQuoted(s, j+1, '\'', true, &line) // E'...' takes backslash escapes
				continue
			}
			words = append(words, word)
			if parens == 0 && sqlRoutineDef(words) {
				switch {
				case word == "begin":
					begins++
				case word == "case" && begins > 0:
					begins++ // CASE also ends with END
				case word == "end" && begins > 0:
					begins--
				}
			}
			i = j
		default:
			i++
		}
	}
	emit(len(s))
	return out
}

// sqlRoutineDef reports whether a statement starts with
// CREATE [OR REPLACE] FUNCTION|PROCEDURE, whose body may be BEGIN ATOMIC.
func sqlRoutineDef(w []string) bool {
	if len(w) < 2 || w[0] != "create" {
		return false
	}
	if w[1] == "function" || w[1] == "procedure" {
		return true
	}
	return len(w) >= 4 && w[1] == "or" && w[2] == "replace" && (w[3] == "function" || w[3] == "procedure")
}

// sqlSkipQuoted returns the index after the closing quote; a doubled quote is
// part of the text, and so is a backslash-escaped one in E'...' strings.
func sqlSkipQuoted(s string, i int, quote byte, backslash bool, line *int) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n':
			*line++
		case backslash && c == '\\':
			i++
			if i < len(s) && s[i] == '\n' {
				*line++
			}
		case c == quote:
			if i+1 < len(s) && s[i+1] == quote {
				i++
			} else {
				return i + 1
			}
		}
		i++
	}
	return i
}

// sqlSkipComment skips a /* */ comment, which nests in SQL.
func sqlSkipComment(s string, i int, line *int) int {
	depth := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(s[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			if s[i] == '\n' {
				*line++
			}
			i++
		}
	}
	return i
}

// sqlDollarTag returns the $tag$ at the start of s, if there is one ($1 is a
// parameter, not a tag).
func sqlDollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case sqlIdentStart(c) || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

func sqlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func sqlIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func sqlIdentChar(c byte) bool { return sqlIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
