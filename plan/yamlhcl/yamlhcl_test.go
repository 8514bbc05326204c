package yamlhcl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

func parse(t *testing.T, src string) *File {
	t.Helper()
	f, diags := Parse([]byte(src), "plan.yaml")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return f
}

// text is the source a range covers.
func text(f *File, rng hcl.Range) string {
	return string(f.Bytes[rng.Start.Byte:rng.End.Byte])
}

// checkRange verifies that a range's byte offsets agree with its line and column.
func checkRange(t *testing.T, f *File, rng hcl.Range) {
	t.Helper()
	for _, p := range []hcl.Pos{rng.Start, rng.End} {
		before := string(f.Bytes[:p.Byte])
		line := 1 + strings.Count(before, "\n")
		col := 1 + len([]rune(before[strings.LastIndex(before, "\n")+1:]))
		if line != p.Line || col != p.Column {
			t.Errorf("%s: byte %d is %d:%d", rng, p.Byte, line, col)
		}
	}
}

func TestParseEmptyAndNotAMapping(t *testing.T) {
	f, diags := Parse([]byte("# only a comment\n"), "plan.yaml")
	if diags.HasErrors() || f.Root != nil {
		t.Fatalf("empty file: root %v, %v", f.Root, diags)
	}
	_, diags = Parse([]byte("- a\n- b\n"), "plan.yaml")
	if !diags.HasErrors() || diags[0].Summary != "Invalid plan file" || diags[0].Subject.Start.Line != 1 {
		t.Fatalf("a list at the top: %v", diags)
	}
}

func TestParseErrorLines(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		detail    string
	}{
		// parser errors: yaml.v3 says the line 0-based, the start of the collection
		{"unclosed flow list", "a: 1\nb:\n  c: [1, 2\n  d: 3\n", 3, "did not find expected ',' or ']' (a [ list is not closed)"},
		// on line 1 yaml.v3 says where the problem is instead
		{"unclosed flow list on line 1", "c: [1, 2\nd: 3\n", 2, "did not find expected ',' or ']'"},
		{"unclosed flow mapping", "a: 1\nb: {x: 1\n", 2, "did not find expected ',' or '}'"},
		// scanner errors: 1-based already
		{"mapping value in plain scalar", "a:\n  b: c\n   d: e\n", 3, "mapping values are not allowed in this context"},
		{"tab indentation", "a:\n\tb: c\n", 2, "found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse([]byte(tt.src), "plan.yaml")
			if len(diags) != 1 || diags[0].Summary != "Invalid YAML" {
				t.Fatalf("diags = %v", diags)
			}
			d := diags[0]
			if d.Subject.Start.Line != tt.line || !strings.HasPrefix(d.Detail, tt.detail) {
				t.Errorf("line %d %q, want line %d %q", d.Subject.Start.Line, d.Detail, tt.line, tt.detail)
			}
		})
	}
}

func TestScalarPositions(t *testing.T) {
	src := "plain: pg_dump -Fd\n" +
		"double: \"a \\\"quoted\\\" value\"\n" +
		"single: 'it''s'\n" +
		"number: 4_000\n" +
		"flag: true\n" +
		"empty:\n" +
		"tmpl: \"${step.dump.output.path}/x\"\n" +
		"uni: \"é ${var.x}\"\n"
	f := parse(t, src)
	attrs, diags := f.Body(f.Root).JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	tests := []struct {
		name     string
		covers   string // the text the expression's range covers
		nameLine int
		value    cty.Value
	}{
		{"plain", "pg_dump -Fd", 1, cty.StringVal("pg_dump -Fd")},
		{"double", `"a \"quoted\" value"`, 2, cty.StringVal(`a "quoted" value`)},
		{"single", `'it''s'`, 3, cty.StringVal("it's")},
		{"number", "4_000", 4, cty.NumberIntVal(4000)},
		{"flag", "true", 5, cty.True},
		{"uni", `"é ${var.x}"`, 8, cty.StringVal("é 1")},
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"x": cty.NumberIntVal(1)})}}
	for _, tt := range tests {
		a := attrs[tt.name]
		if a == nil {
			t.Fatalf("no attribute %s", tt.name)
		}
		rng := a.Expr.Range()
		checkRange(t, f, rng)
		checkRange(t, f, a.NameRange)
		if got := text(f, rng); got != tt.covers {
			t.Errorf("%s: range covers %q, want %q", tt.name, got, tt.covers)
		}
		if a.NameRange.Start.Line != tt.nameLine || text(f, a.NameRange) != tt.name {
			t.Errorf("%s: name range %s covers %q", tt.name, a.NameRange, text(f, a.NameRange))
		}
		if a.Range.Start != a.NameRange.Start || a.Range.End != rng.End {
			t.Errorf("%s: attribute range %s, want from the key to the end of the value", tt.name, a.Range)
		}
		v, d := a.Expr.Value(ctx)
		if d.HasErrors() || !v.RawEquals(tt.value) {
			t.Errorf("%s = %#v (%v), want %#v", tt.name, v, d, tt.value)
		}
	}
	if v, _ := attrs["empty"].Expr.Value(nil); !v.IsNull() {
		t.Errorf("empty = %#v, want null", v)
	}
	// A template in a quoted scalar: its references point into the file.
	vars := attrs["tmpl"].Expr.Variables()
	if len(vars) != 1 {
		t.Fatalf("tmpl reads %d traversals", len(vars))
	}
	if got := text(f, vars[0].SourceRange()); got != "step.dump.output.path" {
		t.Errorf("traversal range covers %q", got)
	}
	if se := attrs["double"].Expr.(*StringExpr); se.ContentStart().Column != 10 {
		t.Errorf("content of double starts at column %d, want 10 (after the quote)", se.ContentStart().Column)
	}
}

func TestPosAt(t *testing.T) {
	src := "a: \"x \\\"y\\\" \\u00e9 \\x41 z\"\n" +
		"b: 'it''s z'\n" +
		"c: |\n  line one\n    line two z\n" +
		"d: >-\n  folded\n  text z\n" +
		"e: plain\n  continued z\n" +
		"f: \"two\n  lines z\"\n"
	f := parse(t, src)
	attrs, diags := f.Body(f.Root).JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		se, ok := attrs[name].Expr.(*StringExpr)
		if !ok {
			t.Fatalf("%s is %T", name, attrs[name].Expr)
		}
		// the last "z" of the value is the last z before the end of the scalar in the file
		off := strings.LastIndex(se.Raw, "z")
		pos := se.PosAt(off)
		if f.Bytes[pos.Byte] != 'z' {
			t.Errorf("%s: PosAt(%d) = %d:%d (%q), want the z", name, off, pos.Line, pos.Column, f.Bytes[pos.Byte:])
		}
		checkRange(t, f, hcl.Range{Start: pos, End: pos})
		if got := se.PosAt(0); got != se.ContentStart() {
			t.Errorf("%s: PosAt(0) = %v, want the content start %v", name, got, se.ContentStart())
		}
	}
	if got := attrs["c"].Expr.(*StringExpr).ContentStart().Line; got != 4 {
		t.Errorf("a literal block's text starts on line %d, want 4", got)
	}
	// Value and source that do not line up: the start, never a wrong place.
	start := hcl.Pos{Line: 1, Column: 1, Byte: 0}
	if got := SourcePos([]byte("abc"), start, "xyz", 2, 0); got != start {
		t.Errorf("SourcePos of unrelated text = %v", got)
	}
	if got := SourcePos([]byte("abc"), start, "abc", 99, 0); got.Byte != 3 {
		t.Errorf("SourcePos past the end = %v", got)
	}
}

var blockSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "steps", LabelNames: []string{"name"}},
		{Type: "retry"},
		{Type: "assert"},
	},
}

var stepSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "uses", Required: true}, {Name: "timeout"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "retry"}, {Type: "assert"}},
}

func TestBlocks(t *testing.T) {
	src := "steps:\n" +
		"  dump:\n" +
		"    uses: exec\n" +
		"    retry: {attempts: 2}\n" +
		"    assert:\n" +
		"      - that: output.a\n" +
		"      - that: output.b\n" +
		"  restore:\n" +
		"    uses: exec\n" +
		"    assert:\n" +
		"      that: output.c\n"
	f := parse(t, src)
	content, diags := f.Body(f.Root).Content(blockSchema)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(content.Blocks) != 2 {
		t.Fatalf("%d blocks", len(content.Blocks))
	}
	dump, restore := content.Blocks[0], content.Blocks[1]
	if dump.Type != "steps" || dump.Labels[0] != "dump" || restore.Labels[0] != "restore" {
		t.Fatalf("blocks %s %v, %s %v", dump.Type, dump.Labels, restore.Type, restore.Labels)
	}
	if text(f, dump.DefRange) != "dump" || dump.DefRange.Start.Line != 2 || text(f, dump.LabelRanges[0]) != "dump" {
		t.Errorf("dump defined at %s", dump.DefRange)
	}
	inner, diags := dump.Body.Content(stepSchema)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var asserts, retries []*hcl.Block
	for _, b := range inner.Blocks {
		switch b.Type {
		case "assert":
			asserts = append(asserts, b)
		case "retry":
			retries = append(retries, b)
		}
	}
	if len(retries) != 1 || len(asserts) != 2 {
		t.Fatalf("%d retry, %d assert blocks", len(retries), len(asserts))
	}
	// a block from a list item is defined where the item starts
	for i, line := range []int{6, 7} {
		if asserts[i].DefRange.Start.Line != line || text(f, asserts[i].DefRange) != "t" {
			t.Errorf("assert %d defined at %s (%q)", i, asserts[i].DefRange, text(f, asserts[i].DefRange))
		}
		a, d := asserts[i].Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "that"}}})
		if d.HasErrors() {
			t.Fatal(d)
		}
		if v, _ := a.Attributes["that"].Expr.Value(nil); v.AsString() != []string{"output.a", "output.b"}[i] {
			t.Errorf("assert %d: that = %#v", i, v)
		}
	}
	// a block from a mapping is defined from its key
	if text(f, retries[0].DefRange) != "retry: {" || retries[0].DefRange.Start.Line != 4 {
		t.Errorf("retry defined at %s (%q)", retries[0].DefRange, text(f, retries[0].DefRange))
	}
	rinner, diags := restore.Body.Content(stepSchema)
	if diags.HasErrors() || len(rinner.Blocks) != 1 || rinner.Blocks[0].Type != "assert" {
		t.Fatalf("restore: %v %v", rinner.Blocks, diags)
	}
}

func TestBlockProblems(t *testing.T) {
	src := "steps:\n" +
		"  dump: pg_dump\n" + // a scalar, not a mapping
		"  restore:\n" +
		"    timeout: 1h\n" + // no uses
		"    retry: 3\n" +
		"    asert: {that: x}\n"
	f := parse(t, src)
	content, diags := f.Body(f.Root).Content(blockSchema)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, b := range content.Blocks {
		_, d := b.Body.Content(stepSchema)
		for _, diag := range d {
			got = append(got, diag.Summary+" @"+text(f, *diag.Subject)+": "+diag.Detail)
		}
	}
	want := []string{
		`Invalid block @pg_dump: A mapping (key: value lines) is required here, not the value "pg_dump".`,
		`Missing required argument @restore: The argument "uses" is required, but no definition was found.`,
		`Invalid block @3: "retry" must be a mapping, or a list of mappings.`,
		`Unsupported argument @asert: An argument named "asert" is not expected here. Did you mean "assert"?`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDuplicateKeys(t *testing.T) {
	src := "uses: exec\n" +
		"command: [a]\n" +
		"timeout: 1h\n" +
		"command: [b]\n" +
		"timeout: 2h\n"
	f := parse(t, src)
	// Decoded in two phases, as steps are: each duplicate is reported once.
	content, rest, diags := f.Body(f.Root).PartialContent(stepSchema)
	_, d2 := rest.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "command"}}})
	diags = append(diags, d2...)
	if len(diags) != 2 {
		t.Fatalf("%d diagnostics: %v", len(diags), diags)
	}
	for i, want := range []struct {
		line   int
		detail string
	}{{4, `The key "command" was already given at line 2.`}, {5, `The key "timeout" was already given at line 3.`}} {
		found := false
		for _, d := range diags {
			if d.Summary == "Duplicate key" && d.Subject.Start.Line == want.line && d.Detail == want.detail {
				found = true
			}
		}
		if !found {
			t.Errorf("duplicate %d not reported: %v", i, diags)
		}
	}
	// The first value wins.
	if v, _ := content.Attributes["timeout"].Expr.Value(nil); v.AsString() != "1h" {
		t.Errorf("timeout = %#v", v)
	}
	attrs, d := f.Body(f.Root).JustAttributes()
	if len(d) != 2 || len(attrs) != 3 {
		t.Errorf("JustAttributes: %d attributes, %v", len(attrs), d)
	}
}

func TestAsTraversal(t *testing.T) {
	src := "a: step.dump\n" +
		"b: \"${step.dump}\"\n" +
		"c: ${check.same_data}\n" +
		"d: \"step.dump is done\"\n" +
		"e: \"${step.a}-${step.b}\"\n"
	f := parse(t, src)
	attrs, diags := f.Body(f.Root).JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for name, want := range map[string]string{"a": "step.dump", "b": "step.dump", "c": "check.same_data"} {
		trav, d := hcl.AbsTraversalForExpr(attrs[name].Expr)
		if d.HasErrors() {
			t.Fatalf("%s: %v", name, d)
		}
		if len(trav) != 2 || trav.RootName()+"."+trav[1].(hcl.TraverseAttr).Name != want {
			t.Errorf("%s: traversal %#v", name, trav)
		}
		rng := trav.SourceRange()
		checkRange(t, f, rng)
		if got := text(f, rng); got != want {
			t.Errorf("%s: traversal range covers %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"d", "e"} {
		if _, d := hcl.AbsTraversalForExpr(attrs[name].Expr); !d.HasErrors() {
			t.Errorf("%s read as a traversal", name)
		}
	}
}

func TestExprCall(t *testing.T) {
	f := parse(t, "a: list(string)\nb: string\n")
	attrs, _ := f.Body(f.Root).JustAttributes()
	call, d := hcl.ExprCall(attrs["a"].Expr)
	if d.HasErrors() || call.Name != "list" || len(call.Arguments) != 1 {
		t.Fatalf("call = %+v, %v", call, d)
	}
	if trav, d := hcl.AbsTraversalForExpr(attrs["b"].Expr); d.HasErrors() || trav.RootName() != "string" {
		t.Errorf("string as a keyword: %v %v", trav, d)
	}
}

func TestValues(t *testing.T) {
	f := parse(t, "list: [1, two, {x: true}]\nmap: {a: 1.5, b: ~}\nbig: 123456789012345678901234567890\nalias: &x hello\nref: *x\n")
	attrs, diags := f.Body(f.Root).JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := map[string]cty.Value{
		"list": cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.StringVal("two"), cty.ObjectVal(map[string]cty.Value{"x": cty.True})}),
		"map":  cty.ObjectVal(map[string]cty.Value{"a": cty.NumberFloatVal(1.5), "b": cty.NullVal(cty.DynamicPseudoType)}),
		"ref":  cty.StringVal("hello"),
	}
	for name, w := range want {
		v, d := attrs[name].Expr.Value(nil)
		if d.HasErrors() || !v.Equals(w).True() {
			t.Errorf("%s = %#v, want %#v", name, v, w)
		}
	}
	big, _ := attrs["big"].Expr.Value(nil)
	if big.AsBigFloat().Text('f', 0) != "123456789012345678901234567890" {
		t.Errorf("big = %s", big.AsBigFloat().Text('f', 0))
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"command", "shell", "depends_on", "env"}
	for given, want := range map[string]string{"comand": "command", "dependson": "depends_on", "shel": "shell", "zzz": "", "ENV": ""} {
		if got := Suggest(given, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", given, got, want)
		}
	}
}

func TestAliases(t *testing.T) {
	f := parse(t, "base: &b [pg_dump, -Fd]\nargs: *b\nself: &s [1, *s]\n")
	attrs, diags := f.Body(f.Root).JustAttributes()
	if len(diags) != 1 || diags[0].Summary != "Invalid alias" || !strings.Contains(diags[0].Detail, "*s") {
		t.Fatalf("diags = %v", diags)
	}
	if got := text(f, *diags[0].Subject); got != "*s" || diags[0].Subject.Start.Line != 3 {
		t.Errorf("the alias range covers %q on line %d", got, diags[0].Subject.Start.Line)
	}
	v, d := attrs["args"].Expr.Value(nil)
	if d.HasErrors() || !v.Equals(cty.TupleVal([]cty.Value{cty.StringVal("pg_dump"), cty.StringVal("-Fd")})).True() {
		t.Errorf("args = %#v", v)
	}
	// Nested aliases that would expand to 9^7 values stop at a bound.
	src := "a: &a [x,x,x,x,x,x,x,x,x]\n"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		prev := string(rune(n[0] - 1))
		src += n + ": &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n"
	}
	f = parse(t, src)
	_, diags = f.Body(f.Root).JustAttributes()
	if !diags.HasErrors() || diags[len(diags)-1].Summary != "Too many aliases" {
		t.Fatalf("diags = %v", diags)
	}
}

// TestTooDeep: collections nested past the limit are refused where they
// nest too deep, whether written out or built by aliases.
func TestTooDeep(t *testing.T) {
	_, diags := Parse([]byte("x: "+strings.Repeat("[", 150)+"1"+strings.Repeat("]", 150)+"\n"), "p.yaml")
	if len(diags) != 1 || diags[0].Summary != "Too deeply nested" || diags[0].Subject.Start.Line != 1 || diags[0].Subject.Start.Column != 103 {
		t.Fatalf("written out: %v", diags)
	}
	// Each level is shallow; the alias of the alias of ... is not.
	src := "a0: &a0 [1]\n"
	for i := 1; i <= 120; i++ {
		src += fmt.Sprintf("a%d: &a%d [*a%d]\n", i, i, i-1)
	}
	f := parse(t, src)
	_, diags = f.Body(f.Root).JustAttributes()
	if len(diags) != 21 { // a100 (101 levels) to a120
		t.Fatalf("%d diagnostics: %v", len(diags), diags)
	}
	for _, d := range diags {
		if d.Summary != "Too deeply nested" {
			t.Errorf("%v", d)
		}
	}
}

// TestMisindentedLine: yaml.v3 names the line of the mapping an
// under-indented key should be in; the diagnostic is at the key's own line
// and column, and says between which levels it fell.
func TestMisindentedLine(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int
		detail    string
	}{
		{"key under-indented by one", "steps:\n  dump:\n    uses: exec\n   command: [x]\n", 4, 4,
			"This line is indented 3 spaces, between the levels of the lines above it (2 and 4): line it up with one of them."},
		{"in the second step", "steps:\n  dump:\n    uses: exec\n    command: [x]\n  restore:\n    uses: exec\n   timeout: 1m\n", 7, 4,
			"This line is indented 3 spaces, between the levels of the lines above it (2 and 4)"},
		{"list item", "plan:\n  name: x\nsteps:\n  dump:\n    uses: exec\n    command:\n      - a\n     - b\n", 8, 6,
			"This line is indented 5 spaces, between the levels of the lines above it (4 and 6)"},
		{"key of a list item", "steps:\n  dump:\n    uses: exec\n    assert:\n      - that: x\n       message: y\n", 6, 8,
			"This line is indented 7 spaces, between the levels of the lines above it (6 and 8)"},
		{"over-indented first key", "steps:\n  dump:\n      uses: exec\n    command: [x]\n", 4, 5,
			"This line is indented 4 spaces, between the levels of the lines above it (2 and 6)"},
		{"after a block scalar", "steps:\n  q:\n    uses: sql\n    sql: |\n      select 1\n        from t\n      where x\n   timeout: 1m\n", 8, 4,
			"This line is indented 3 spaces, between the levels of the lines above it (2 and 4)"},
		{"after a flow list", "steps:\n  dump:\n    uses: exec\n    command: [a,\n  b, c]\n   timeout: 1m\n", 6, 4,
			"This line is indented 3 spaces, between the levels of the lines above it (2 and 4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := Parse([]byte(tt.src), "plan.yaml")
			if len(diags) != 1 || diags[0].Summary != "Invalid YAML" {
				t.Fatalf("diags = %v", diags)
			}
			d := diags[0]
			if d.Subject.Start.Line != tt.line || d.Subject.Start.Column != tt.col || !strings.HasPrefix(d.Detail, tt.detail) {
				t.Errorf("%d:%d %q, want %d:%d %q", d.Subject.Start.Line, d.Subject.Start.Column, d.Detail, tt.line, tt.col, tt.detail)
			}
			checkRange(t, f, *d.Subject)
			if got := text(f, *d.Subject); got != strings.TrimLeft(strings.Split(tt.src, "\n")[tt.line-1], " ") {
				t.Errorf("underlines %q", got)
			}
		})
	}
}
