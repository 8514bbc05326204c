package plan

import (
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// StepType is what the loader needs to know about a step type; the types
// themselves live in package steps, which plan does not import.
type StepType interface {
	// Args is a struct type whose fields carry gohcl tags (hcl:"name,optional")
	// and a doc tag; it is the type's argument schema.
	Args() reflect.Type
	// Output is a struct type whose fields carry json tags; it is the shape
	// of what the step produces.
	Output() reflect.Type
	// ReadOnly types never change data and may be used in a check.
	ReadOnly() bool
	// Doc is a one-line description.
	Doc() string
}

// ArgChecker is implemented by step types whose string arguments have a
// syntax of their own (durations, sizes, conditions). The loader checks
// every value it knows before the run with it, so that a typo fails
// validate at the argument instead of the run half-way. It returns nil for
// an argument it has nothing to say about.
type ArgChecker interface {
	CheckArg(name, value string) error
}

// ArgSetChecker is implemented by step types whose arguments depend on
// each other (one of two required, two that exclude each other). The
// loader calls it with the names of the arguments given; the error is
// reported at attr ("" for the block).
type ArgSetChecker interface {
	CheckArgSet(given map[string]bool) (attr string, err error)
}

// Types looks step types up by name.
type Types interface {
	Lookup(name string) (StepType, bool)
	Names() []string
}

// Kind is the kind of a Shape.
type Kind string

// Shape kinds.
const (
	KindAny    Kind = "any"
	KindString Kind = "string"
	KindNumber Kind = "number"
	KindBool   Kind = "bool"
	KindList   Kind = "list"
	KindMap    Kind = "map"
	KindObject Kind = "object"
)

// Shape describes a value: a step's output or arguments. It drives type
// checking of references and assertions, output normalisation and the JSON
// Schemas.
type Shape struct {
	Kind   Kind
	Elem   *Shape  // list and map elements
	Fields []Field // object fields, in declaration order
}

// Field is one field of an object shape.
type Field struct {
	Name     string
	Shape    *Shape
	Doc      string
	Required bool
	Block    bool // an HCL block rather than an attribute (arguments only)
}

// Field returns the named field, or nil.
func (s *Shape) Field(name string) *Field {
	if s == nil {
		return nil
	}
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// FieldNames lists the object's field names, sorted.
func (s *Shape) FieldNames() []string {
	var out []string
	for _, f := range s.Fields {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	timeType     = reflect.TypeOf(time.Time{})
	ctyValueType = reflect.TypeOf(cty.Value{})
)

// OutputShape derives a shape from a Go type using json tags.
func OutputShape(t reflect.Type) *Shape { return shapeOf(t, "json") }

// outputShapes caches OutputShape for the loader, which asks once per
// reference and assertion; the loader never changes a shape.
var outputShapes sync.Map // reflect.Type -> *Shape

func outputShape(t reflect.Type) *Shape {
	if s, ok := outputShapes.Load(t); ok {
		return s.(*Shape)
	}
	s := OutputShape(t)
	outputShapes.Store(t, s)
	return s
}

// ArgsShape derives a shape from an arguments struct using hcl tags.
func ArgsShape(t reflect.Type) *Shape { return shapeOf(t, "hcl") }

func shapeOf(t reflect.Type, tag string) *Shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == ctyValueType:
		return &Shape{Kind: KindAny}
	case t == timeType:
		return &Shape{Kind: KindString}
	case t == durationType:
		return &Shape{Kind: KindNumber}
	}
	switch t.Kind() {
	case reflect.String:
		return &Shape{Kind: KindString}
	case reflect.Bool:
		return &Shape{Kind: KindBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return &Shape{Kind: KindNumber}
	case reflect.Slice, reflect.Array:
		return &Shape{Kind: KindList, Elem: shapeOf(t.Elem(), tag)}
	case reflect.Map:
		return &Shape{Kind: KindMap, Elem: shapeOf(t.Elem(), tag)}
	case reflect.Struct:
		s := &Shape{Kind: KindObject}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, ok := fieldTag(f, tag)
			if !ok {
				continue
			}
			if tag == "hcl" && name == "" {
				continue // ",remain" and the like
			}
			fs := shapeOf(f.Type, tag)
			if tag == "hcl" && f.Type.Kind() == reflect.Interface {
				fs = &Shape{Kind: KindAny}
			}
			s.Fields = append(s.Fields, Field{
				Name:     name,
				Shape:    fs,
				Doc:      f.Tag.Get("doc"),
				Required: tag == "hcl" && !opts["optional"] && !opts["block"],
				Block:    opts["block"],
			})
		}
		return s
	}
	return &Shape{Kind: KindAny}
}

func fieldTag(f reflect.StructField, tag string) (string, map[string]bool, bool) {
	raw, ok := f.Tag.Lookup(tag)
	if !ok {
		if tag == "json" {
			return f.Name, nil, true
		}
		if tag == "hcl" {
			// Fields decoded from cty values (database objects) use cty tags.
			if c, ok := f.Tag.Lookup("cty"); ok {
				return c, map[string]bool{}, true
			}
		}
		return "", nil, false
	}
	if raw == "-" {
		return "", nil, false
	}
	parts := strings.Split(raw, ",")
	opts := map[string]bool{}
	for _, p := range parts[1:] {
		opts[p] = true
	}
	return parts[0], opts, true
}

// CtyType is the cty type of values of this shape; unknown parts are dynamic.
func (s *Shape) CtyType() cty.Type {
	if s == nil {
		return cty.DynamicPseudoType
	}
	switch s.Kind {
	case KindString:
		return cty.String
	case KindNumber:
		return cty.Number
	case KindBool:
		return cty.Bool
	case KindList:
		return cty.List(s.Elem.CtyType())
	case KindMap:
		return cty.Map(s.Elem.CtyType())
	case KindObject:
		attrs := map[string]cty.Type{}
		for _, f := range s.Fields {
			attrs[f.Name] = f.Shape.CtyType()
		}
		return cty.Object(attrs)
	}
	return cty.DynamicPseudoType
}
