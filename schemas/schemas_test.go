package schemas

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/planrun/planrun/steps"
)

var update = flag.Bool("update", false, "rewrite the generated schemas and docs/steps.md")

// TestGeneratedFilesAreUpToDate fails when a step type's Go types changed
// and the committed schemas (or docs/steps.md) were not regenerated.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	files, err := Generate(steps.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./schemas -update and commit the result", name)
		}
		if embedded, ok := Get(name); ok && !bytes.Equal(embedded, want) {
			t.Errorf("the embedded %s differs from the generated one", name)
		}
	}
	if !*update && len(Names()) != len(files)-1 { // docs/steps.md is not embedded
		t.Errorf("embedded %d schemas, generated %d", len(Names()), len(files)-1)
	}
}

func TestSchemasAreJSONWithIDs(t *testing.T) {
	for _, name := range Names() {
		raw, _ := Get(name)
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s["$id"] != BaseID+name {
			t.Errorf("%s: $id %v", name, s["$id"])
		}
	}
}
