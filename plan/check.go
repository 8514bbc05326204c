package plan

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"
)

var expressionType = reflect.TypeOf((*hcl.Expression)(nil)).Elem()

// validateContext is the context for checking a scope before anything runs:
// variables marked sensitive, every step's output unknown but typed by its
// step type, so that a wrong field is caught now.
func (l *loader) validateContext(scope *Scope) (*hcl.EvalContext, hcl.Diagnostics) {
	if scope.validateCtx != nil {
		return scope.validateCtx, nil
	}
	outputs := func(addr string) (cty.Value, bool) {
		st := l.stepIndex[addr]
		if st == nil || st.Type == nil {
			return cty.DynamicVal, true
		}
		return cty.UnknownVal(outputShape(st.Type.Output()).CtyType()), true
	}
	var addrs []string
	for addr := range l.stepIndex {
		if l.stepIndex[addr].Scope == scope {
			addrs = append(addrs, addr)
		}
	}
	ctx, diags := scope.context(l.ctx, uniqueSorted(addrs), outputs, true)
	scope.validateCtx = ctx
	return ctx, diags
}

// checkSteps checks every step's arguments, assertions and rollback and
// records what each reads.
func (l *loader) checkSteps() hcl.Diagnostics {
	var diags hcl.Diagnostics
	checked := map[*Scope]bool{}
	for _, st := range l.plan.Steps {
		if d := l.interrupted(); d != nil {
			return append(diags, d...)
		}
		ctx, d := l.validateContext(st.Scope)
		if !checked[st.Scope] {
			diags = append(diags, d...) // locals and databases: reported once per scope
			for _, lo := range st.Scope.locals {
				_, d := l.checkRefs(lo.Expr, st.Scope)
				diags = append(diags, d...)
			}
			for _, db := range st.Scope.databases {
				_, d := l.checkRefs(db.URL, st.Scope)
				diags = append(diags, d...)
			}
			checked[st.Scope] = true
		}
		diags = append(diags, l.checkStep(st, ctx)...)
	}
	return diags
}

func (l *loader) checkStep(st *Step, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var refs []string
	if st.When != nil {
		r, d := l.checkRefs(st.When, st.Scope)
		diags = append(diags, d...)
		refs = append(refs, r...)
		if !d.HasErrors() {
			v, d := st.When.Value(ctx)
			diags = append(diags, d...)
			if !d.HasErrors() {
				st.WhenPreview = v
				if _, err := convertValue(v, cty.Bool); err != nil {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Invalid when",
						Detail:  fmt.Sprintf("when must be true or false: %s.", err),
						Subject: st.When.Range().Ptr(),
					})
				}
			}
		}
	}
	for i, dep := range st.DependsOn {
		var subject *hcl.Range
		if i < len(st.dependsOnRanges) {
			subject = st.dependsOnRanges[i].Ptr()
		}
		if strings.HasPrefix(dep, "library.") {
			if !l.isLibrary(dep) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reference to undeclared library",
					Detail:  fmt.Sprintf("depends_on names %s, which is not declared.", dep),
					Subject: subject,
				})
			}
			continue
		}
		addr := st.Scope.Prefix + dep
		if l.stepIndex[addr] == nil {
			kind, _, _ := strings.Cut(dep, ".")
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Reference to undeclared " + kind,
				Detail:  fmt.Sprintf("depends_on names %s, which is not declared.%s", dep, l.suggestStep(addr)),
				Subject: subject,
			})
		}
	}
	r, d := l.checkAction(&st.Action, st, ctx, true)
	diags = append(diags, d...)
	st.reads = uniqueSorted(append(append([]string(nil), refs...), r...))
	st.refs = uniqueSorted(append(refs, st.refs...))
	if st.Rollback != nil {
		r, d := l.checkAction(st.Rollback, st, ctx, false)
		diags = append(diags, d...)
		// A rollback may read any step's output (its own included); those are
		// not edges: it runs after the step.
		st.Rollback.refs = uniqueSorted(append(r, st.Addr))
	}
	return diags
}

// checkAction decodes timeout, retry and assertions and checks the type's
// arguments. It returns the steps the arguments and assertions read.
func (l *loader) checkAction(a *Action, st *Step, ctx *hcl.EvalContext, isStep bool) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	sctx := l.staticContext()
	if a.pendingTimeout != nil {
		diags = append(diags, decodeDuration(a.pendingTimeout, sctx, &a.Timeout)...)
	}
	a.Retry = Retry{Attempts: 1}
	for i, blk := range a.pendingRetry {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate retry block",
				Detail:  fmt.Sprintf("A step has at most one retry block; the first is at %s.", a.pendingRetry[0].DefRange),
				Subject: blk.DefRange.Ptr(),
			})
			continue
		}
		diags = append(diags, decodeRetry(blk, sctx, &a.Retry)...)
	}
	if a.Type == nil {
		return nil, diags
	}
	var refs []string
	outer := rollbackSchema
	if isStep {
		outer = stepSchema
	}
	r, d := l.checkArgs(a, st.Scope, ctx, outer, st.Kind == KindCheck)
	diags = append(diags, d...)
	refs = append(refs, r...)
	a.refs = uniqueSorted(append([]string(nil), r...))
	for _, blk := range a.pendingAsserts {
		as, r, d := l.compileAssert(blk, st, outputShape(a.Type.Output()))
		diags = append(diags, d...)
		if as != nil {
			a.Asserts = append(a.Asserts, as)
			refs = append(refs, r...)
		}
	}
	return refs, diags
}

func decodeRetry(blk *hcl.Block, ctx *hcl.EvalContext, r *Retry) hcl.Diagnostics {
	content, diags := blk.Body.Content(retrySchema)
	if a := content.Attributes["attempts"]; a != nil {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			var n int
			v, _ = v.UnmarkDeep()
			if err := gocty.FromCtyValue(v, &n); err != nil || n < 1 {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Invalid attempts",
					Detail:  "attempts is a whole number of at least 1 (the total number of tries).",
					Subject: a.Expr.Range().Ptr(),
				})
			} else {
				r.Attempts = n
			}
		}
	}
	if a := content.Attributes["backoff"]; a != nil {
		diags = append(diags, decodeDuration(a, ctx, &r.Backoff)...)
	}
	if a := content.Attributes["max_backoff"]; a != nil {
		diags = append(diags, decodeDuration(a, ctx, &r.MaxBackoff)...)
	}
	if r.Backoff == 0 {
		r.Backoff = time.Second
	}
	return diags
}

// checkArgs checks the type's own arguments: unknown ones, missing required
// ones, references, and each value against the argument's type. outer is
// the schema of what the enclosing block decoded already (uses, depends_on,
// ...): its names are suggested for a misspelt argument too.
func (l *loader) checkArgs(a *Action, scope *Scope, ctx *hcl.EvalContext, outer *hcl.BodySchema, inCheck bool) ([]string, hcl.Diagnostics) {
	refs, args, diags := l.checkBody(a.Body, a.Type, a.Type.Args(), scope, ctx, outer, inCheck)
	a.Args = args
	return refs, diags
}

// checkBody checks a body against an arguments struct; typ is the step type
// whose arguments they are (nil for a nested block of plain fields), inCheck
// whether they belong to a check (whose nested actions must be read-only too).
func (l *loader) checkBody(body hcl.Body, typ StepType, argsType reflect.Type, scope *Scope, ctx *hcl.EvalContext, outer *hcl.BodySchema, inCheck bool) ([]string, []Arg, hcl.Diagnostics) {
	for argsType.Kind() == reflect.Pointer {
		argsType = argsType.Elem()
	}
	schema := withSuggestions(impliedSchema(argsType), outer)
	content, diags := body.Content(schema)
	var refs []string
	var args []Arg
	for _, attr := range sortedAttrs(content.Attributes) {
		field, ok := hclField(argsType, attr.Name)
		if !ok {
			continue
		}
		r, d := l.checkRefs(attr.Expr, scope)
		diags = append(diags, d...)
		refs = append(refs, r...)
		if d.HasErrors() || field.Type == expressionType {
			continue
		}
		val, d := attr.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		conv, err := convertValue(val, fieldCtyType(field.Type))
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Incorrect argument type",
				Detail:  fmt.Sprintf("Inappropriate value for argument %q: %s.", attr.Name, err),
				Subject: attr.Expr.Range().Ptr(),
			})
			continue
		}
		diags = append(diags, l.checkArgValue(typ, attr, conv)...)
		arg := Arg{Name: attr.Name, Value: conv}
		if trav, d := hcl.AbsTraversalForExpr(attr.Expr); !d.HasErrors() && trav.RootName() == "database" && len(trav) == 2 {
			if ta, ok := trav[1].(hcl.TraverseAttr); ok {
				arg.Ref = "database." + ta.Name
			}
		}
		args = append(args, arg)
	}
	if !diags.HasErrors() { // a misspelt argument would read as a missing one
		diags = append(diags, checkArgSet(typ, body, content)...)
	}
	for _, blk := range content.Blocks {
		field, ok := hclField(argsType, blk.Type)
		if !ok {
			continue
		}
		ft := field.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if nested, ok := nestedAction(ft); ok {
			r, d := l.checkNested(blk, nested, scope, ctx, inCheck)
			diags = append(diags, d...)
			refs = append(refs, r...)
			continue
		}
		r, _, d := l.checkBody(blk.Body, nil, ft, scope, ctx, nil, inCheck)
		diags = append(diags, d...)
		refs = append(refs, r...)
	}
	return refs, args, diags
}

// checkArgSet lets the step type check which arguments were given together.
func checkArgSet(typ StepType, body hcl.Body, content *hcl.BodyContent) hcl.Diagnostics {
	checker, ok := typ.(ArgSetChecker)
	if !ok {
		return nil
	}
	given := map[string]bool{}
	for name := range content.Attributes {
		given[name] = true
	}
	for _, blk := range content.Blocks {
		given[blk.Type] = true
	}
	attr, err := checker.CheckArgSet(given)
	if err == nil {
		return nil
	}
	rng := body.MissingItemRange()
	if a := content.Attributes[attr]; a != nil {
		rng = a.NameRange
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Invalid combination of arguments",
		Detail:  strings.TrimSuffix(err.Error(), ".") + ".",
		Subject: rng.Ptr(),
	}}
}

// checkArgValue lets the step type check a string argument's value when it
// is known now. A sensitive value is left to the run, whose errors are
// redacted: a diagnostic would print it.
func (l *loader) checkArgValue(typ StepType, attr *hcl.Attribute, v cty.Value) hcl.Diagnostics {
	checker, ok := typ.(ArgChecker)
	if !ok || !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String || IsSensitive(v) {
		return nil
	}
	if err := checker.CheckArg(attr.Name, v.AsString()); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			// An expr-lang condition: point at the place in the string.
			return hcl.Diagnostics{l.exprDiag(fmt.Sprintf("Invalid condition in %s", attr.Name), attr.Expr, v.AsString(), err)}
		}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid argument value",
			Detail:  fmt.Sprintf("Inappropriate value for argument %q: %s.", attr.Name, strings.TrimSuffix(err.Error(), ".")),
			Subject: attr.Expr.Range().Ptr(),
		}}
	}
	return nil
}

var schemaCache sync.Map // reflect.Type -> *hcl.BodySchema

// impliedSchema is gohcl's schema of an arguments struct, computed once per type.
func impliedSchema(t reflect.Type) *hcl.BodySchema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*hcl.BodySchema)
	}
	s, _ := gohcl.ImpliedBodySchema(reflect.New(t).Interface())
	schemaCache.Store(t, s)
	return s
}

// withSuggestions adds the names of outer to schema as optional, so that
// "Unsupported argument" suggests them too ("dependson": did you mean
// "depends_on"?). They were decoded by the enclosing block, so they never
// show up in the content.
func withSuggestions(schema, outer *hcl.BodySchema) *hcl.BodySchema {
	if outer == nil {
		return schema
	}
	out := &hcl.BodySchema{
		Attributes: append([]hcl.AttributeSchema(nil), schema.Attributes...),
		Blocks:     append([]hcl.BlockHeaderSchema(nil), schema.Blocks...),
	}
	has := map[string]bool{}
	for _, a := range schema.Attributes {
		has[a.Name] = true
	}
	for _, b := range schema.Blocks {
		has[b.Type] = true
	}
	for _, a := range outer.Attributes {
		if !has[a.Name] {
			out.Attributes = append(out.Attributes, hcl.AttributeSchema{Name: a.Name})
		}
	}
	for _, b := range outer.Blocks {
		if !has[b.Type] {
			out.Blocks = append(out.Blocks, hcl.BlockHeaderSchema{Type: b.Type, LabelNames: b.LabelNames})
		}
	}
	return out
}

// nestedAction reports whether a block struct is a nested step invocation
// (a `uses` attribute plus a remain body), like wait's probe.
func nestedAction(t reflect.Type) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	hasUses := false
	var remain reflect.StructField
	hasRemain := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("hcl")
		if tag == "uses" {
			hasUses = true
		}
		if tag == ",remain" {
			remain, hasRemain = f, true
		}
	}
	return remain, hasUses && hasRemain
}

func (l *loader) checkNested(blk *hcl.Block, _ reflect.StructField, scope *Scope, ctx *hcl.EvalContext, inCheck bool) ([]string, hcl.Diagnostics) {
	content, rest, diags := blk.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "uses", Required: true}}})
	var a Action
	diags = append(diags, l.decodeUses(&a, content.Attributes["uses"])...)
	if a.Type == nil {
		return nil, diags
	}
	if inCheck && !a.Type.ReadOnly() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Step type not allowed in a check",
			Detail:  fmt.Sprintf("A check is read-only, and %q can change data. Use a step, or a read-only type (%s).", a.Uses, l.readOnlyTypes()),
			Subject: content.Attributes["uses"].Expr.Range().Ptr(),
		})
	}
	refs, _, d := l.checkBody(rest, a.Type, a.Type.Args(), scope, ctx, nil, inCheck)
	return refs, append(diags, d...)
}

// hclField finds the struct field with the given hcl tag name.
func hclField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("hcl")
		for j := 0; j < len(tag); j++ {
			if tag[j] == ',' {
				tag = tag[:j]
				break
			}
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldCtyType is the cty type an argument field accepts.
func fieldCtyType(t reflect.Type) cty.Type {
	if t.Kind() == reflect.Interface || t == ctyValueType {
		return cty.DynamicPseudoType
	}
	ty, err := gocty.ImpliedType(reflect.Zero(t).Interface())
	if err != nil {
		return cty.DynamicPseudoType
	}
	return ty
}

func (l *loader) isLibrary(addr string) bool {
	for _, lib := range l.libraries {
		if "library."+lib.Name == addr {
			return true
		}
	}
	return false
}
