package plan

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/dag"
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
// (every string inside them) and passwords in database URLs.
func (l *loader) collectSecrets() {
	p := l.plan
	if cs, ok := l.opts.Types.(ConnSecrets); ok {
		p.secretsOf = cs.ConnSecrets
	}
	var secrets []string
	scopes := []*Scope{p.root}
	for _, lib := range l.libraries {
		if lib.scope != nil {
			scopes = append(scopes, lib.scope)
		}
	}
	for _, scope := range scopes {
		for name, v := range scope.vars {
			if scope.sensitive[name] {
				secrets = append(secrets, stringLeaves(v)...)
			}
		}
		for _, v := range scope.markedVars {
			secrets = append(secrets, markedLeaves(v, false)...)
		}
	}
	if ctx := p.root.validateCtx; ctx != nil {
		if dbs, ok := ctx.Variables["database"]; ok && dbs.Type().IsObjectType() {
			for it := dbs.ElementIterator(); it.Next(); {
				_, db := it.Element()
				u, _ := db.GetAttr("url").UnmarkDeep()
				if u.IsKnown() && !u.IsNull() && u.Type() == cty.String {
					secrets = append(secrets, p.connSecrets(u.AsString())...)
				}
			}
		}
	}
	p.secrets = uniqueSorted(secrets)
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
