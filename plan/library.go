package plan

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// LibraryResolver finds a library's files: a file system whose top
// directory holds them, and the name they go by in diagnostics.
type LibraryResolver func(name, source string) (files fs.FS, display string, err error)

// loadLibraries reads each library's files into a scope of its own: its
// variables bound to the library block's inputs, its checks and steps
// addressed library.NAME.check.X. The library's files keep their own names,
// so a problem inside one is reported at its own line.
func (l *loader) loadLibraries() (diags, fatal hcl.Diagnostics) {
	for _, lib := range l.libraries {
		if d := l.interrupted(); d != nil {
			return append(diags, d...), append(fatal, d...)
		}
		if lib.Source == "" {
			continue // reported when the block was decoded
		}
		if l.opts.Libraries == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Libraries cannot be loaded here",
				Detail:  fmt.Sprintf("library %q: this caller of plan.Load gives no library resolver.", lib.Name),
				Subject: lib.sourceRange.Ptr(),
			})
			continue
		}
		files, display, err := l.opts.Libraries(lib.Name, lib.Source)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Cannot load library",
				Detail:  err.Error() + ".",
				Subject: lib.sourceRange.Ptr(),
			})
			continue
		}
		lib.Dir = display
		d, f := l.loadLibrary(lib, files, display)
		diags = append(diags, d...)
		fatal = append(fatal, f...)
	}
	return diags, fatal
}

func (l *loader) loadLibrary(lib *Library, files fs.FS, display string) (diags, fatal hcl.Diagnostics) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read library", Detail: err.Error(), Subject: lib.sourceRange.Ptr()}}, nil
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && isPlanFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Empty library",
			Detail:  fmt.Sprintf("library %q: %s holds no .hcl, .yaml or .yml files.", lib.Name, display),
			Subject: lib.sourceRange.Ptr(),
		}}, nil
	}
	var decls declarations
	syntaxOK := true
	for _, n := range names {
		if d := l.interrupted(); d != nil {
			return append(diags, d...), append(fatal, d...)
		}
		src, d := l.readSource(func() (io.ReadCloser, error) { return files.Open(n) }, path.Join(display, n))
		if d != nil {
			if d[0].Summary == "Cannot read plan file" {
				d[0].Summary, d[0].Subject = "Cannot read library file", lib.sourceRange.Ptr()
			}
			diags = append(diags, d...)
			syntaxOK = false
			continue
		}
		name := path.Join(display, n)
		l.hashFile("library/"+lib.Name+"/"+n, src)
		blocks, ok, d := l.parseFile(name, src)
		diags = append(diags, d...)
		syntaxOK = syntaxOK && ok
		for _, b := range blocks {
			switch b.Type {
			case "plan", "state", "library":
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Not allowed in a library",
					Detail:  fmt.Sprintf("A library declares variables, locals, databases, checks and steps; a %s block belongs in the plan.", b.Type),
					Subject: b.DefRange.Ptr(),
				})
				continue
			}
			d, f := l.declare(b, &decls)
			diags = append(diags, d...)
			fatal = append(fatal, f...)
		}
	}
	if !syntaxOK {
		return diags, append(fatal, diags...)
	}
	scope := &Scope{
		Prefix:     "library." + lib.Name + ".",
		plan:       l.plan,
		vars:       map[string]cty.Value{},
		sensitive:  map[string]bool{},
		markedVars: map[string]cty.Value{},
		locals:     decls.locals,
		databases:  decls.databases,
	}
	lib.scope = scope
	lib.Variables = decls.vars
	d := l.bindInputs(lib, decls.vars, scope)
	diags = append(diags, d...)
	fatal = append(fatal, d...)
	d = l.orderScopeLocals(scope)
	diags = append(diags, d...)
	fatal = append(fatal, d...)
	for _, st := range decls.steps {
		st.Scope = scope
		st.Addr = scope.Prefix + st.Addr
		st.libraryDeps = lib.DependsOn
		lib.steps = append(lib.steps, st)
	}
	return diags, fatal
}

// bindInputs gives the library's variables their values from the library
// block's inputs: every input must name a variable, every variable without
// a default needs an input, and each value must fit the variable's type.
// Inputs are known before the run: they may read variables, locals and
// databases, not step outputs.
func (l *loader) bindInputs(lib *Library, vars []*Variable, scope *Scope) hcl.Diagnostics {
	var diags hcl.Diagnostics
	declared := map[string]*Variable{}
	var names []string
	for _, v := range vars {
		declared[v.Name] = v
		names = append(names, v.Name)
	}
	given := map[string]bool{}
	if lib.Inputs != nil {
		pairs, d := hcl.ExprMap(lib.Inputs)
		if d.HasErrors() {
			return append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid inputs",
				Detail:  "inputs is an object: { name = value, ... }, one entry per variable of the library.",
				Subject: lib.Inputs.Range().Ptr(),
			})
		}
		ctx, d := l.plan.root.context(l.ctx, nil, func(string) (cty.Value, bool) { return cty.DynamicVal, true }, true)
		diags = append(diags, d...)
		for _, kv := range pairs {
			keyVal, d := kv.Key.Value(nil)
			if d.HasErrors() || keyVal.Type() != cty.String || keyVal.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid input name", Detail: "An input's name is a plain name, such as source.", Subject: kv.Key.Range().Ptr()})
				continue
			}
			name := keyVal.AsString()
			v := declared[name]
			if v == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown library input",
					Detail: fmt.Sprintf("library %q (%s) has no variable %q.%s Its variables are: %s.",
						lib.Name, lib.Source, name, suggestion(name, names), joinNames(names)),
					Subject: kv.Key.Range().Ptr(),
				})
				continue
			}
			given[name] = true
			refs, d := l.checkRefs(kv.Value, l.plan.root)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			if len(refs) > 0 {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Input not known before the run",
					Detail:  fmt.Sprintf("Library inputs are bound before anything runs; %s reads %s. Pass variables, locals or databases, and order the library with depends_on.", name, refs[0]),
					Subject: kv.Value.Range().Ptr(),
				})
				continue
			}
			val, d := kv.Value.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			conv, err := convertValue(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid library input",
					Detail: fmt.Sprintf("library %q: input %q does not fit variable %q (declared at %s): %s.",
						lib.Name, name, name, v.DeclRange, redactIf(IsSensitive(val), err.Error())),
					Subject: kv.Value.Range().Ptr(),
				})
				continue
			}
			if v.Sensitive {
				scope.sensitive[name] = true
			} else if IsSensitive(conv) {
				// Keep the marks where they are: a database's url is
				// secret, its name is not.
				scope.markedVars[name] = conv
			}
			conv, _ = conv.UnmarkDeep()
			scope.vars[name] = conv
		}
	}
	for _, v := range vars {
		if given[v.Name] {
			continue
		}
		if v.Default != cty.NilVal {
			scope.vars[v.Name] = v.Default
			if v.Sensitive {
				scope.sensitive[v.Name] = true
			}
			continue
		}
		subject := lib.DeclRange
		if lib.Inputs != nil {
			subject = lib.Inputs.Range()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing library input",
			Detail:  fmt.Sprintf("library %q needs an input for variable %q (declared at %s), which has no default.", lib.Name, v.Name, v.DeclRange),
			Subject: subject.Ptr(),
		})
	}
	if diags.HasErrors() {
		return diags
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": scope.varObject(true)}, Functions: l.plan.functions()}
	for _, v := range vars {
		diags = append(diags, checkValidations(v, ctx)...)
	}
	return diags
}
