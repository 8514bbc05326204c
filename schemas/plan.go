package schemas

import (
	"github.com/planrun/planrun/steps"
)

// planSchema describes a YAML plan file, for editors (yaml-language-server):
// put `# yaml-language-server: $schema=<path to plan.json>` on its first line.
func planSchema(reg *steps.Registry) schema {
	defs := commonDefs()
	ref := func(name string) schema { return schema{"$ref": "#/definitions/" + name} }
	defs["assert"] = schema{
		"type":                 "object",
		"required":             []string{"that"},
		"additionalProperties": false,
		"properties": schema{
			"that":     schema{"type": "string", "description": "An expr-lang condition on output, steps.NAME, checks.NAME and var.NAME."},
			"message":  schema{"type": "string", "description": "Shown when the condition is false; {{ expr }} parts are evaluated."},
			"severity": schema{"enum": []string{"error", "warn"}, "description": "error (default) fails the step; warn is reported and the run goes on."},
		},
	}
	defs["asserts"] = schema{"oneOf": []any{ref("assert"), schema{"type": "array", "items": ref("assert")}}}
	defs["retry"] = schema{
		"type":                 "object",
		"additionalProperties": false,
		"properties": schema{
			"attempts":    schema{"anyOf": []any{schema{"type": "integer", "minimum": 1}, ref("template")}, "description": "Total attempts."},
			"backoff":     schema{"allOf": []any{ref("duration")}, "description": "The wait after the first failure; it doubles after each."},
			"max_backoff": schema{"allOf": []any{ref("duration")}, "description": "The longest wait."},
		},
	}
	defs["reference_list"] = schema{
		"type":  "array",
		"items": schema{"type": "string", "pattern": `^(\$\{)?(step|check|library)\.[A-Za-z_][A-Za-z0-9_-]*\}?$`},
	}
	common := func(kind string) schema {
		p := schema{
			"uses":        schema{"enum": sortedTypes(reg, kind == "check"), "description": "The step type."},
			"description": schema{"type": "string"},
			"depends_on":  schema{"allOf": []any{ref("reference_list")}, "description": "Steps, checks or libraries that must succeed first (references add these edges by themselves)."},
			"when":        schema{"anyOf": []any{schema{"type": "boolean"}, ref("template")}, "description": "false skips the step."},
			"timeout":     schema{"allOf": []any{ref("duration")}, "description": "Cancel an attempt after this long."},
			"retry":       ref("retry"),
			"assert":      ref("asserts"),
		}
		if kind == "step" {
			p["rollback"] = schema{"allOf": []any{ref("rollback")}, "description": "Undoes the step when a later one fails: uses = TYPE and that type's arguments."}
		}
		return p
	}
	// One definition per type and kind: the common properties plus the
	// type's arguments, chosen by the value of uses.
	for _, kind := range []string{"step", "check", "rollback"} {
		var branches []any
		for _, name := range sortedTypes(reg, kind == "check") {
			t, _ := reg.Type(name)
			args := argsSchema(t, true)
			props := args["properties"].(schema)
			var base schema
			if kind == "rollback" {
				base = schema{"uses": schema{"const": name}, "timeout": ref("duration"), "retry": ref("retry"), "assert": ref("asserts")}
			} else {
				base = common(kind)
				base["uses"] = schema{"const": name}
			}
			for k, v := range base {
				props[k] = v
			}
			required := []string{"uses"}
			if r, ok := args["required"].([]string); ok {
				required = append(required, r...)
			}
			args["required"] = required
			args["description"] = t.Doc()
			defName := kind + "_" + name
			defs[defName] = args
			branches = append(branches, schema{
				"if":   schema{"properties": schema{"uses": schema{"const": name}}, "required": []string{"uses"}},
				"then": ref(defName),
			})
		}
		defs[kind] = schema{
			"type":     "object",
			"required": []string{"uses"},
			"properties": schema{
				"uses": schema{"enum": sortedTypes(reg, kind == "check")},
			},
			"allOf": branches,
		}
	}
	defs["variable"] = schema{
		"type":                 "object",
		"additionalProperties": false,
		"properties": schema{
			"type":        schema{"type": "string", "description": "A type expression: string, number, bool, list(string), map(number), object({...}), any."},
			"default":     schema{"description": "The value when none is given; without a default the variable is required."},
			"description": schema{"type": "string"},
			"sensitive":   schema{"type": "boolean", "description": "Never shown or recorded."},
			"validation": schema{"type": "array", "items": schema{
				"type":                 "object",
				"required":             []string{"condition", "error_message"},
				"additionalProperties": false,
				"properties": schema{
					"condition":     schema{"type": "string", "description": "An HCL expression that must be true, such as \"${var.jobs >= 1}\"."},
					"error_message": schema{"type": "string"},
				},
			}},
		},
	}
	named := func(def schema) schema {
		return schema{"type": "object", "propertyNames": schema{"pattern": `^[A-Za-z_][A-Za-z0-9_-]*$`}, "additionalProperties": def}
	}
	return schema{
		"$schema":              "https://json-schema.org/draft-07/schema#",
		"$id":                  BaseID + "plan.json",
		"title":                "planrun plan (YAML)",
		"description":          "A planrun plan: steps, checks and rollback hooks wired into a DAG. String values are HCL templates.",
		"type":                 "object",
		"additionalProperties": false,
		"properties": schema{
			"plan": schema{
				"type":                 "object",
				"additionalProperties": false,
				"properties": schema{
					"name":        schema{"type": "string"},
					"description": schema{"type": "string"},
					"on_failure":  schema{"enum": []string{"rollback", "stop"}},
					"downtime": schema{
						"type":                 "object",
						"required":             []string{"from", "to"},
						"additionalProperties": false,
						"properties": schema{
							"from": schema{"type": "string", "pattern": `^(\$\{)?(step|check)\.`},
							"to":   schema{"type": "string", "pattern": `^(\$\{)?(step|check)\.`},
						},
					},
				},
			},
			"variables": named(ref("variable")),
			"locals":    schema{"type": "object"},
			"databases": named(schema{
				"type": "object", "required": []string{"url"}, "additionalProperties": false,
				"properties": schema{"url": schema{"type": "string"}, "description": schema{"type": "string"}},
			}),
			"steps":  named(ref("step")),
			"checks": named(ref("check")),
			"libraries": named(schema{
				"type": "object", "required": []string{"source"}, "additionalProperties": false,
				"properties": schema{
					"source":     schema{"type": "string", "description": "A local path, git::URL//subdir?ref=TAG, or a built-in library such as planrun/postgres."},
					"inputs":     schema{"type": "object"},
					"depends_on": ref("reference_list"),
				},
			}),
			"state": schema{
				"type": "object", "additionalProperties": false,
				"properties": schema{"postgres": schema{"type": "string", "description": "Keep run records and locks in this Postgres database."}},
			},
		},
		"definitions": defs,
	}
}
