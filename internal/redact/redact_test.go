package redact

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

func TestStringAndValue(t *testing.T) {
	r := New("hunter2", "")
	r.Add("hunter22-long")
	if got := r.String("pw=hunter22-long and hunter2"); got != "pw=(sensitive) and (sensitive)" {
		t.Fatalf("String: %q", got)
	}
	v := map[string]any{"a": []any{"x hunter2", int64(3)}, "hunter2": true}
	want := map[string]any{"a": []any{"x (sensitive)", int64(3)}, "hunter2": true} // keys are structure
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

// A password registered once is hidden in every form it is written in:
// percent-encoded (either hex case), libpq-escaped, Go- and JSON-quoted.
func TestEveryFormIsRedacted(t *testing.T) {
	const pw = `p@ss/w0rd:#?&='\ "é<`
	r := New(pw)
	for _, shown := range []string{
		`postgres://app:p%40ss%2Fw0rd%3A%23%3F%26%3D%27%5C%20%22%C3%A9%3C@db/x`,
		`postgres://app:p%40ss%2fw0rd%3a%23%3f%26%3d%27%5c%20%22%c3%a9%3c@db/x`,
		`host=db password='p@ss/w0rd:#?&=\'\\ "é<'`,
		`"p@ss/w0rd:#?&='\\ \"é<"`,
		`{"pw":"p@ss/w0rd:#?\u0026='\\ \"é\u003c"}`,
		`postgres://app:p%40ss%2Fw0rd%3A%23%3F%26%3D'%5C%20%22%C3%A9%3C@db/x`,
		`{"pw":"p@ss/w0rd:#?&='\\ \"é<"}`,
	} {
		got := r.String(shown)
		if !strings.Contains(got, Mask) {
			t.Errorf("not redacted: %s", got)
		}
		for _, part := range []string{"w0rd", "p%40ss", "p@ss"} {
			if strings.Contains(got, part) {
				t.Errorf("%q still shows %q: %s", shown, part, got)
			}
		}
	}
}

// Cut redacts before it cuts: a secret the limit falls inside is hidden
// whole, not shown up to the cut.
func TestCutRedactsFirst(t *testing.T) {
	secret := strings.Repeat("s3cr3t", 7)
	r := New(secret)
	text := strings.Repeat("x", 10) + secret + strings.Repeat("y", 400)
	got := r.Cut(text, 30)
	if strings.Contains(got, "s3cr") || !strings.HasPrefix(got, strings.Repeat("x", 10)+Mask) || !strings.HasSuffix(got, "…") {
		t.Fatalf("Cut = %q", got)
	}
	if got := r.Cut("héllo", 2); got != "h…" {
		t.Fatalf("cut inside a rune: %q", got)
	}
}

// A short secret is replaced only where it stands alone: it must not eat
// into words (a sensitive "out" and the output key "stdout").
func TestShortSecretsStandAlone(t *testing.T) {
	r := New("out", "x9")
	for in, want := range map[string]string{
		"stdout: out":          "stdout: (sensitive)",
		"out,out;(out)":        "(sensitive),(sensitive);((sensitive))",
		"layout x9 x99 ax9 x9": "layout (sensitive) x99 ax9 (sensitive)",
		"é-out-é":              "é-(sensitive)-é",
	} {
		if got := r.String(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	out := r.Value(map[string]any{"stdout": "out\n", "out": "x"})
	if !reflect.DeepEqual(out, map[string]any{"stdout": "(sensitive)\n", "out": "x"}) {
		t.Errorf("Value: %#v", out)
	}
}

// Forms a secret takes when echoed by other programs: JSON with "\/" and
// \u escapes (PHP, Python), base64 alone or inside a Basic auth header.
func TestEscapedAndEncodedForms(t *testing.T) {
	const token = "Tk7f3Q/ab+c=ä€𝄞"
	r := New(token)
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + token))
	for _, shown := range []string{
		`{"error":"bad token Tk7f3Q\/ab+c=\u00e4\u20ac\ud834\udd1e"}`,
		`{"error":"bad token Tk7f3Q\/ab+c=\u00E4\u20AC\uD834\uDD1E"}`,
		`{"error":"bad token Tk7f3Q/ab+c=ä€𝄞"}`,
		"Authorization: Basic " + basic,
		"token=" + base64.URLEncoding.EncodeToString([]byte(token)),
		"token=" + base64.RawStdEncoding.EncodeToString([]byte(token)),
	} {
		got := r.String(shown)
		if !strings.Contains(got, Mask) || strings.Contains(got, "Tk7f3Q") {
			t.Errorf("not redacted: %s -> %s", shown, got)
		}
	}
}
