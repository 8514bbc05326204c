package plan

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// StateURL evaluates the state block's postgres connection string; "" when
// the plan has no state block (the journal then lives in .planrun/). The
// URL's password joins the plan's secrets.
func (p *Plan) StateURL() (string, hcl.Diagnostics) {
	if p.State == nil {
		return "", nil
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": p.root.varObject(false), "path": p.pathObject()},
		Functions: p.functions(),
	}
	v, diags := p.State.Postgres.Value(ctx)
	if diags.HasErrors() {
		return "", diags
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid state",
			Detail:  fmt.Sprintf("state.postgres must be a connection string known before the run (it may read variables, not steps); got %s.", v.Type().FriendlyName()),
			Subject: p.State.Range.Ptr(),
		}}
	}
	url := v.AsString()
	p.secrets = uniqueSorted(append(p.secrets, p.connSecrets(url)...))
	return url, nil
}
