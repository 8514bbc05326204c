// Package plural writes counts with their nouns in the right number ("1
// table", "2 tables", "1 index", "3 indexes") for the messages people read.
// It knows English's regular plurals and the few irregular ones planrun's
// messages use; anything else takes an explicit plural.
package plural

import (
	"fmt"
	"strings"
)

// irregular are the plurals that adding "s" or "es" gets wrong.
var irregular = map[string]string{
	"index": "indexes", // not "indices": PostgreSQL's own word
	"entry": "entries",
	"query": "queries",
	"child": "children",
}

// Of writes n and the noun, singular for exactly one.
func Of[N ~int | ~int64](n N, noun string) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %s", n, Noun(noun))
}

// Noun is the plural of a noun; of a phrase ("large object"), its last word's.
func Noun(noun string) string {
	head, last := "", noun
	if i := strings.LastIndexByte(noun, ' '); i >= 0 {
		head, last = noun[:i+1], noun[i+1:]
	}
	if p, ok := irregular[last]; ok {
		return head + p
	}
	switch {
	case strings.HasSuffix(last, "s"), strings.HasSuffix(last, "x"), strings.HasSuffix(last, "ch"), strings.HasSuffix(last, "sh"):
		return head + last + "es"
	case strings.HasSuffix(last, "y") && len(last) > 1 && !strings.ContainsRune("aeiou", rune(last[len(last)-2])):
		return head + last[:len(last)-1] + "ies"
	}
	return head + last + "s"
}

// Choose picks one or many by n, for a sentence whose other words agree
// with the count ("is"/"are").
func Choose[N ~int | ~int64](n N, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
