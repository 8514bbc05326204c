package library

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	cases := map[string]Source{
		"./checks":         {Kind: Local, Path: "./checks"},
		"planrun/postgres": {Kind: Builtin, Path: "postgres"},
		"git::https://github.com/acme/checks.git//postgres?ref=v1.2.0": {Kind: Git, Repo: "https://github.com/acme/checks.git", Subdir: "postgres", Ref: "v1.2.0"},
		"git::file:///tmp/repo//lib":                                   {Kind: Git, Repo: "file:///tmp/repo", Subdir: "lib"},
		"git::https://host/repo.git":                                   {Kind: Git, Repo: "https://host/repo.git"},
	}
	for raw, want := range cases {
		got, err := ParseSource(raw)
		want.Raw = raw
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", raw, got, err, want)
		}
	}
	for _, bad := range []string{"checks", "planrun/nope", "git::https://host/repo.git//../etc"} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestBuiltinResolves(t *testing.T) {
	r := &Resolver{PlanDir: t.TempDir(), Lock: &Lock{Entries: map[string]*LockEntry{}}}
	fsys, name, err := r.Resolve("pg", "planrun/postgres")
	if err != nil || name != "planrun/postgres" {
		t.Fatal(name, err)
	}
	if _, err := fs.ReadFile(fsys, "checks.hcl"); err != nil {
		t.Fatal(err)
	}
}

// gitRepo makes a repository with a library in lib/ and tags it v1.
func gitRepo(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "--quiet", "-b", "main")
	writeLib(t, dir, content)
	run("add", ".")
	run("commit", "--quiet", "-m", "v1")
	run("tag", "v1")
	return dir
}

func writeLib(t *testing.T, repo, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(repo, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "lib", "checks.hcl"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGetPinsAndDetectsARewrittenTag(t *testing.T) {
	ctx := context.Background()
	repo := gitRepo(t, "# first\n")
	source := "git::file://" + repo + "//lib?ref=v1"
	planDir := t.TempDir()
	r, err := NewResolver(planDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Resolve("checks", source); err == nil || !strings.Contains(err.Error(), "run planrun get") {
		t.Fatalf("before get: %v", err)
	}
	changed, err := r.Get(ctx, "checks", source, false)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if err := r.Lock.Write(); err != nil {
		t.Fatal(err)
	}
	first := *r.Lock.Entries["checks"]
	fsys, _, err := r.Resolve("checks", source)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := fs.ReadFile(fsys, "checks.hcl"); string(raw) != "# first\n" {
		t.Fatalf("content %q", raw)
	}
	// A fresh resolver reads the lock back.
	r2, err := NewResolver(planDir)
	if err != nil || *r2.Lock.Entries["checks"] != first {
		t.Fatalf("lock round trip: %+v %v", r2.Lock.Entries["checks"], err)
	}

	// Someone rewrites the tag with other content.
	writeLib(t, repo, "# second\n")
	for _, args := range [][]string{{"commit", "--quiet", "-am", "v1 again"}, {"tag", "-f", "v1"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	_, err = r2.Get(ctx, "checks", source, false)
	var me *MismatchError
	if !errors.As(err, &me) || me.LockedCommit != first.Commit || me.FetchedCommit == first.Commit {
		t.Fatalf("a moved tag must be refused: %v", err)
	}
	if !strings.Contains(err.Error(), "planrun get -upgrade") {
		t.Fatalf("the error says how to accept it: %v", err)
	}
	// The pinned version still resolves.
	if _, _, err := r2.Resolve("checks", source); err != nil {
		t.Fatal(err)
	}
	// -upgrade accepts the new commit.
	if changed, err := r2.Get(ctx, "checks", source, true); err != nil || !changed {
		t.Fatal(changed, err)
	}
	fsys, _, err = r2.Resolve("checks", source)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := fs.ReadFile(fsys, "checks.hcl"); string(raw) != "# second\n" {
		t.Fatalf("after upgrade: %q", raw)
	}
	// Edited files in the cache are caught by their hash.
	entry := r2.Lock.Entries["checks"]
	path := filepath.Join(r2.CacheDir, "checks", entry.Commit, "lib", "checks.hcl")
	if err := os.WriteFile(path, []byte("# tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r2.Resolve("checks", source); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("tampered cache: %v", err)
	}
}
