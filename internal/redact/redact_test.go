package redact

import (
	"reflect"
	"testing"
)

func TestStringAndValue(t *testing.T) {
	r := New("hunter2", "")
	r.Add("hunter22-long")
	if got := r.String("pw=hunter22-long and hunter2"); got != "pw=(sensitive) and (sensitive)" {
		t.Fatalf("String: %q", got)
	}
	v := map[string]any{"a": []any{"x hunter2", int64(3)}, "hunter2": true}
	want := map[string]any{"a": []any{"x (sensitive)", int64(3)}, "(sensitive)": true}
	if got := r.Value(v); !reflect.DeepEqual(got, want) {
		t.Fatalf("Value: %#v", got)
	}
	if v["a"].([]any)[0] != "x hunter2" {
		t.Fatal("Value changed its input")
	}
	var nilR *Redactor
	if nilR.String("hunter2") != "hunter2" {
		t.Fatal("nil redactor must pass text through")
	}
}
