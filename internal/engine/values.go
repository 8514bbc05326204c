package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"

	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/plan"
)

// Normalize turns a step's Go output into plain JSON-like values
// (map[string]any, []any, string, int64, float64, bool, nil), shaped by the
// type's output shape: a nil list becomes an empty one, so that assertions
// like len(output.missing) == 0 work.
func Normalize(v any, shape *plan.Shape) (any, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("output is not JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("output is not JSON: %w", err)
	}
	return fixup(g, shape), nil
}

// FromJSON reads a recorded output back (the journal stores JSON).
func FromJSON(raw []byte, shape *plan.Shape) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, err
	}
	return fixup(g, shape), nil
}

func fixup(v any, shape *plan.Shape) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		var elem *plan.Shape
		if shape != nil {
			elem = shape.Elem
		}
		for i := range x {
			x[i] = fixup(x[i], elem)
		}
		return x
	case map[string]any:
		for k, e := range x {
			var fs *plan.Shape
			if shape != nil {
				switch shape.Kind {
				case plan.KindObject:
					if f := shape.Field(k); f != nil {
						fs = f.Shape
					}
				case plan.KindMap:
					fs = shape.Elem
				}
			}
			x[k] = fixup(e, fs)
		}
		if shape != nil && shape.Kind == plan.KindObject {
			for _, f := range shape.Fields {
				if _, ok := x[f.Name]; !ok && f.Shape.Kind == plan.KindList {
					x[f.Name] = []any{}
				}
			}
		}
		return x
	case nil:
		if shape != nil && shape.Kind == plan.KindList {
			return []any{}
		}
	}
	return v
}

// ToCty converts a normalized value for HCL references (step.x.output.y).
func ToCty(v any) cty.Value {
	switch x := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType)
	case string:
		return cty.StringVal(x)
	case bool:
		return cty.BoolVal(x)
	case int64:
		return cty.NumberIntVal(x)
	case int:
		return cty.NumberIntVal(int64(x))
	case float64:
		return cty.NumberFloatVal(x)
	case []any:
		if len(x) == 0 {
			return cty.EmptyTupleVal
		}
		elems := make([]cty.Value, len(x))
		for i, e := range x {
			elems[i] = ToCty(e)
		}
		return cty.TupleVal(elems)
	case map[string]any:
		if len(x) == 0 {
			return cty.EmptyObjectVal
		}
		attrs := make(map[string]cty.Value, len(x))
		for k, e := range x {
			attrs[k] = ToCty(e)
		}
		return cty.ObjectVal(attrs)
	}
	return cty.DynamicVal
}

// FromCty converts a cty value to a plain value (for var in assertions).
func FromCty(v cty.Value) any {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString()
	case ty == cty.Bool:
		return v.True()
	case ty == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == big.Exact {
				return i
			}
		}
		f, _ := bf.Float64()
		return f
	case ty.IsObjectType() || ty.IsMapType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = FromCty(e)
		}
		return out
	case v.CanIterateElements():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, FromCty(e))
		}
		return out
	}
	return nil
}

// Show renders a value compactly for messages: strings quoted, the rest as
// JSON, cut at limit bytes (0: whole). A shown value that may hold a secret
// is shown whole and cut by redact's Cut, which redacts first.
func Show(v any, limit int) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	default:
		b, err := json.Marshal(v) // map keys come out sorted
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	}
	if limit > 0 && len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
