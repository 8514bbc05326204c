package library

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// LockFileName sits next to the plan and is committed with it.
const LockFileName = "planrun.lock.hcl"

// Lock pins each git library to a commit and a content hash.
type Lock struct {
	Path    string
	Entries map[string]*LockEntry // by library name
}

// LockEntry is one pinned library.
type LockEntry struct {
	Name   string `hcl:"name,label"`
	Source string `hcl:"source"`
	Commit string `hcl:"commit"`
	Hash   string `hcl:"hash"`
}

type lockFile struct {
	Libraries []*LockEntry `hcl:"library,block"`
}

// ReadLock reads the lock file in dir; a missing file is an empty lock.
func ReadLock(dir string) (*Lock, error) {
	l := &Lock{Path: filepath.Join(dir, LockFileName), Entries: map[string]*LockEntry{}}
	src, err := os.ReadFile(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.Path, err)
	}
	f, diags := hclsyntax.ParseConfig(src, l.Path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("read %s: %w", l.Path, diags)
	}
	var lf lockFile
	if diags := gohcl.DecodeBody(f.Body, nil, &lf); diags.HasErrors() {
		return nil, fmt.Errorf("read %s: %w", l.Path, diags)
	}
	for _, e := range lf.Libraries {
		l.Entries[e.Name] = e
	}
	return l, nil
}

// Write saves the lock file atomically.
func (l *Lock) Write() error {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# Written by planrun get: the commit and content of every git library. Commit it.\n")}})
	names := make([]string, 0, len(l.Entries))
	for n := range l.Entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := l.Entries[n]
		body.AppendNewline()
		b := body.AppendNewBlock("library", []string{n}).Body()
		b.SetAttributeValue("source", cty.StringVal(e.Source))
		b.SetAttributeValue("commit", cty.StringVal(e.Commit))
		b.SetAttributeValue("hash", cty.StringVal(e.Hash))
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.Path), ".planrun.lock.*")
	if err != nil {
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(f.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	if err := os.Rename(tmp.Name(), l.Path); err != nil {
		return fmt.Errorf("write %s: %w", l.Path, err)
	}
	return nil
}
