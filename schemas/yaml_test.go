package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func compilePlanSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, _ := Get("plan.json")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(BaseID+"plan.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(BaseID + "plan.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlValue reads a YAML file as the JSON value an editor validates.
func yamlValue(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestYAMLPlansMatchTheSchema: every YAML plan the loader accepts (the
// valid test plans and the examples) passes the schema an editor uses.
func TestYAMLPlansMatchTheSchema(t *testing.T) {
	s := compilePlanSchema(t)
	var files []string
	for _, pattern := range []string{"../plan/testdata/valid/*.y*ml", "../examples/*/*.y*ml"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no YAML plans found")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlValue(t, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSchemaRejectsWhatTheLoaderRejects(t *testing.T) {
	s := compilePlanSchema(t)
	cases := map[string]string{
		"unknown top-level key": "stepz: {}\n",
		"unknown step type":     "steps:\n  a:\n    uses: nope\n",
		"unknown argument":      "steps:\n  a:\n    uses: sleep\n    duration: 1s\n    nope: 1\n",
		"missing argument":      "steps:\n  a:\n    uses: sleep\n",
		"non-read-only check":   "checks:\n  a:\n    uses: exec\n    shell: 'true'\n",
		"bad severity":          "steps:\n  a:\n    uses: sleep\n    duration: 1s\n    assert: {that: 'true', severity: loud}\n",
		"rollback in a check":   "checks:\n  a:\n    uses: sleep\n    duration: 1s\n    rollback: {uses: sleep, duration: 1s}\n",
	}
	for name, src := range cases {
		if err := s.Validate(yamlValue(t, []byte(src))); err == nil {
			t.Errorf("%s: the schema accepted\n%s", name, src)
		}
	}
	ok := "steps:\n  a:\n    uses: sleep\n    duration: \"${var.d}\"\n    retry: {attempts: 2}\n    assert:\n      - that: output.seconds > 0\n    rollback: {uses: exec, command: [\"true\"]}\n"
	if err := s.Validate(yamlValue(t, []byte(ok))); err != nil {
		t.Errorf("a valid plan was rejected: %v", strings.ReplaceAll(err.Error(), "\n", " "))
	}
}
