package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/plan/yamlhcl"
)

var refRoots = []string{"var", "local", "database", "step", "check", "path"}

// checkRefs checks every reference in expr against the declarations of the
// scope (classifying traversals by their root name, as Terraform's
// addrs.ParseRef does) and returns the step and check addresses it reads,
// directly or through locals and databases.
func (l *loader) checkRefs(expr hcl.Expression, scope *Scope) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var refs []string
	for _, trav := range expr.Variables() {
		r, d := l.checkTraversal(trav, scope)
		diags = append(diags, d...)
		refs = append(refs, r...)
	}
	return uniqueSorted(refs), diags
}

func (l *loader) checkTraversal(trav hcl.Traversal, scope *Scope) ([]string, hcl.Diagnostics) {
	root := trav.RootName()
	rootRange := trav[0].SourceRange()
	name, nameRange, hasName := "", trav.SourceRange(), false
	if len(trav) > 1 {
		if a, ok := trav[1].(hcl.TraverseAttr); ok {
			name, nameRange, hasName = a.Name, a.SrcRange, true
		}
	}
	undeclared := func(what string, names []string) hcl.Diagnostics {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Reference to undeclared " + what,
			Detail:   fmt.Sprintf("There is no %s named %q.%s", what, name, suggestion(name, names)),
			Subject:  hcl.RangeBetween(rootRange, nameRange).Ptr(),
		}}
	}
	needName := func() hcl.Diagnostics {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid reference",
			Detail:   fmt.Sprintf("A reference to %s needs a name, such as %s.NAME.", root, root),
			Subject:  trav.SourceRange().Ptr(),
		}}
	}
	switch root {
	case "var":
		if !hasName {
			return nil, needName()
		}
		if _, ok := scope.vars[name]; !ok {
			return nil, undeclared("input variable", mapKeys(scope.vars))
		}
		return nil, nil
	case "local":
		if !hasName {
			return nil, needName()
		}
		if scope.local(name) != nil {
			return scope.localRefs[name], nil
		}
		var names []string
		for _, lo := range scope.locals {
			names = append(names, lo.Name)
		}
		return nil, undeclared("local value", names)
	case "database":
		if !hasName {
			return nil, needName()
		}
		for _, db := range scope.databases {
			if db.Name == name {
				if len(trav) > 2 {
					if a, ok := trav[2].(hcl.TraverseAttr); !ok || (a.Name != "url" && a.Name != "name") {
						return nil, hcl.Diagnostics{{
							Severity: hcl.DiagError, Summary: "Unsupported attribute",
							Detail:  "A database has the attributes name and url.",
							Subject: trav[2].SourceRange().Ptr(),
						}}
					}
				}
				return scope.databaseRefs[name], nil
			}
		}
		var names []string
		for _, db := range scope.databases {
			names = append(names, db.Name)
		}
		return nil, undeclared("database", names)
	case "step", "check":
		if !hasName {
			return nil, needName()
		}
		addr := scope.Prefix + root + "." + name
		target := l.stepIndex[addr]
		if target == nil {
			other := "check"
			if root == "check" {
				other = "step"
			}
			if l.stepIndex[scope.Prefix+other+"."+name] != nil {
				return nil, hcl.Diagnostics{{
					Severity: hcl.DiagError, Summary: "Reference to undeclared " + root,
					Detail:  fmt.Sprintf("%q is a %s: write %s.%s.", name, other, other, name),
					Subject: hcl.RangeBetween(rootRange, nameRange).Ptr(),
				}}
			}
			return nil, undeclared(root, l.stepNames(scope, StepKind(root)))
		}
		if len(trav) > 2 {
			a, ok := trav[2].(hcl.TraverseAttr)
			if !ok || a.Name != "output" {
				return nil, hcl.Diagnostics{{
					Severity: hcl.DiagError, Summary: "Unsupported attribute",
					Detail:  fmt.Sprintf("A %s exposes its output: write %s.%s.output.FIELD.", root, root, name),
					Subject: trav[2].SourceRange().Ptr(),
				}}
			}
			if target.Type != nil {
				base := fmt.Sprintf("%s.%s.output", root, name)
				if d := checkPath(outputShape(target.Type.Output()), trav[3:], base); d != nil {
					return nil, hcl.Diagnostics{d}
				}
			}
		}
		return []string{addr}, nil
	case "path":
		if !hasName || (name != "plan" && name != "cwd") {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError, Summary: "Unsupported attribute",
				Detail:  "path has the attributes plan (the plan's directory) and cwd (the working directory).",
				Subject: trav.SourceRange().Ptr(),
			}}
		}
		return nil, nil
	}
	return nil, hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Unknown reference",
		Detail: fmt.Sprintf("There is no %q here. References start with %s.%s",
			root, strings.Join(refRoots, ", "), suggestion(root, refRoots)),
		Subject: rootRange.Ptr(),
	}}
}

// checkPath walks a traversal through a shape and reports the first step
// that does not exist, naming the fields that do.
func checkPath(shape *Shape, trav hcl.Traversal, base string) *hcl.Diagnostic {
	path := base
	for _, t := range trav {
		var name string
		isIndex := false
		switch tt := t.(type) {
		case hcl.TraverseAttr:
			name = tt.Name
		case hcl.TraverseIndex:
			isIndex = true
			if tt.Key.Type() == cty.String && tt.Key.IsKnown() {
				name = tt.Key.AsString()
			}
		default:
			return nil
		}
		var elem *Shape
		var d *hcl.Diagnostic
		elem, d = stepShape(shape, name, isIndex, path, t.SourceRange())
		if d != nil {
			return d
		}
		if elem == nil {
			return nil
		}
		shape = elem
		if isIndex {
			path += "[…]"
		} else {
			path += "." + name
		}
	}
	return nil
}

// stepShape moves one step (a field name or an index) into a shape. A nil
// shape with no diagnostic means "any value: stop checking".
func stepShape(shape *Shape, name string, isIndex bool, path string, rng hcl.Range) (*Shape, *hcl.Diagnostic) {
	switch shape.Kind {
	case KindAny:
		return nil, nil
	case KindList:
		if isIndex {
			return shape.Elem, nil
		}
		return nil, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Unsupported attribute",
			Detail:  fmt.Sprintf("%s is a list; pick an element first, as in %s[0].%s.", path, path, name),
			Subject: rng.Ptr(),
		}
	case KindMap:
		return shape.Elem, nil
	case KindObject:
		if isIndex && name == "" {
			return nil, nil
		}
		f := shape.Field(name)
		if f == nil {
			return nil, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unsupported attribute",
				Detail: fmt.Sprintf("%s has no field %q.%s Its fields are: %s.",
					path, name, suggestion(name, shape.FieldNames()), strings.Join(shape.FieldNames(), ", ")),
				Subject: rng.Ptr(),
			}
		}
		return f.Shape, nil
	}
	return nil, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Unsupported attribute",
		Detail:  fmt.Sprintf("%s is a %s and has no fields.", path, shape.Kind),
		Subject: rng.Ptr(),
	}
}

func (l *loader) stepNames(scope *Scope, kind StepKind) []string {
	var names []string
	prefix := scope.Prefix + string(kind) + "."
	for addr := range l.stepIndex {
		if strings.HasPrefix(addr, prefix) {
			names = append(names, strings.TrimPrefix(addr, prefix))
		}
	}
	sort.Strings(names)
	return names
}

func (l *loader) suggestStep(addr string) string {
	var addrs []string
	for a := range l.stepIndex {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs) // ties go to the same name every run
	if s := yamlhcl.Suggest(addr, addrs); s != "" {
		return fmt.Sprintf(" Did you mean %s?", s)
	}
	return ""
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func uniqueSorted(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	sort.Strings(in)
	out := in[:1]
	for _, s := range in[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

// orderLocals sorts each scope's locals so that every local comes after the
// locals it reads, and records which steps each local and database reads.
func (l *loader) orderLocals() hcl.Diagnostics {
	return l.orderScopeLocals(l.plan.root)
}

func (l *loader) orderScopeLocals(scope *Scope) hcl.Diagnostics {
	var diags hcl.Diagnostics
	scope.localRefs = map[string][]string{}
	scope.localReads = map[string][]string{}
	scope.databaseRefs = map[string][]string{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(lo *Local, path []string) bool
	visit = func(lo *Local, path []string) bool {
		switch state[lo.Name] {
		case 1:
			cycle := append(append([]string(nil), path...), "local."+lo.Name)
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Cycle in locals",
				Detail: fmt.Sprintf("These locals read each other, so none can be evaluated first: %s.",
					strings.Join(cycle[indexOf(cycle, "local."+lo.Name):], " -> ")),
				Subject: lo.Range.Ptr(),
			})
			return false
		case 2:
			return true
		}
		state[lo.Name] = 1
		var refs []string
		for _, trav := range lo.Expr.Variables() {
			switch trav.RootName() {
			case "local":
				if len(trav) > 1 {
					if a, ok := trav[1].(hcl.TraverseAttr); ok && scope.local(a.Name) != nil {
						scope.localReads[lo.Name] = append(scope.localReads[lo.Name], a.Name)
						if !visit(scope.local(a.Name), append(path, "local."+lo.Name)) {
							state[lo.Name] = 2
							return false
						}
						refs = append(refs, scope.localRefs[a.Name]...)
					}
				}
			case "step", "check":
				if len(trav) > 1 {
					if a, ok := trav[1].(hcl.TraverseAttr); ok {
						refs = append(refs, scope.Prefix+trav.RootName()+"."+a.Name)
					}
				}
			}
		}
		scope.localRefs[lo.Name] = uniqueSorted(refs)
		state[lo.Name] = 2
		scope.localOrder = append(scope.localOrder, lo)
		return true
	}
	for _, lo := range scope.locals {
		if d := l.interrupted(); d != nil {
			return append(diags, d...)
		}
		visit(lo, nil)
	}
	var dynamic []string
	for _, lo := range scope.locals {
		dynamic = append(dynamic, scope.localRefs[lo.Name]...)
	}
	for _, db := range scope.databases {
		var refs []string
		for _, trav := range db.URL.Variables() {
			switch trav.RootName() {
			case "local":
				if len(trav) > 1 {
					if a, ok := trav[1].(hcl.TraverseAttr); ok {
						refs = append(refs, scope.localRefs[a.Name]...)
					}
				}
			case "step", "check":
				if len(trav) > 1 {
					if a, ok := trav[1].(hcl.TraverseAttr); ok {
						refs = append(refs, scope.Prefix+trav.RootName()+"."+a.Name)
					}
				}
			}
		}
		scope.databaseRefs[db.Name] = uniqueSorted(refs)
		dynamic = append(dynamic, refs...)
	}
	scope.dynamicRefs = uniqueSorted(dynamic)
	return diags
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}
