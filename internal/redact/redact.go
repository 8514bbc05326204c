// Package redact hides secrets in text and values before anything is shown
// or recorded.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mask replaces every secret.
const Mask = "(sensitive)"

// Redactor replaces known secrets. It is safe for concurrent use; secrets
// can be added while a run goes on (a password found in a connection string).
type Redactor struct {
	mu       sync.RWMutex
	secrets  map[string]bool
	replacer *strings.Replacer
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
	for _, s := range list {
		pairs = append(pairs, s, Mask)
	}
	r.replacer = strings.NewReplacer(pairs...)
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
	if b, err := json.Marshal(secret); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		b := bytes.TrimSpace(buf.Bytes())
		add(string(b[1 : len(b)-1]))
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
	rep := r.replacer
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Value returns a copy of a JSON-like value (maps, slices, strings, numbers)
// with every string redacted; map keys included.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.String(k)] = r.Value(e)
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
