// Package library finds the files of check libraries: a local directory, a
// git repository at a ref (fetched with the system git into .planrun/libs/
// and pinned in planrun.lock.hcl), or a library built into planrun.
package library

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed builtin
var builtinFS embed.FS

// Builtins lists the libraries built into planrun ("planrun/postgres").
func Builtins() []string {
	entries, _ := builtinFS.ReadDir("builtin") // embedded: cannot fail
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, "planrun/"+e.Name())
		}
	}
	return out
}

// Kind is where a library comes from.
type Kind int

// Kinds of sources.
const (
	Local Kind = iota
	Git
	Builtin
)

// Source is a parsed library source string.
type Source struct {
	Raw    string
	Kind   Kind
	Path   string // Local: the directory; Builtin: the name after planrun/
	Repo   string // Git: the clone URL
	Subdir string // Git: the directory inside the repository
	Ref    string // Git: tag, branch or commit ("" = the default branch)
}

// ParseSource reads "./checks", "planrun/postgres" or
// "git::https://host/org/repo.git//subdir?ref=v1.2.0".
func ParseSource(raw string) (Source, error) {
	s := Source{Raw: raw}
	switch {
	case strings.HasPrefix(raw, "git::"):
		s.Kind = Git
		rest := strings.TrimPrefix(raw, "git::")
		u, err := url.Parse(rest)
		if err != nil {
			return s, fmt.Errorf("library source %q: %w", raw, err)
		}
		s.Ref = u.Query().Get("ref")
		q := u.Query()
		q.Del("ref")
		u.RawQuery = q.Encode()
		repo := u.String()
		// "//" after the scheme's separates the repository from the subdirectory.
		scheme := ""
		if i := strings.Index(repo, "://"); i >= 0 {
			scheme, repo = repo[:i+3], repo[i+3:]
		}
		if i := strings.Index(repo, "//"); i >= 0 {
			s.Subdir = strings.Trim(repo[i+2:], "/")
			repo = repo[:i]
		}
		s.Repo = scheme + repo
		if s.Repo == "" {
			return s, fmt.Errorf("library source %q: no repository", raw)
		}
		if strings.Contains(s.Subdir, "..") {
			return s, fmt.Errorf("library source %q: the subdirectory may not contain ..", raw)
		}
	case strings.HasPrefix(raw, "planrun/"):
		s.Kind = Builtin
		s.Path = strings.TrimPrefix(raw, "planrun/")
		if _, err := fs.Stat(builtinFS, path.Join("builtin", s.Path)); err != nil {
			return s, fmt.Errorf("there is no built-in library %q; the built-in libraries are: %s", raw, strings.Join(Builtins(), ", "))
		}
	case strings.HasPrefix(raw, "./"), strings.HasPrefix(raw, "../"), filepath.IsAbs(raw):
		s.Kind = Local
		s.Path = raw
	default:
		return s, fmt.Errorf("library source %q: use a local path (./checks), git::URL//subdir?ref=TAG, or a built-in library (%s)", raw, strings.Join(Builtins(), ", "))
	}
	return s, nil
}

// isLibraryFile says which files of a library directory are read.
func isLibraryFile(name string) bool {
	switch path.Ext(name) {
	case ".hcl", ".yaml", ".yml":
		return !strings.HasSuffix(name, ".lock.hcl")
	}
	return false
}

// ContentHash is a stable hash of a library's files (names and bytes), as
// recorded in the lock file: "sha256:…".
func ContentHash(fsys fs.FS) (string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && isLibraryFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no .hcl, .yaml or .yml files")
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(raw))
		h.Write(raw)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
