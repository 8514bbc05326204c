package schemas

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/planrun/planrun/plan"
	"github.com/planrun/planrun/steps"
)

// stepsDoc renders docs/steps.md: every step type with its arguments and output.
func stepsDoc(reg *steps.Registry) []byte {
	var b bytes.Buffer
	b.WriteString("# Step types\n\n")
	b.WriteString("Generated from the Go types by `go test ./schemas -update`; do not edit.\n")
	b.WriteString("Every step also takes `depends_on`, `when`, `timeout`, `retry`, `assert` and (steps only) `rollback`; see the README.\n")
	b.WriteString("JSON Schemas: [schemas/plan.json](../schemas/plan.json) and `schemas/steps/TYPE.{args,output}.json`, also printed by `planrun schema [TYPE]`.\n\n")
	b.WriteString("| type | read-only | does |\n|---|---|---|\n")
	for _, name := range reg.Names() {
		t, _ := reg.Type(name)
		ro := "no"
		if t.ReadOnly() {
			ro = "yes"
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", name, name, ro, cell(t.Doc()))
	}
	for _, name := range reg.Names() {
		t, _ := reg.Type(name)
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", name, t.Doc())
		if t.ReadOnly() {
			b.WriteString("\nRead-only: usable in a `check`.\n")
		}
		b.WriteString("\n### Arguments\n\n| name | type | required | description |\n|---|---|---|---|\n")
		argsType := t.Args()
		for _, f := range plan.ArgsShape(argsType).Fields {
			typ := typeName(f.Shape)
			if sf, ok := hclField(argsType, f.Name); ok && sf.Type == databaseType {
				typ = "database"
			}
			if f.Block {
				typ = "block"
			}
			req := ""
			if f.Required {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, typ, req, cell(f.Doc))
		}
		b.WriteString("\n### Output\n\n| field | type | description |\n|---|---|---|\n")
		writeOutputRows(&b, plan.OutputShape(t.Output()), "")
	}
	return b.Bytes()
}

func writeOutputRows(b *bytes.Buffer, sh *plan.Shape, prefix string) {
	for _, f := range sh.Fields {
		fmt.Fprintf(b, "| `%s%s` | %s | %s |\n", prefix, f.Name, typeName(f.Shape), cell(f.Doc))
		inner := f.Shape
		suffix := "."
		if inner.Kind == plan.KindList && inner.Elem != nil {
			inner, suffix = inner.Elem, "[]."
		}
		if inner.Kind == plan.KindObject {
			writeOutputRows(b, inner, prefix+f.Name+suffix)
		}
	}
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
