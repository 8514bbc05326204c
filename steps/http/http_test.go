package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// httpReceived is what a test server saw of one request.
type httpReceived struct {
	Method string
	Header http.Header
	Body   string
	Query  string
}

// httpRecordingServer answers every request with status and body, and keeps what
// it httpReceived.
func httpRecordingServer(t *testing.T, status int, contentType, body string) (*httptest.Server, func() []httpReceived) {
	t.Helper()
	var mu sync.Mutex
	var got []httpReceived
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, httpReceived{Method: r.Method, Header: r.Header.Clone(), Body: string(b), Query: r.URL.RawQuery})
		mu.Unlock()
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []httpReceived {
		mu.Lock()
		defer mu.Unlock()
		return append([]httpReceived(nil), got...)
	}
}

func TestHTTPGetJSON(t *testing.T) {
	srv, got := httpRecordingServer(t, 200, "application/json", `{"maintenance": true, "id": 9007199254740993}`)
	env, _ := steptest.SecretsEnv()
	out, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL + "/apps/demo"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != 200 || out.Headers["Content-Type"] != "application/json" || out.Headers["X-Multi"] != "a, b" {
		t.Errorf("status %d, headers %v", out.Status, out.Headers)
	}
	obj, ok := out.JSON.(map[string]any)
	if !ok || obj["maintenance"] != true {
		t.Fatalf("json = %#v", out.JSON)
	}
	// Large ids stay exact rather than going through float64.
	if obj["id"] != json.Number("9007199254740993") {
		t.Errorf("id = %#v", obj["id"])
	}
	if r := got(); len(r) != 1 || r[0].Method != "GET" || r[0].Header.Get("User-Agent") != "planrun" {
		t.Errorf("server saw %+v", r)
	}
	if out.Seconds <= 0 {
		t.Errorf("seconds = %v", out.Seconds)
	}
}

func TestHTTPNotJSONBody(t *testing.T) {
	srv, _ := httpRecordingServer(t, 200, "text/plain", "OK")
	env, _ := steptest.SecretsEnv()
	out, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if out.Body != "OK" || out.JSON != nil {
		t.Errorf("body %q, json %#v", out.Body, out.JSON)
	}
}

func TestHTTPPatchJSONReachesServerWithHeaders(t *testing.T) {
	srv, got := httpRecordingServer(t, 200, "application/json", `{"maintenance": true}`)
	env, secrets := steptest.SecretsEnv()
	_, err := runHTTP(context.Background(), env, &HTTPArgs{
		URL:    srv.URL + "/apps/demo",
		Method: "patch",
		Headers: map[string]string{
			"Authorization": "Bearer s3cret-token",
			"Accept":        "application/vnd.heroku+json; version=3",
		},
		JSON: cty.ObjectVal(map[string]cty.Value{"maintenance": cty.True}),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := got()
	if len(r) != 1 {
		t.Fatalf("server saw %d requests", len(r))
	}
	if r[0].Method != "PATCH" || r[0].Body != `{"maintenance":true}` {
		t.Errorf("method %s, body %s", r[0].Method, r[0].Body)
	}
	h := r[0].Header
	if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer s3cret-token" || h.Get("Accept") != "application/vnd.heroku+json; version=3" {
		t.Errorf("headers %v", h)
	}
	s := strings.Join(secrets(), "|")
	if !strings.Contains(s, "Bearer s3cret-token") || !strings.Contains(s, "s3cret-token") || strings.Contains(s, "vnd.heroku") {
		t.Errorf("secrets registered: %q", s)
	}
}

func TestHTTPBodyContentType(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		headers map[string]string
		want    string
	}{
		{"json text", `{"maintenance":false}`, nil, "application/json"},
		{"plain text", "hello", nil, "text/plain; charset=utf-8"},
		{"explicit header wins", `{"a":1}`, map[string]string{"content-type": "application/merge-patch+json"}, "application/merge-patch+json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := httpRecordingServer(t, 200, "", "")
			env, _ := steptest.SecretsEnv()
			if _, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL, Method: "POST", Body: tc.body, Headers: tc.headers}); err != nil {
				t.Fatal(err)
			}
			r := got()[0]
			if ct := r.Header.Get("Content-Type"); ct != tc.want || r.Body != tc.body {
				t.Errorf("content type %q, body %q", ct, r.Body)
			}
		})
	}
}

func TestHTTPErrorStatusFails(t *testing.T) {
	srv, _ := httpRecordingServer(t, 500, "application/json", `{"error":"database on fire"}`+strings.Repeat("x", 500))
	env, _ := steptest.SecretsEnv()
	out, err := runHTTP(context.Background(), env, &HTTPArgs{
		URL:     srv.URL + "/apps/demo?api_key=k3y-in-query",
		Headers: map[string]string{"Authorization": "Bearer s3cret-token"},
	})
	if err == nil {
		t.Fatal("want an error for status 500")
	}
	msg := err.Error()
	for _, want := range []string{"GET", "/apps/demo", "status 500", "database on fire"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// Neither the request headers nor the query string appear in the error.
	for _, secret := range []string{"s3cret-token", "k3y-in-query"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
	if len(msg) > 400 {
		t.Errorf("error is %d bytes: the body excerpt is not cut", len(msg))
	}
	if out == nil || out.Status != 500 {
		t.Errorf("output = %+v", out)
	}
}

func TestHTTPErrorStatusAllowed(t *testing.T) {
	srv, _ := httpRecordingServer(t, 500, "application/json", `{"error":"boom"}`)
	env, _ := steptest.SecretsEnv()
	no := false
	out, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL, FailOnErrorStatus: &no})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != 500 || out.JSON.(map[string]any)["error"] != "boom" {
		t.Errorf("output = %+v", out)
	}
}

func TestHTTPRequestTimeout(t *testing.T) {
	srv := steptest.HangingHTTP(t)
	env, _ := steptest.SecretsEnv()
	start := time.Now()
	_, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL, RequestTimeout: "100ms"})
	if err == nil || !strings.Contains(err.Error(), "request_timeout (100ms)") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestHTTPContextCancelled(t *testing.T) {
	srv := steptest.HangingHTTP(t)
	env, _ := steptest.SecretsEnv()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := runHTTP(ctx, env, &HTTPArgs{URL: srv.URL})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestHTTPBodyCapped(t *testing.T) {
	big := `"` + strings.Repeat("a", steptype.MaxCapture) + `"`
	srv, _ := httpRecordingServer(t, 200, "application/json", big)
	env, _ := steptest.SecretsEnv()
	out, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Body) != steptype.MaxCapture || !out.Truncated || out.JSON != nil {
		t.Errorf("body %d bytes, truncated %v, json nil %v", len(out.Body), out.Truncated, out.JSON == nil)
	}
}

func TestHTTPInsecureSkipVerify(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	env, _ := steptest.SecretsEnv()
	if _, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate accepted by default: err = %v", err)
	}
	out, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL, InsecureSkipVerify: true})
	if err != nil || out.Body != "ok" {
		t.Errorf("insecure_skip_verify: %v, %+v", err, out)
	}
}

func TestHTTPBadArguments(t *testing.T) {
	env, secrets := steptest.SecretsEnv()
	for _, tc := range []struct {
		args HTTPArgs
		want string
	}{
		{HTTPArgs{URL: "ftp://example.com/x"}, "absolute http:// or https:// URL"},
		{HTTPArgs{URL: "example.com/x"}, "absolute http:// or https:// URL"},
		{HTTPArgs{URL: "http://127.0.0.1:1", RequestTimeout: "soon"}, `request_timeout: "soon" is not a duration such as "30s"`},
		{HTTPArgs{URL: "http://127.0.0.1:1", Body: "x", JSON: cty.True}, "give body or json, not both"},
		{HTTPArgs{URL: "http://127.0.0.1:1", Method: "GET NOW"}, "invalid method"},
	} {
		_, err := runHTTP(context.Background(), env, &tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	// The URL's password is a secret even when the request goes nowhere.
	_, err := runHTTP(context.Background(), env, &HTTPArgs{URL: "http://user:pa55word@127.0.0.1:1/x"})
	if err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Errorf("err = %v", err)
	}
	if s := secrets(); len(s) == 0 || s[len(s)-1] != "pa55word" {
		t.Errorf("secrets = %q", s)
	}
}

// A request that never left (nothing listens) is a refusal: its rollback
// has nothing to undo. One the server answered, even with an error, or
// one that timed out waiting, is not.
func TestHTTPRefusalOnlyWhenNotSent(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	env, _ := steptest.SecretsEnv()
	if _, err := runHTTP(context.Background(), env, &HTTPArgs{URL: url, Method: "POST"}); err == nil || !steptype.IsRefusal(err) {
		t.Errorf("connection refused: %v (refusal %v)", err, steptype.IsRefusal(err))
	}
	srv, _ := httpRecordingServer(t, 500, "text/plain", "broke half way")
	if _, err := runHTTP(context.Background(), env, &HTTPArgs{URL: srv.URL, Method: "POST"}); err == nil || steptype.IsRefusal(err) {
		t.Errorf("answered 500: %v (refusal %v)", err, steptype.IsRefusal(err))
	}
	hang := steptest.HangingHTTP(t)
	timeout := "200ms"
	if _, err := runHTTP(context.Background(), env, &HTTPArgs{URL: hang.URL, Method: "POST", RequestTimeout: timeout}); err == nil || steptype.IsRefusal(err) {
		t.Errorf("timed out after sending: %v (refusal %v)", err, steptype.IsRefusal(err))
	}
}

// sequenceServer answers the requests it gets with statuses in turn (the
// last one again once they run out), a Heroku-style error body for errors.
func sequenceServer(t *testing.T, statuses ...int) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		st := statuses[min(len(bodies), len(statuses))-1]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if st == 429 {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(st)
		if st >= 400 {
			io.WriteString(w, `{"id":"invalid_params","message":"Cannot overwrite attachment values DATABASE_URL."}`)
			return
		}
		io.WriteString(w, `{"maintenance":false}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}

var transient = []int{429, 500, 502, 503, 504}

func TestHTTPRetriesTransientStatuses(t *testing.T) {
	srv, got := sequenceServer(t, 503, 429, 200)
	var logs []string
	env := &steptype.Env{Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	args := &HTTPArgs{URL: srv.URL + "/apps/shop", Method: "PATCH", JSON: cty.ObjectVal(map[string]cty.Value{"maintenance": cty.False}),
		RetryOn: transient, RetryBackoff: "10ms"}
	out, err := runHTTP(context.Background(), env, args)
	if err != nil || out.Status != 200 || out.Attempts != 3 {
		t.Fatalf("out %+v, err %v", out, err)
	}
	// The body is sent whole every time.
	if b := got(); len(b) != 3 || b[0] != `{"maintenance":false}` || b[2] != b[0] {
		t.Errorf("bodies: %q", b)
	}
	if len(logs) != 2 || !strings.Contains(logs[0], "attempt 1 of 5: http PATCH "+srv.URL+"/apps/shop: status 503") {
		t.Errorf("logs: %q", logs)
	}
}

func TestHTTPGivesUpAfterRetryAttempts(t *testing.T) {
	srv, got := sequenceServer(t, 503)
	out, err := runHTTP(context.Background(), nil, &HTTPArgs{URL: srv.URL, RetryOn: transient, RetryAttempts: 3, RetryBackoff: "1ms"})
	if err == nil || out == nil || out.Attempts != 3 || len(got()) != 3 || steptype.IsRefusal(err) {
		t.Fatalf("out %+v, err %v, requests %d", out, err, len(got()))
	}
	// Without retry_on a request is sent once.
	srv2, got2 := sequenceServer(t, 503, 200)
	if _, err := runHTTP(context.Background(), nil, &HTTPArgs{URL: srv2.URL}); err == nil || len(got2()) != 1 {
		t.Errorf("sent %d times: %v", len(got2()), err)
	}
}

// A 4xx is the server's refusal: not retried, reported with its message,
// and marked as a refusal so that the rollback does not run.
func TestHTTPClientErrorIsReportedAndNotRetried(t *testing.T) {
	srv, got := sequenceServer(t, 422, 200)
	_, err := runHTTP(context.Background(), nil, &HTTPArgs{URL: srv.URL + "/apps/shop/config-vars", Method: "PATCH", RetryOn: transient, RetryBackoff: "1ms"})
	want := "http PATCH " + srv.URL + "/apps/shop/config-vars: status 422: Cannot overwrite attachment values DATABASE_URL. (invalid_params)"
	if err == nil || err.Error() != want || len(got()) != 1 || !steptype.IsRefusal(err) {
		t.Fatalf("err %v (refusal %v), requests %d; want %s", err, steptype.IsRefusal(err), len(got()), want)
	}
	// After a 503 the server may have acted: a later 4xx is no refusal.
	srv2, _ := sequenceServer(t, 503, 409)
	_, err = runHTTP(context.Background(), nil, &HTTPArgs{URL: srv2.URL, Method: "POST", RetryOn: transient, RetryBackoff: "1ms"})
	if err == nil || !strings.Contains(err.Error(), "status 409") || steptype.IsRefusal(err) {
		t.Errorf("503 then 409: %v (refusal %v)", err, steptype.IsRefusal(err))
	}
}

func TestHTTPRetriesWhenNothingAnswers(t *testing.T) {
	// A port that refuses at first and answers later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	go func() {
		time.Sleep(150 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return // the port was taken meanwhile: the test then fails on its own
		}
		srv.Listener = l
		srv.Start()
	}()
	t.Cleanup(func() { time.Sleep(200 * time.Millisecond); srv.Close() })
	out, err := runHTTP(context.Background(), nil, &HTTPArgs{URL: "http://" + addr + "/", RetryOn: transient, RetryAttempts: 6, RetryBackoff: "50ms"})
	if err != nil || out.Body != "ok" || out.Attempts < 2 {
		t.Fatalf("out %+v, err %v", out, err)
	}
}

func TestHTTPRetryStopsWithTheContext(t *testing.T) {
	srv, got := sequenceServer(t, 503)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := runHTTP(ctx, nil, &HTTPArgs{URL: srv.URL, RetryOn: transient, RetryBackoff: "10s"})
	if err == nil || time.Since(start) > 5*time.Second || len(got()) != 1 || !strings.Contains(err.Error(), "cancelled while waiting to retry") {
		t.Fatalf("err %v after %s, %d requests", err, time.Since(start), len(got()))
	}
}

// keep_body = false: an answer full of secrets (Heroku's config-vars) stays
// out of the output, while an error still says the API's message.
func TestHTTPKeepBodyFalse(t *testing.T) {
	no := false
	srv, _ := httpRecordingServer(t, 200, "application/json", `{"SECRET_KEY_BASE":"sk-live-123456"}`)
	out, err := runHTTP(context.Background(), nil, &HTTPArgs{URL: srv.URL, KeepBody: &no})
	if err != nil || out.Status != 200 || out.Body != "" || out.JSON != nil {
		t.Fatalf("out %+v, err %v", out, err)
	}
	srv2, _ := sequenceServer(t, 422)
	out, err = runHTTP(context.Background(), nil, &HTTPArgs{URL: srv2.URL, KeepBody: &no})
	if err == nil || !strings.Contains(err.Error(), "Cannot overwrite attachment values DATABASE_URL.") || out.Body != "" {
		t.Fatalf("out %+v, err %v", out, err)
	}
}
