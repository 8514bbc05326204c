// Package redact hides secrets in text and values before anything is shown
// or recorded.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask replaces every secret.
const Mask = "(sensitive)"

// ShortLen is the length under which a secret (or a form of one) is
// replaced only where it stands alone, between characters that are not
// letters or digits: a sensitive "out" must not turn "stdout" into
// "std(sensitive)".
const ShortLen = 6

// Redactor replaces known secrets. It is safe for concurrent use; secrets
// can be added while a run goes on (a password found in a connection string).
type Redactor struct {
	mu       sync.RWMutex
	secrets  map[string]bool
	replacer *strings.Replacer // forms of ShortLen bytes or more, replaced wherever they are
	short    []string          // shorter forms, longest first, replaced where they stand alone
}

// New returns a redactor for the given secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{secrets: map[string]bool{}}
	r.Add(secrets...)
	return r
}

// Add registers more secrets, each in every form it can appear in (see
// Forms). Empty strings are ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, secret := range secrets {
		for _, s := range Forms(secret) {
			if !r.secrets[s] {
				r.secrets[s] = true
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	list := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		list = append(list, s)
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i]) != len(list[j]) {
			return len(list[i]) > len(list[j])
		}
		return list[i] < list[j]
	})
	pairs := make([]string, 0, 2*len(list))
	r.short = nil
	for _, s := range list {
		if len(s) < ShortLen {
			r.short = append(r.short, s)
			continue
		}
		pairs = append(pairs, s, Mask)
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// asciiJSON writes a JSON string's non-ASCII characters as \u escapes
// (UTF-16, surrogate pairs for the rest), hex digits formatted by hexFmt.
func asciiJSON(j, hexFmt string) string {
	var b strings.Builder
	for _, r := range j {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u`+hexFmt+`\u`+hexFmt, r1, r2)
		default:
			fmt.Fprintf(&b, `\u`+hexFmt, r)
		}
	}
	return b.String()
}

// Forms lists the ways a secret can be written where planrun or a tool
// shows it: as it is; percent-encoded, as in a URL's user info or query
// (upper- and lower-case hex); with a libpq key=value string's backslash
// escapes; inside a Go-quoted or JSON string (HTML characters escaped or
// not). Redacting every form is what keeps "p%40ss" out of a record when
// only "p@ss" was registered.
func Forms(secret string) []string {
	if secret == "" {
		return nil
	}
	forms := []string{secret}
	add := func(f string) {
		for _, have := range forms {
			if have == f {
				return
			}
		}
		forms = append(forms, f)
	}
	for _, enc := range []string{url.QueryEscape(secret), url.PathEscape(secret),
		strings.TrimPrefix(url.UserPassword("", secret).String(), ":"),
		percentEncode(secret, "-._~"),      // RFC 3986 strict (Python's quote(s, safe=""))
		percentEncode(secret, "-._~!'()*"), // JavaScript's encodeURIComponent
	} {
		add(enc)
		add(lowerHex(enc))
	}
	add(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret))
	quoted := strconv.Quote(secret)
	add(quoted[1 : len(quoted)-1])
	// JSON as encoders write it: HTML characters escaped or not, "/" as
	// "\/" (PHP's default), non-ASCII letters as \uXXXX in either case.
	var jsons []string
	if b, err := json.Marshal(secret); err == nil {
		jsons = append(jsons, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		b := bytes.TrimSpace(buf.Bytes())
		jsons = append(jsons, string(b[1:len(b)-1]))
	}
	for _, j := range jsons {
		for _, ascii := range []string{j, asciiJSON(j, "%04x"), asciiJSON(j, "%04X")} {
			add(ascii)
			add(strings.ReplaceAll(ascii, "/", `\/`))
		}
	}
	// Base64, standard and URL-safe, at each of the three alignments the
	// secret can have inside a longer encoded text (a Basic auth header
	// holds "user:password"): the characters that depend on the secret's
	// bytes alone.
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := 0; pad < 3; pad++ {
			encoded := e.EncodeToString(append(make([]byte, pad), secret...))
			from := (pad*8 + 5) / 6 // past the characters the padding bytes touch
			to := len(encoded) - 4  // short of the last group, which depends on what follows
			if to-from >= ShortLen {
				add(encoded[from:to])
			}
			if pad == 0 {
				add(strings.TrimRight(encoded, "="))
			}
		}
	}
	return forms
}

// percentEncode encodes every byte but ASCII letters, digits and keep.
func percentEncode(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// lowerHex writes a percent-encoding's hex digits in lower case, as some
// clients do.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = toLower(b[i+1])
			b[i+2] = toLower(b[i+2])
		}
	}
	return string(b)
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// Cut redacts s, then cuts it to at most limit bytes (at a rune start),
// marking the cut with "…". Redacting first is what keeps a secret that a
// cut would straddle from showing in part.
func (r *Redactor) Cut(s string, limit int) string {
	s = r.String(s)
	if limit <= 0 || len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep, short := r.replacer, r.short
	r.mu.RUnlock()
	if rep != nil {
		s = rep.Replace(s)
	}
	for _, sec := range short {
		s = replaceAlone(s, sec)
	}
	return s
}

// replaceAlone replaces sec where neither the character before nor the
// one after it is a letter or a digit.
func replaceAlone(s, sec string) string {
	var b strings.Builder
	for from := 0; ; {
		i := strings.Index(s[from:], sec)
		if i < 0 {
			if from == 0 {
				return s
			}
			b.WriteString(s[from:])
			return b.String()
		}
		i += from
		end := i + len(sec)
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[end:])
		b.WriteString(s[from:i])
		if (i == 0 || !isWordRune(before)) && (end == len(s) || !isWordRune(after)) {
			b.WriteString(Mask)
		} else {
			b.WriteString(sec)
		}
		from = end
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// Value returns a copy of a JSON-like value (maps, slices, strings, numbers)
// with every string value redacted. Map keys are left as they are: they
// are the output's structure, which a resumed run reads back.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	}
	return v
}
