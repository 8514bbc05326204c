package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}

// stepTraversal reads `step.x` or `check.x` from an expression.
func stepTraversal(expr hcl.Expression) (string, hcl.Diagnostics) {
	trav, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() || len(trav) != 2 || (trav.RootName() != "step" && trav.RootName() != "check") {
		return "", hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid reference",
			Detail:   "A step reference is required here, such as step.dump or check.same_data.",
			Subject:  expr.Range().Ptr(),
		}}
	}
	attr, ok := trav[1].(hcl.TraverseAttr)
	if !ok {
		return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid reference", Detail: "A step reference is required here, such as step.dump.", Subject: expr.Range().Ptr()}}
	}
	return trav.RootName() + "." + attr.Name, nil
}

func decodeString(a *hcl.Attribute, ctx *hcl.EvalContext, out *string) hcl.Diagnostics {
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		return diags
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || !v.Type().Equals(cty.String) {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid value",
			Detail:  fmt.Sprintf("%s must be a string known before the run.", a.Name),
			Subject: a.Expr.Range().Ptr(),
		})
	}
	*out = v.AsString()
	return diags
}

func decodeDuration(a *hcl.Attribute, ctx *hcl.EvalContext, out *time.Duration) hcl.Diagnostics {
	var s string
	diags := decodeString(a, ctx, &s)
	if diags.HasErrors() {
		return diags
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid duration",
			Detail:  fmt.Sprintf("%s is a duration such as \"30s\", \"5m\" or \"2h\", not %q.", a.Name, s),
			Subject: a.Expr.Range().Ptr(),
		})
	}
	*out = d
	return diags
}

func decodeVariable(b *hcl.Block, p *Plan) (*Variable, hcl.Diagnostics) {
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange}
	content, diags := b.Body.Content(variableSchema)
	if a := content.Attributes["type"]; a != nil {
		ty, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type = ty
		}
	}
	ctx := &hcl.EvalContext{Functions: p.functions()}
	if a := content.Attributes["description"]; a != nil {
		diags = append(diags, decodeString(a, ctx, &v.Description)...)
	}
	if a := content.Attributes["sensitive"]; a != nil {
		val, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if val.Type() != cty.Bool || val.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value", Detail: "sensitive must be true or false.", Subject: a.Expr.Range().Ptr()})
			} else {
				v.Sensitive = val.True()
			}
		}
	}
	if a := content.Attributes["default"]; a != nil {
		val, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		v.badDefault = d.HasErrors()
		if !d.HasErrors() {
			conv, err := convertValue(val, v.Type)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid default value",
					Detail:  fmt.Sprintf("The default for variable %q does not match its type: %s.", v.Name, err),
					Subject: a.Expr.Range().Ptr(),
				})
				v.badDefault = true
			} else {
				v.Default = conv
			}
		}
	}
	for _, vb := range content.Blocks {
		vc, d := vb.Body.Content(validationSchema)
		diags = append(diags, d...)
		if vc.Attributes["condition"] == nil || vc.Attributes["error_message"] == nil {
			continue
		}
		val := &Validation{Condition: vc.Attributes["condition"].Expr, Range: vc.Attributes["condition"].Range}
		diags = append(diags, decodeString(vc.Attributes["error_message"], ctx, &val.ErrorMessage)...)
		v.Validations = append(v.Validations, val)
	}
	return v, diags
}

func decodeLibrary(b *hcl.Block) (*Library, hcl.Diagnostics) {
	content, diags := b.Body.Content(librarySchema)
	lib := &Library{Name: b.Labels[0], DeclRange: b.DefRange}
	if a := content.Attributes["source"]; a != nil {
		diags = append(diags, decodeString(a, &hcl.EvalContext{}, &lib.Source)...)
		lib.sourceRange = a.Expr.Range()
	}
	if a := content.Attributes["inputs"]; a != nil {
		lib.Inputs = a.Expr
	}
	if a := content.Attributes["depends_on"]; a != nil {
		deps, ranges, d := dependsOn(a)
		diags = append(diags, d...)
		lib.DependsOn = deps
		lib.dependsOnRanges = ranges
	}
	return lib, diags
}

// dependsOn reads a list of step, check or library references, with the
// range of each.
func dependsOn(a *hcl.Attribute) ([]string, []hcl.Range, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid depends_on",
			Detail:  "depends_on is a list of references, such as [step.dump, check.same_data].",
			Subject: a.Expr.Range().Ptr(),
		}}
	}
	var out []string
	var ranges []hcl.Range
	for _, e := range exprs {
		trav, d := hcl.AbsTraversalForExpr(e)
		if d.HasErrors() || len(trav) < 2 {
			detail := "depends_on lists references such as step.dump, check.same_data or library.integrity."
			if v, d := e.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
				if _, d := hclsyntax.ParseTraversalAbs([]byte(v.AsString()), "", hcl.InitialPos); !d.HasErrors() && strings.Contains(v.AsString(), ".") {
					detail = fmt.Sprintf("depends_on lists references, not strings: write %s without quotes.", v.AsString())
				}
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid depends_on",
				Detail:  detail,
				Subject: e.Range().Ptr(),
			})
			continue
		}
		attr, ok := trav[1].(hcl.TraverseAttr)
		root := trav.RootName()
		switch {
		case root != "step" && root != "check" && root != "library":
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid depends_on",
				Detail:  fmt.Sprintf("depends_on lists steps, checks or libraries (step.dump, check.same_data, library.integrity), not %s references.", root),
				Subject: e.Range().Ptr(),
			})
			continue
		case !ok || len(trav) != 2:
			detail := "depends_on lists whole steps, checks or libraries (step.dump), not their attributes."
			if ok {
				detail = fmt.Sprintf("depends_on lists whole steps, checks or libraries, not their attributes: write %s.%s.", root, attr.Name)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid depends_on",
				Detail:  detail,
				Subject: e.Range().Ptr(),
			})
			continue
		}
		out = append(out, root+"."+attr.Name)
		ranges = append(ranges, e.Range())
	}
	return out, ranges, diags
}
