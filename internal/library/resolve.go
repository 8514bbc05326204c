package library

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Resolver turns library sources into their files.
type Resolver struct {
	PlanDir  string // local paths are relative to it
	CacheDir string // where git libraries are kept: .planrun/libs
	Lock     *Lock
}

// NewResolver reads the plan directory's lock file.
func NewResolver(planDir string) (*Resolver, error) {
	lock, err := ReadLock(planDir)
	if err != nil {
		return nil, err
	}
	return &Resolver{PlanDir: planDir, CacheDir: filepath.Join(planDir, ".planrun", "libs"), Lock: lock}, nil
}

// Resolve returns a library's files and the name its files go by in
// diagnostics. A git library must have been fetched by planrun get, and its
// files must still hash to what the lock file says.
func (r *Resolver) Resolve(name, source string) (fs.FS, string, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, "", err
	}
	switch src.Kind {
	case Builtin:
		sub, err := fs.Sub(builtinFS, "builtin/"+src.Path)
		return sub, source, err
	case Local:
		dir := src.Path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(r.PlanDir, dir)
		}
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			return nil, "", fmt.Errorf("library %q: %s is not a directory", name, dir)
		}
		return os.DirFS(dir), src.Path, nil
	}
	entry := r.Lock.Entries[name]
	if entry == nil || entry.Source != source {
		return nil, "", fmt.Errorf("library %q (%s) is not fetched yet: run planrun get", name, source)
	}
	dir := r.checkout(name, entry.Commit, src.Subdir)
	if _, err := os.Stat(dir); err != nil {
		return nil, "", fmt.Errorf("library %q is pinned to %s in %s but not fetched here: run planrun get", name, short(entry.Commit), LockFileName)
	}
	fsys := os.DirFS(dir)
	hash, err := ContentHash(fsys)
	if err != nil {
		return nil, "", fmt.Errorf("library %q: %w", name, err)
	}
	if hash != entry.Hash {
		return nil, "", fmt.Errorf("library %q: its files in %s changed since %s was written (%s, pinned %s); run planrun get to fetch the pinned version again", name, dir, LockFileName, hash, entry.Hash)
	}
	rel, err := filepath.Rel(r.PlanDir, dir)
	if err != nil {
		rel = dir
	}
	return fsys, rel, nil
}

func (r *Resolver) checkout(name, commit, subdir string) string {
	return filepath.Join(r.CacheDir, name, commit, filepath.FromSlash(subdir))
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// MismatchError says a git ref no longer points where the lock pinned it.
type MismatchError struct {
	Name, Source               string
	LockedCommit, LockedHash   string
	FetchedCommit, FetchedHash string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("library %q: %s now resolves to commit %s (%s), but %s pins commit %s (%s): the ref was moved or rewritten. Check the change, then run planrun get -upgrade to accept it",
		e.Name, e.Source, short(e.FetchedCommit), e.FetchedHash, LockFileName, short(e.LockedCommit), e.LockedHash)
}

// Get fetches a git library at its ref and pins it in the lock (planrun
// get). With upgrade, a ref that moved is accepted and the lock updated;
// without, it is an error. It reports whether the lock changed.
func (r *Resolver) Get(ctx context.Context, name, source string, upgrade bool) (bool, error) {
	src, err := ParseSource(source)
	if err != nil || src.Kind != Git {
		return false, err
	}
	if err := os.MkdirAll(r.CacheDir, 0o755); err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	tmp, err := os.MkdirTemp(r.CacheDir, ".fetch-")
	if err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := git(ctx, "", "clone", "--quiet", "--no-checkout", src.Repo, tmp); err != nil {
		return false, fmt.Errorf("library %q: clone %s: %w", name, src.Repo, err)
	}
	ref := src.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if err := git(ctx, tmp, "checkout", "--quiet", "--detach", ref); err != nil {
		return false, fmt.Errorf("library %q: checkout %s: %w", name, ref, err)
	}
	commit, err := gitOutput(ctx, tmp, "rev-parse", "HEAD")
	if err != nil {
		return false, fmt.Errorf("library %q: %w", name, err)
	}
	subdir := filepath.Join(tmp, filepath.FromSlash(src.Subdir))
	hash, err := ContentHash(os.DirFS(subdir))
	if err != nil {
		return false, fmt.Errorf("library %q: %s//%s: %w", name, src.Repo, src.Subdir, err)
	}
	entry := r.Lock.Entries[name]
	if entry != nil && entry.Source == source && !upgrade && (entry.Commit != commit || entry.Hash != hash) {
		return false, &MismatchError{Name: name, Source: source, LockedCommit: entry.Commit, LockedHash: entry.Hash, FetchedCommit: commit, FetchedHash: hash}
	}
	dest := filepath.Join(r.CacheDir, name, commit)
	if _, err := os.Stat(dest); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return false, fmt.Errorf("library %q: %w", name, err)
		}
		if err := os.RemoveAll(filepath.Join(tmp, ".git")); err != nil {
			return false, fmt.Errorf("library %q: %w", name, err)
		}
		if err := os.Rename(tmp, dest); err != nil {
			return false, fmt.Errorf("library %q: %w", name, err)
		}
	}
	changed := entry == nil || entry.Source != source || entry.Commit != commit || entry.Hash != hash
	r.Lock.Entries[name] = &LockEntry{Name: name, Source: source, Commit: commit, Hash: hash}
	return changed, nil
}

func git(ctx context.Context, dir string, args ...string) error {
	_, err := gitOutput(ctx, dir, args...)
	return err
}

// gitOutput runs the system git without ever prompting for credentials.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %s", args[0], strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return strings.TrimSpace(string(out)), nil
}
