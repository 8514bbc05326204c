package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Options control loading.
type Options struct {
	Types    Types    // the step types; required
	Vars     []string // "-var name=value", in order
	VarFiles []string // "-var-file FILE" (.hcl, .json, .yaml), in order
	Environ  []string // the process environment for env() and PLANRUN_VAR_*; nil means os.Environ()
	// Libraries finds the files of library blocks; nil means a plan with a
	// library block does not load.
	Libraries LibraryResolver
	// UnsetUnknown makes every variable not given a value (by -var, a var
	// file or the environment) unknown, its default too, instead of an
	// error: for commands that only read run records (status, history,
	// report), which must not need the plan's secrets, and must not take
	// a default for the value the run had.
	UnsetUnknown bool
}

// Load reads a plan file (or a directory of .hcl/.yaml files), resolves its
// variables, checks every step against its type, compiles the assertions and
// builds the DAG. All problems come back at once as diagnostics.
func Load(path string, opts Options) (*Plan, hcl.Diagnostics) {
	return LoadContext(context.Background(), path, opts)
}

// LoadContext is Load that stops soon after ctx is done (between files,
// blocks, locals and steps; a big file's parse is abandoned), returning an
// "Interrupted" diagnostic: a plan of millions of lines takes a while.
func LoadContext(ctx context.Context, path string, opts Options) (*Plan, hcl.Diagnostics) {
	return load(ctx, path, opts, defaultLimits)
}

func load(ctx context.Context, path string, opts Options, lim limits) (*Plan, hcl.Diagnostics) {
	if opts.Types == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No step types", Detail: "plan.Load needs Options.Types."}}
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	files, err := planFiles(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read plan", Detail: err.Error()}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read plan", Detail: err.Error()}}
	}
	dir := abs
	if st, err := os.Stat(abs); err == nil && !st.IsDir() {
		dir = filepath.Dir(abs)
	}
	p := &Plan{
		Path:      path,
		Dir:       dir,
		Files:     map[string]*hcl.File{},
		OnFailure: OnFailureRollback,
		byAddr:    map[string]*Step{},
		environ:   opts.Environ,
	}
	p.root = &Scope{plan: p, vars: nil, sensitive: map[string]bool{}}
	// Built now, so that concurrent RunContext calls only read them.
	p.functions()
	p.pathObject()
	l := &loader{ctx: ctx, limits: lim, plan: p, opts: opts, stepIndex: map[string]*Step{}, hash: sha256.New()}

	var blocks hcl.Blocks
	var diags hcl.Diagnostics
	syntaxOK := true
	// Every file is read before any is parsed, so that a plan too large
	// is refused before the work.
	srcs := make([][]byte, len(files))
	for i, name := range files {
		src, d := l.readSource(osOpen(name), name)
		if d != nil {
			diags = append(diags, d...)
			syntaxOK = false
			if l.tooBig {
				return p, diags
			}
			continue
		}
		srcs[i] = src
	}
	for i, name := range files {
		if d := l.interrupted(); d != nil {
			return p, append(diags, d...)
		}
		src := srcs[i]
		if src == nil {
			continue
		}
		l.hashFile(filepath.Base(name), src)
		b, ok, d := l.parseFile(name, src)
		diags = append(diags, d...)
		blocks = append(blocks, b...)
		syntaxOK = syntaxOK && ok
	}
	// An unknown top-level block is reported and skipped; the rest is
	// still checked. A file that does not parse stops here.
	if !syntaxOK {
		p.Hash = hex.EncodeToString(l.hash.Sum(nil))
		return p, diags
	}
	diags = append(diags, l.decode(blocks)...)
	p.Hash = hex.EncodeToString(l.hash.Sum(nil))
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	}
	return p, diags
}

// hashFile adds a file to the plan's content hash.
func (l *loader) hashFile(name string, src []byte) {
	fmt.Fprintf(l.hash, "%s\x00%d\x00", name, len(src))
	l.hash.Write(src)
}

// planFiles lists the files of a plan: the file itself, or a directory's
// .hcl/.yaml/.yml files in name order.
func planFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !isPlanFile(e.Name()) {
			continue
		}
		out = append(out, filepath.Join(path, e.Name()))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .hcl, .yaml or .yml files", path)
	}
	return out, nil
}

func isPlanFile(name string) bool {
	switch filepath.Ext(name) {
	case ".hcl", ".yaml", ".yml":
		return !strings.HasSuffix(name, ".lock.hcl")
	}
	return false
}

func isYAML(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "plan", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "database", LabelNames: []string{"name"}},
		{Type: "step", LabelNames: []string{"name"}},
		{Type: "check", LabelNames: []string{"name"}},
		{Type: "library", LabelNames: []string{"name"}},
		{Type: "state"},
	},
}

// yamlRootSchema mirrors rootSchema: named maps keyed by the block label.
var yamlRootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "plan"},
		{Type: "variables", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "databases", LabelNames: []string{"name"}},
		{Type: "steps", LabelNames: []string{"name"}},
		{Type: "checks", LabelNames: []string{"name"}},
		{Type: "libraries", LabelNames: []string{"name"}},
		{Type: "state"},
	},
}

var yamlBlockTypes = map[string]string{
	"variables": "variable", "databases": "database", "steps": "step",
	"checks": "check", "libraries": "library",
}

// parseFile returns a file's top-level blocks; ok is false when the file
// does not parse at all.
func (l *loader) parseFile(name string, src []byte) (hcl.Blocks, bool, hcl.Diagnostics) {
	res, stopped := l.parseAbandonable(name, src)
	if stopped != nil {
		return nil, false, stopped
	}
	if isYAML(name) {
		yf, diags := res.yaml, res.diags
		l.plan.Files[name] = &hcl.File{Bytes: src}
		if diags.HasErrors() {
			return nil, false, diags
		}
		if yf.Root == nil {
			return nil, true, diags
		}
		content, d := yf.Body(yf.Root).Content(yamlRootSchema)
		diags = append(diags, d...)
		for _, b := range content.Blocks {
			if t, ok := yamlBlockTypes[b.Type]; ok {
				b.Type = t
			}
		}
		return content.Blocks, true, diags
	}
	f, diags := res.hcl, res.diags
	if f == nil {
		l.plan.Files[name] = &hcl.File{Bytes: src} // for the snippet of a refusal
		return nil, false, diags
	}
	l.plan.Files[name] = f
	if diags.HasErrors() {
		return nil, false, diags
	}
	content, d := f.Body.Content(rootSchema)
	return content.Blocks, true, append(diags, d...)
}
