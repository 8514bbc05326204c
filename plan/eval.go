package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// sensitiveMark marks values derived from sensitive variables, so that
// `planrun plan` shows (sensitive) and validation messages never print them.
const sensitiveMark = "sensitive"

// IsSensitive reports whether a value came from a sensitive variable.
func IsSensitive(v cty.Value) bool { return v.HasMark(sensitiveMark) || v.ContainsMarked() }

// OutputFunc returns the recorded output of a step or check by address;
// false when it has none yet.
type OutputFunc func(addr string) (cty.Value, bool)

var (
	funcsOnce   sync.Once
	commonFuncs map[string]function.Function
)

func stdFuncs() map[string]function.Function {
	funcsOnce.Do(func() {
		commonFuncs = map[string]function.Function{
			"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "chomp": stdlib.ChompFunc,
			"coalesce": stdlib.CoalesceFunc, "coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
			"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "csvdecode": stdlib.CSVDecodeFunc,
			"distinct": stdlib.DistinctFunc, "element": stdlib.ElementFunc, "chunklist": stdlib.ChunklistFunc,
			"flatten": stdlib.FlattenFunc, "floor": stdlib.FloorFunc, "format": stdlib.FormatFunc,
			"formatdate": stdlib.FormatDateFunc, "formatlist": stdlib.FormatListFunc, "indent": stdlib.IndentFunc,
			"index": stdlib.IndexFunc, "join": stdlib.JoinFunc, "jsondecode": stdlib.JSONDecodeFunc,
			"jsonencode": stdlib.JSONEncodeFunc, "keys": stdlib.KeysFunc, "length": lengthFunc,
			"lookup": stdlib.LookupFunc, "lower": stdlib.LowerFunc, "max": stdlib.MaxFunc, "merge": stdlib.MergeFunc,
			"min": stdlib.MinFunc, "parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "range": stdlib.RangeFunc,
			"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "regex_replace": stdlib.RegexReplaceFunc,
			"replace": stdlib.ReplaceFunc, "reverse": stdlib.ReverseListFunc, "setproduct": stdlib.SetProductFunc,
			"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc,
			"substr": stdlib.SubstrFunc, "timeadd": stdlib.TimeAddFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
			"trimprefix": stdlib.TrimPrefixFunc, "trimspace": stdlib.TrimSpaceFunc, "trimsuffix": stdlib.TrimSuffixFunc,
			"upper": stdlib.UpperFunc, "values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc,
			"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
			"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
			"tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		}
	})
	return commonFuncs
}

// lengthFunc is Terraform's length: the number of characters of a string,
// or of elements of a list, map, set or tuple, or of attributes of an
// object. go-cty's LengthFunc refuses strings, which made
// `length(var.token) >= 8` fail.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of characters of a string, or of elements of a collection.",
	Params: []function.Parameter{{
		Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true,
	}},
	Type: func(args []cty.Value) (cty.Type, error) {
		ty := args[0].Type()
		switch {
		case ty == cty.String, ty == cty.DynamicPseudoType, ty.IsCollectionType(), ty.IsTupleType(), ty.IsObjectType():
			return cty.Number, nil
		}
		return cty.NilType, function.NewArgErrorf(0, "a string or a collection is required, not %s", ty.FriendlyName())
	},
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		ty := v.Type()
		switch {
		case ty == cty.String:
			if !v.IsKnown() {
				return cty.UnknownVal(cty.Number), nil
			}
			return stdlib.Strlen(v)
		case ty.IsObjectType():
			return cty.NumberIntVal(int64(len(ty.AttributeTypes()))), nil
		case ty == cty.DynamicPseudoType || !v.IsKnown():
			return cty.UnknownVal(cty.Number), nil
		}
		return v.Length(), nil
	},
})

// functions returns the HCL functions: go-cty's stdlib plus env() and file().
func (p *Plan) functions() map[string]function.Function {
	if p.funcs != nil {
		return p.funcs
	}
	funcs := make(map[string]function.Function, len(stdFuncs())+2)
	for k, v := range stdFuncs() {
		funcs[k] = v
	}
	environ := p.environ
	funcs["env"] = function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			for _, kv := range environ {
				if k, v, ok := strings.Cut(kv, "="); ok && k == name {
					return cty.StringVal(v), nil
				}
			}
			return cty.StringVal(""), nil
		},
	})
	dir := p.Dir
	funcs["file"] = function.New(&function.Spec{
		Description: "Reads a file, relative to the plan's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, fmt.Errorf("read %s: %w", path, err)
			}
			return cty.StringVal(string(src)), nil
		},
	})
	p.funcs = funcs
	return funcs
}

// varObject is the `var` object, with sensitive values marked when asked.
func (s *Scope) varObject(marked bool) cty.Value {
	attrs := make(map[string]cty.Value, len(s.vars))
	for name, v := range s.vars {
		switch {
		case !marked:
		case s.sensitive[name]:
			v = v.Mark(sensitiveMark)
		case s.markedVars[name] != cty.NilVal:
			v = s.markedVars[name]
		}
		attrs[name] = v
	}
	return cty.ObjectVal(attrs)
}

func (p *Plan) pathObject() cty.Value {
	if p.pathObj != cty.NilVal {
		return p.pathObj
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "."
	}
	p.pathObj = cty.ObjectVal(map[string]cty.Value{"plan": cty.StringVal(p.Dir), "cwd": cty.StringVal(cwd)})
	return p.pathObj
}

// staticContext has variables, functions and path, for arguments that must be
// known before the run (timeouts, names).
func (l *loader) staticContext() *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": l.plan.root.varObject(true), "path": l.plan.pathObject()},
		Functions: l.plan.functions(),
	}
}

// stepObjects builds the `step` and `check` objects of a scope for the given
// addresses; missing outputs are unknown.
func (s *Scope) stepObjects(addrs []string, outputs OutputFunc) map[string]cty.Value {
	steps := map[string]cty.Value{}
	checks := map[string]cty.Value{}
	for _, addr := range addrs {
		rel := strings.TrimPrefix(addr, s.Prefix)
		kind, name, _ := strings.Cut(rel, ".")
		out, ok := outputs(addr)
		if !ok {
			out = cty.DynamicVal
		}
		obj := cty.ObjectVal(map[string]cty.Value{"output": out})
		if kind == "check" {
			checks[name] = obj
		} else {
			steps[name] = obj
		}
	}
	return map[string]cty.Value{"step": cty.ObjectVal(steps), "check": cty.ObjectVal(checks)}
}

// context builds an evaluation context for a scope. refs are the step and
// check addresses the expressions read; marked keeps sensitive marks.
func (s *Scope) context(stop context.Context, refs []string, outputs OutputFunc, marked bool) (*hcl.EvalContext, hcl.Diagnostics) {
	p := s.plan
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: p.functions()}
	ctx.Variables["var"] = s.varObject(marked)
	ctx.Variables["path"] = p.pathObject()
	all := refs
	if len(s.dynamicRefs) > 0 {
		all = append(append([]string(nil), refs...), s.dynamicRefs...)
	}
	for k, v := range s.stepObjects(all, outputs) {
		ctx.Variables[k] = v
	}
	diags := s.evalLocalsAndDatabases(stop, ctx)
	return ctx, diags
}

// evalLocalsAndDatabases evaluates locals in dependency order, then the
// databases, into ctx; it stops (with a diagnostic) when stop is done.
func (s *Scope) evalLocalsAndDatabases(stop context.Context, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	locals := make(map[string]cty.Value, len(s.localOrder))
	for _, lo := range s.localOrder {
		if d := interruptedDiags(stop); d != nil {
			return append(diags, d...)
		}
		// Each local sees only the locals it reads: an object of every local
		// so far, made per local, cost O(n²) for n locals.
		reads := s.localReads[lo.Name]
		seen := make(map[string]cty.Value, len(reads))
		for _, name := range reads {
			if v, ok := locals[name]; ok {
				seen[name] = v
			}
		}
		ctx.Variables["local"] = cty.ObjectVal(seen)
		v, d := lo.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			v = cty.DynamicVal
		}
		locals[lo.Name] = v
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	dbs := map[string]cty.Value{}
	for _, db := range s.databases {
		v, d := db.URL.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			v = cty.DynamicVal
		}
		dbs[db.Name] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(db.Name), "url": v})
	}
	ctx.Variables["database"] = cty.ObjectVal(dbs)
	return diags
}

// RunContext is the evaluation context for running action a of step st (the
// step itself or its rollback): real values, nothing marked, the outputs of
// earlier steps.
func (p *Plan) RunContext(st *Step, a *Action, outputs OutputFunc) (*hcl.EvalContext, hcl.Diagnostics) {
	return st.Scope.context(context.Background(), a.refs, outputs, false)
}

// Reads lists every step address a step's when, arguments and assertions read.
func (st *Step) Reads() []string { return st.reads }

// Vars returns the scope's variable values, unmarked.
func (s *Scope) Vars() map[string]cty.Value { return s.vars }
