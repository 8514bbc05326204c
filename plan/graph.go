package plan

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/dag"
	"github.com/planrun/planrun/internal/redact"
)

// buildGraph makes the DAG: an edge for every reference (HCL traversals and
// assertion reads) and every depends_on.
func (l *loader) buildGraph() hcl.Diagnostics {
	p := l.plan
	g := dag.New()
	for _, st := range p.Steps {
		g.Add(st.Addr)
	}
	var diags hcl.Diagnostics
	for _, st := range p.Steps {
		deps := append(append([]string(nil), st.reads...), st.libraryDeps...)
		for _, d := range st.DependsOn {
			if strings.HasPrefix(d, "library.") {
				for _, other := range p.Steps {
					if strings.HasPrefix(other.Addr, d+".") {
						deps = append(deps, other.Addr)
					}
				}
				continue
			}
			deps = append(deps, st.Scope.Prefix+d)
		}
		st.Deps = uniqueSorted(deps)
		for _, d := range st.Deps {
			if g.Has(d) {
				_ = g.DependOn(st.Addr, d) // both vertices exist: cannot fail
			}
		}
	}
	for _, cycle := range g.Cycles() {
		first := p.byAddr[cycle[0]]
		detail := fmt.Sprintf("These depend on each other, so none can run first: %s.", strings.Join(cycle, " -> "))
		if len(cycle) == 2 {
			detail = fmt.Sprintf("%s depends on itself (%s): a step cannot name itself in depends_on or read its own output in its arguments. Its assertions read its output as output.FIELD.",
				cycle[0], strings.Join(cycle, " -> "))
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dependency cycle",
			Detail:   detail,
			Subject:  first.DeclRange.Ptr(),
		})
	}
	p.Graph = g
	return diags
}

// collectSecrets gathers the strings to redact: sensitive variable values
// (every string inside them) and passwords in database URLs. It warns of
// secrets shorter than redact.ShortLen, which are hidden only where they
// stand alone (a sensitive "out" must not turn "stdout" into
// "std(sensitive)"), so they show inside longer words.
func (l *loader) collectSecrets() hcl.Diagnostics {
	p := l.plan
	if cs, ok := l.opts.Types.(ConnSecrets); ok {
		p.secretsOf = cs.ConnSecrets
	}
	var secrets []string
	var diags hcl.Diagnostics
	warned := map[string]bool{} // short secrets already warned of
	type declared struct {
		scope *Scope
		vars  []*Variable
	}
	scopes := []declared{{p.root, l.vars}}
	for _, lib := range l.libraries {
		if lib.scope != nil {
			scopes = append(scopes, declared{lib.scope, lib.Variables})
		}
	}
	for _, sc := range scopes {
		for _, decl := range sc.vars {
			v, ok := sc.scope.vars[decl.Name]
			if !ok || !sc.scope.sensitive[decl.Name] {
				continue
			}
			secrets = append(secrets, stringLeaves(v)...)
			if short, ok := shortestString(v); ok {
				warned[short] = true
				what := "The sensitive value of var." + decl.Name
				if !v.Type().Equals(cty.String) {
					what = "A sensitive value in var." + decl.Name
				}
				diags = append(diags, shortSecret(what, short, decl.DeclRange))
			}
		}
		for _, v := range sc.scope.markedVars {
			secrets = append(secrets, markedLeaves(v, false)...)
		}
	}
	if ctx := p.root.validateCtx; ctx != nil {
		if dbs, ok := ctx.Variables["database"]; ok && dbs.Type().IsObjectType() {
			for _, decl := range p.root.databases {
				if !dbs.Type().HasAttribute(decl.Name) {
					continue
				}
				db := dbs.GetAttr(decl.Name)
				if !db.Type().IsObjectType() || !db.Type().HasAttribute("url") {
					continue
				}
				u, _ := db.GetAttr("url").UnmarkDeep()
				if !u.IsKnown() || u.IsNull() || u.Type() != cty.String {
					continue
				}
				found := p.connSecrets(u.AsString())
				secrets = append(secrets, found...)
				short, ok := "", false
				for _, s := range found {
					if warned[s] {
						ok = false // said of the variable it came from
						break
					}
					if isShortSecret(s) && (!ok || len(s) < len(short)) {
						short, ok = s, true
					}
				}
				if ok {
					warned[short] = true
					diags = append(diags, shortSecret("The password of database."+decl.Name, short, decl.DeclRange))
				}
			}
		}
	}
	p.secrets = uniqueSorted(secrets)
	return diags
}

func isShortSecret(s string) bool { return s != "" && len(s) < redact.ShortLen }

// shortestString is the shortest string in v (v itself, or inside it)
// that is too short to be hidden everywhere.
func shortestString(v cty.Value) (string, bool) {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() {
		return "", false
	}
	switch {
	case v.Type() == cty.String:
		return v.AsString(), isShortSecret(v.AsString())
	case v.CanIterateElements():
		short, found := "", false
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if s, ok := shortestString(e); ok && (!found || len(s) < len(short)) {
				short, found = s, true
			}
		}
		return short, found
	}
	return "", false
}

func shortSecret(what, secret string, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: "Short secret",
		Detail: fmt.Sprintf("%s is only %d characters: it is hidden only where it stands alone, and a longer secret is safer.",
			what, utf8.RuneCountInString(secret)),
		Subject: rng.Ptr(),
	}
}

// markedLeaves returns the string leaves of v that are marked sensitive
// (or inside a marked collection).
func markedLeaves(v cty.Value, inMarked bool) []string {
	inMarked = inMarked || v.IsMarked()
	v, _ = v.Unmark()
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	if v.CanIterateElements() {
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, markedLeaves(e, inMarked)...)
		}
		return out
	}
	if inMarked {
		return stringLeaves(v)
	}
	return nil
}

func stringLeaves(v cty.Value) []string {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	switch {
	case v.Type() == cty.String:
		return []string{v.AsString()}
	case v.Type() == cty.Number:
		return []string{v.AsBigFloat().Text('f', -1)}
	case v.CanIterateElements():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, stringLeaves(e)...)
		}
		return out
	}
	return nil
}

// ConnSecrets is what Types may also do: list the secrets in a database
// connection string — its password as the driver reads it and as written
// (percent-encoded, quoted). The step registry does, with pgx's own
// parser; plan imports no database driver, so a Types without it leaves
// the passwords of database URLs unregistered.
type ConnSecrets interface {
	ConnSecrets(conn string) []string
}

// connSecrets lists the secrets in a connection string, when the types
// can say.
func (p *Plan) connSecrets(conn string) []string {
	if p.secretsOf == nil {
		return nil
	}
	return p.secretsOf(conn)
}
