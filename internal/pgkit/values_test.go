package pgkit

import (
	"reflect"
	"testing"
)

func TestSQLValueExactNumber(t *testing.T) {
	for in, want := range map[string]any{
		"42":                        int64(42),
		"-7":                        int64(-7),
		"1.00":                      int64(1),
		"12.34":                     12.34,
		"0.1":                       0.1,
		"1e3":                       int64(1000),
		"9223372036854775808":       "9223372036854775808", // one past int64
		"12345678901234567890.123":  "12345678901234567890.123",
		"0.12345678901234567890123": "0.12345678901234567890123",
		"NaN":                       "NaN",
		"1e400":                     "1e400",
	} {
		if got := exactNumber(in); !reflect.DeepEqual(got, want) {
			t.Errorf("exactNumber(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestSQLValueJSON(t *testing.T) {
	got, err := pgJSON([]byte(`{"a": [1, 2.5, 123456789012345678901], "b": {"c": null, "d": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{int64(1), 2.5, "123456789012345678901"}, "b": map[string]any{"c": nil, "d": true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	if _, err := pgJSON([]byte(`{"a":`)); err == nil {
		t.Error("broken JSON decoded")
	}
}
