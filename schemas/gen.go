// Package schemas holds the JSON Schemas of planrun's plan files and of every
// step type's arguments and output. They are generated from the Go types
// (Generate), committed, embedded in the binary, and a test fails when the
// committed files are stale. docs/steps.md is generated alongside.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
	"github.com/planrun/planrun/steps/steptype"
)

// Version is the schema version; it changes only when plans written for the
// previous version would no longer be valid.
const Version = "v1"

// BaseID prefixes every schema's $id.
const BaseID = "https://planrun.dev/schemas/" + Version + "/"

//go:embed plan.json steps/*.json
var embedded embed.FS

// Get returns an embedded schema file: "plan.json", "steps/exec.args.json"...
func Get(name string) ([]byte, bool) {
	raw, err := embedded.ReadFile(name)
	return raw, err == nil
}

// Names lists the embedded schema files.
func Names() []string {
	var out []string
	entries, _ := embedded.ReadDir("steps") // the directory is embedded: cannot fail
	out = append(out, "plan.json")
	for _, e := range entries {
		out = append(out, "steps/"+e.Name())
	}
	return out
}

type schema = map[string]any

var databaseType = reflect.TypeOf(&pgkit.Database{})

// Generate builds every schema file, and docs/steps.md, from the step types.
func Generate(reg *steps.Registry) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range reg.Names() {
		t, _ := reg.Type(name)
		args := argsSchema(t, false)
		args["$schema"] = "https://json-schema.org/draft-07/schema#"
		args["$id"] = BaseID + "steps/" + name + ".args.json"
		args["title"] = name + " arguments"
		args["description"] = t.Doc()
		args["definitions"] = commonDefs()
		out := outputSchema(plan.OutputShape(t.Output()))
		out["$schema"] = "https://json-schema.org/draft-07/schema#"
		out["$id"] = BaseID + "steps/" + name + ".output.json"
		out["title"] = name + " output"
		for file, s := range map[string]schema{name + ".args.json": args, name + ".output.json": out} {
			raw, err := marshal(s)
			if err != nil {
				return nil, fmt.Errorf("schema %s: %w", file, err)
			}
			files["steps/"+file] = raw
		}
	}
	raw, err := marshal(planSchema(reg))
	if err != nil {
		return nil, fmt.Errorf("plan schema: %w", err)
	}
	files["plan.json"] = raw
	files["../docs/steps.md"] = stepsDoc(reg)
	return files, nil
}

func marshal(s schema) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// commonDefs are the definitions every schema's references use.
func commonDefs() schema {
	return schema{
		"template": schema{
			"type":        "string",
			"pattern":     `\$\{`,
			"description": "An HCL template such as \"${var.jobs}\": YAML strings are templates, evaluated before the step runs.",
		},
		"database": schema{
			"type":        "string",
			"pattern":     `^\$\{database\.[A-Za-z_][A-Za-z0-9_-]*\}$`,
			"description": "A database block: \"${database.NAME}\".",
		},
		"duration": schema{
			"type":        "string",
			"pattern":     `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|\$\{`,
			"description": "A duration such as \"30s\", \"5m\" or \"2h\".",
		},
	}
}

// argsSchema describes a type's arguments as YAML writes them: every value
// may also be a template. embedded uses the plan schema's definitions path.
func argsSchema(t steptype.Type, embedded bool) schema {
	ref := "#/definitions/"
	props := schema{}
	var required []string
	shape := plan.ArgsShape(t.Args())
	argsType := t.Args()
	for _, f := range shape.Fields {
		var s schema
		if sf, ok := hclField(argsType, f.Name); ok && sf.Type == databaseType {
			s = schema{"$ref": ref + "database"}
		} else {
			s = valueSchema(f.Shape, ref, f.Block)
		}
		if f.Doc != "" {
			s["description"] = f.Doc
		}
		props[f.Name] = s
		if f.Required {
			required = append(required, f.Name)
		}
	}
	out := schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func hclField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("hcl"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// valueSchema is a shape's schema where a template may stand for any value.
func valueSchema(sh *plan.Shape, ref string, block bool) schema {
	switch sh.Kind {
	case plan.KindString:
		return schema{"type": "string"}
	case plan.KindNumber:
		return schema{"anyOf": []any{schema{"type": "number"}, schema{"$ref": ref + "template"}}}
	case plan.KindBool:
		return schema{"anyOf": []any{schema{"type": "boolean"}, schema{"$ref": ref + "template"}}}
	case plan.KindList:
		return schema{"anyOf": []any{schema{"type": "array", "items": valueSchema(sh.Elem, ref, false)}, schema{"$ref": ref + "template"}}}
	case plan.KindMap:
		return schema{"anyOf": []any{schema{"type": "object", "additionalProperties": valueSchema(sh.Elem, ref, false)}, schema{"$ref": ref + "template"}}}
	case plan.KindObject:
		props := schema{}
		var required []string
		for _, f := range sh.Fields {
			fs := valueSchema(f.Shape, ref, f.Block)
			if f.Doc != "" {
				fs["description"] = f.Doc
			}
			props[f.Name] = fs
			if f.Required {
				required = append(required, f.Name)
			}
		}
		// A nested step (wait's probe) takes its type's arguments too.
		s := schema{"type": "object", "properties": props, "additionalProperties": block && sh.Field("uses") != nil}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return schema{}
}

// outputSchema describes an output as produced (no templates).
func outputSchema(sh *plan.Shape) schema {
	switch sh.Kind {
	case plan.KindString:
		return schema{"type": "string"}
	case plan.KindNumber:
		return schema{"type": "number"}
	case plan.KindBool:
		return schema{"type": "boolean"}
	case plan.KindList:
		return schema{"type": "array", "items": outputSchema(sh.Elem)}
	case plan.KindMap:
		return schema{"type": "object", "additionalProperties": outputSchema(sh.Elem)}
	case plan.KindObject:
		props := schema{}
		var names []string
		for _, f := range sh.Fields {
			fs := outputSchema(f.Shape)
			if f.Doc != "" {
				fs["description"] = f.Doc
			}
			props[f.Name] = fs
			names = append(names, f.Name)
		}
		return schema{"type": "object", "properties": props, "required": names}
	}
	return schema{}
}

// typeName renders a shape for docs: list(string), map(number), object...
func typeName(sh *plan.Shape) string {
	switch sh.Kind {
	case plan.KindList, plan.KindMap:
		return string(sh.Kind) + "(" + typeName(sh.Elem) + ")"
	}
	return string(sh.Kind)
}

func sortedTypes(reg *steps.Registry, readOnly bool) []string {
	var out []string
	for _, n := range reg.Names() {
		if t, _ := reg.Type(n); !readOnly || t.ReadOnly() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
