package plan

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/planrun/planrun/plan/internal/nesting"
	"github.com/planrun/planrun/plan/yamlhcl"
)

// EnvPrefix is the prefix of environment variables that set plan variables.
const EnvPrefix = "PLANRUN_VAR_"

type varValue struct {
	val   cty.Value
	from  string // where it came from, for messages
	rng   *hcl.Range
	isRaw bool // a string from the command line or environment, to be parsed per the type
	raw   string
}

// resolveVariables gives every variable its value. Precedence, lowest first:
// default, PLANRUN_VAR_name, -var-file (in order), -var (in order).
func (l *loader) resolveVariables() hcl.Diagnostics {
	var diags hcl.Diagnostics
	declared := map[string]*Variable{}
	var names []string
	for _, v := range l.vars {
		declared[v.Name] = v
		names = append(names, v.Name)
	}
	given := map[string]varValue{}
	for _, kv := range l.opts.Environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		name = strings.TrimPrefix(name, EnvPrefix)
		if declared[name] != nil {
			given[name] = varValue{isRaw: true, raw: value, from: "environment variable " + EnvPrefix + name}
		}
	}
	for _, file := range l.opts.VarFiles {
		vals, d := l.readVarFile(file)
		diags = append(diags, d...)
		for _, a := range vals {
			if declared[a.name] == nil {
				rng := a.rng
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning, Summary: "Value for undeclared variable",
					Detail:  fmt.Sprintf("The plan declares no variable %q; this value is ignored.%s", a.name, suggestion(a.name, names)),
					Subject: &rng,
				})
				continue
			}
			rng := a.rng
			given[a.name] = varValue{val: a.val, from: file, rng: &rng}
		}
	}
	for _, kv := range l.opts.Vars {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid -var option",
				Detail: fmt.Sprintf("-var takes name=value, not %q.", kv),
			})
			continue
		}
		if declared[name] == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Value for undeclared variable",
				Detail: fmt.Sprintf("-var %s: the plan declares no variable %q.%s", name, name, suggestion(name, names)),
			})
			continue
		}
		given[name] = varValue{isRaw: true, raw: value, from: "-var " + name}
	}

	vars := map[string]cty.Value{}
	for _, v := range l.vars {
		g, ok := given[v.Name]
		var val cty.Value
		switch {
		case ok && g.isRaw:
			parsed, ok := parseRawVar(g.raw, v.Type)
			if !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid value for variable",
					Detail:  rawVarProblem(g, v),
					Subject: v.DeclRange.Ptr(),
				})
				continue
			}
			val = parsed
		case ok:
			val = g.val
		case l.opts.UnsetUnknown:
			val = cty.UnknownVal(v.Type)
		case v.Default != cty.NilVal:
			val = v.Default
		case v.badDefault:
			continue // reported where the default is
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "No value for required variable",
				Detail: fmt.Sprintf("Variable %q has no default. Set it with -var %s=VALUE, a -var-file, or the environment variable %s%s.",
					v.Name, v.Name, EnvPrefix, v.Name),
				Subject: v.DeclRange.Ptr(),
			})
			continue
		}
		conv, err := convertValue(val, v.Type)
		if err != nil {
			subject := v.DeclRange.Ptr()
			if g.rng != nil {
				subject = g.rng
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail:  fmt.Sprintf("Variable %q (from %s): %s.", v.Name, orDefault(g.from, "its default"), redactIf(v.Sensitive, err.Error())),
				Subject: subject,
			})
			continue
		}
		vars[v.Name] = conv
		if v.Sensitive {
			l.plan.root.sensitive[v.Name] = true
		}
	}
	l.plan.root.vars = vars
	if diags.HasErrors() {
		return diags
	}
	// Validations see every variable, sensitive ones marked so that a
	// message never prints their value.
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.plan.root.varObject(true)},
		Functions: l.plan.functions(),
	}
	for _, v := range l.vars {
		if !vars[v.Name].IsWhollyKnown() {
			continue // UnsetUnknown: nothing to check
		}
		diags = append(diags, checkValidations(v, ctx)...)
	}
	return diags
}

// checkValidations evaluates a variable's validation rules.
func checkValidations(v *Variable, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, val := range v.Validations {
		res, d := val.Condition.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		res, _ = res.UnmarkDeep()
		if res.IsNull() || !res.IsKnown() || res.Type() != cty.Bool {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid validation condition",
				Detail:  "A validation condition must be true or false.",
				Subject: val.Condition.Range().Ptr(),
			})
			continue
		}
		if res.False() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail:  fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", val.ErrorMessage, val.Range),
				Subject: v.DeclRange.Ptr(),
			})
		}
	}
	return diags
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func redactIf(sensitive bool, msg string) string {
	if sensitive {
		return "the value (sensitive) is not valid"
	}
	return msg
}

func suggestion(name string, names []string) string {
	if s := yamlhcl.Suggest(name, names); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// parseRawVar reads a command-line or environment value: taken as is for
// string types, parsed as an HCL expression otherwise (as Terraform does)
// and converted to the type; ok is false when it is not of the type.
func parseRawVar(raw string, ty cty.Type) (cty.Value, bool) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), true
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value>", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	val, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, false // a bare word (two) reads as a variable
	}
	if _, err := convertValue(val, ty); err != nil {
		return cty.NilVal, false
	}
	return val, true
}

// rawVarProblem says why a command-line or environment value is not of
// its variable's type, and how one is written: "-var jobs=two: jobs is a
// number; "two" is not." The parser's own words ("Variables not allowed",
// for a bare word) are about HCL, not about the value.
func rawVarProblem(g varValue, v *Variable) string {
	what := typeWords(v.Type)
	if v.Sensitive {
		return fmt.Sprintf("%s: %s is %s; the value given (sensitive, not shown) is not.", g.from, v.Name, what)
	}
	return fmt.Sprintf("%s=%s: %s is %s; %q is not.", g.from, g.raw, v.Name, what, g.raw)
}

// typeWords names a type with an example of how its values are written on
// the command line.
func typeWords(ty cty.Type) string {
	switch {
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "a bool (true or false)"
	case ty.IsListType() || ty.IsSetType():
		return fmt.Sprintf("a %s, written as [%s, %s]", ty.FriendlyName(), example(ty.ElementType(), 1), example(ty.ElementType(), 2))
	case ty.IsMapType():
		return fmt.Sprintf("a %s, written as {a = %s, b = %s}", ty.FriendlyName(), example(ty.ElementType(), 1), example(ty.ElementType(), 2))
	case ty.IsObjectType():
		return fmt.Sprintf("an object, written as {%s}", strings.Join(objectExample(ty), ", "))
	}
	return "a " + ty.FriendlyName()
}

func example(ty cty.Type, n int) string {
	switch ty {
	case cty.String:
		return fmt.Sprintf("%q", string(rune('a'+n-1)))
	case cty.Number:
		return fmt.Sprint(n)
	case cty.Bool:
		return "true"
	}
	return "..."
}

func objectExample(ty cty.Type) []string {
	var out []string
	for _, name := range mapKeys(ty.AttributeTypes()) {
		out = append(out, name+" = "+example(ty.AttributeType(name), 1))
	}
	return out
}

func convertValue(val cty.Value, ty cty.Type) (cty.Value, error) {
	unmarked, marks := val.Unmark()
	conv, err := convert.Convert(unmarked, ty)
	if err != nil {
		return cty.NilVal, err
	}
	return conv.WithMarks(marks), nil
}

type fileVar struct {
	name string
	val  cty.Value
	rng  hcl.Range
}

// readVarFile reads a -var-file: HCL attributes, a JSON object or a YAML mapping.
func (l *loader) readVarFile(path string) ([]fileVar, hcl.Diagnostics) {
	src, d := l.readSource(osOpen(path), path)
	if d != nil {
		if d[0].Summary == "Cannot read plan file" {
			d[0].Summary = "Cannot read variables file"
		}
		return nil, d
	}
	var body hcl.Body
	var diags hcl.Diagnostics
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		// hcljson's parser recurses too: JSON reads as an HCL expression.
		if d := nesting.Check(src, path, hcl.InitialPos, nesting.Expression); d != nil {
			l.plan.Files[path] = &hcl.File{Bytes: src}
			return nil, hcl.Diagnostics{d}
		}
		f, d := hcljson.Parse(src, path)
		diags = d
		if f != nil {
			body = f.Body
			l.plan.Files[path] = f
		}
	case ".yaml", ".yml":
		yf, d := yamlhcl.Parse(src, path)
		diags = d
		l.plan.Files[path] = &hcl.File{Bytes: src}
		if yf.Root != nil {
			body = yf.Body(yf.Root)
		}
	default:
		f, d := parseHCL(src, path)
		diags = d
		if f == nil {
			l.plan.Files[path] = &hcl.File{Bytes: src}
		}
		if f != nil {
			body = f.Body
			l.plan.Files[path] = f
		}
	}
	if diags.HasErrors() || body == nil {
		return nil, diags
	}
	attrs, d := body.JustAttributes()
	diags = append(diags, d...)
	var out []fileVar
	for _, a := range sortedAttrs(attrs) {
		val, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		out = append(out, fileVar{name: a.Name, val: val, rng: a.Range})
	}
	return out, diags
}
