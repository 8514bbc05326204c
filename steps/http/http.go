package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/planrun/planrun/steps/steptype"
)

// HTTPArgs are the arguments of http.
//
// The request body is given one of two ways. `json = { maintenance = true }`
// encodes any HCL (or YAML) value and sends it as application/json: it reads
// well in both syntaxes and needs no jsonencode. `body = "..."` sends a string
// as is; when no Content-Type header is given its type is guessed, so that
// `body = jsonencode({...})` (the Terraform habit) is sent as JSON too.
//
// The per-request limit is `request_timeout`, not `timeout`: `timeout` is the
// step-level argument every step type shares (it bounds the whole attempt).
type HTTPArgs struct {
	URL                string            `hcl:"url" doc:"The URL to request (http or https)."`
	Method             string            `hcl:"method,optional" doc:"The HTTP method (default GET)."`
	Headers            map[string]string `hcl:"headers,optional" doc:"Request headers; their values are never shown in outputs or errors."`
	Body               string            `hcl:"body,optional" doc:"A request body sent as is; without a Content-Type header it is sent as application/json when it is valid JSON, else as text/plain."`
	JSON               cty.Value         `hcl:"json,optional" doc:"Any value, sent JSON-encoded as application/json (unless a Content-Type header says otherwise); give body or json, not both."`
	RequestTimeout     string            `hcl:"request_timeout,optional" doc:"How long the request may take, response body included (default \"30s\"); the step's timeout also applies."`
	FailOnErrorStatus  *bool             `hcl:"fail_on_error_status,optional" doc:"A status of 400 or more fails the step (default true); set false to judge the status in assertions."`
	InsecureSkipVerify bool              `hcl:"insecure_skip_verify,optional" doc:"Accept any TLS certificate (self-signed test servers only)."`
	KeepBody           *bool             `hcl:"keep_body,optional" doc:"Keep the response body in output.body and output.json (default true); false for an API that answers with secrets, such as Heroku's config-vars (every config var of the app), so that they are neither recorded nor reported. An error's message is still read from it."`
	RetryOn            []int             `hcl:"retry_on,optional" doc:"Statuses that mean try again, such as [429, 500, 502, 503, 504]; when given, a request that got no response (connection refused or reset, request_timeout) is retried too. Only for requests that are safe to repeat."`
	RetryAttempts      int               `hcl:"retry_attempts,optional" doc:"Attempts in all when retry_on is given (default 5)."`
	RetryBackoff       string            `hcl:"retry_backoff,optional" doc:"The wait after the first failed attempt (default \"1s\"), doubling after each one up to 30s; a Retry-After header of up to a minute is honoured instead."`
}

// HTTPOutput is the output of http.
type HTTPOutput struct {
	Status    int               `json:"status" doc:"The response status code, such as 200."`
	Headers   map[string]string `json:"headers" doc:"Response headers by canonical name (Content-Type); repeated headers are joined with \", \"."`
	Body      string            `json:"body" doc:"The response body as text (at most 1 MiB)."`
	Truncated bool              `json:"truncated" doc:"The response body was longer than 1 MiB and was cut."`
	JSON      any               `json:"json" doc:"The response body parsed as JSON when it is JSON, else null."`
	Seconds   float64           `json:"seconds" doc:"How long the request took, body included (the last attempt)."`
	Attempts  int               `json:"attempts" doc:"How many times the request was sent (more than 1 after retries on retry_on)."`
}

const (
	defaultRequestTimeout = 30 * time.Second
	defaultRetryAttempts  = 5
	defaultRetryBackoff   = time.Second
	maxRetryBackoff       = 30 * time.Second
	maxRetryAfter         = time.Minute
)

var Type = steptype.Def[HTTPArgs, HTTPOutput]{
	Summary: "Sends an HTTP request (JSON helpers included) and captures the status, headers and body; retries transient failures when asked (retry_on).",
	Fn:      runHTTP,
	ArgChecks: map[string]func(string) error{
		"request_timeout": steptype.CheckDuration,
		"retry_backoff":   steptype.CheckDuration,
	},
}

// request is one prepared request, sent as many times as its attempts allow.
type request struct {
	method, url, where string
	headers            map[string]string
	body               []byte // nil: no body
	contentType        string
	timeout            time.Duration
	client             *http.Client
}

func runHTTP(ctx context.Context, env *steptype.Env, a *HTTPArgs) (*HTTPOutput, error) {
	method := strings.ToUpper(a.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse errors quote the whole URL, which may carry a token.
		return nil, errors.New("http: url must be an absolute http:// or https:// URL")
	}
	// Errors name the request by method and this form of the URL: no
	// password, no query string (API keys travel there too).
	where := method + " " + showURL(u)
	registerHeaderSecrets(env, u, a.Headers)

	timeout := defaultRequestTimeout
	if a.RequestTimeout != "" {
		timeout, err = steptype.ParseDuration(a.RequestTimeout, false)
		if err != nil {
			return nil, fmt.Errorf("http: request_timeout: %w", err)
		}
	}
	attempts, backoff := 1, defaultRetryBackoff
	if len(a.RetryOn) > 0 {
		attempts = defaultRetryAttempts
		if a.RetryAttempts != 0 {
			attempts = a.RetryAttempts
		}
		if attempts < 1 {
			return nil, fmt.Errorf("http: retry_attempts must be at least 1, not %d", attempts)
		}
		if a.RetryBackoff != "" {
			if backoff, err = steptype.ParseDuration(a.RetryBackoff, true); err != nil {
				return nil, fmt.Errorf("http: retry_backoff: %w", err)
			}
		}
	}
	body, contentType, err := requestBody(a)
	if err != nil {
		return nil, fmt.Errorf("http %s: %w", where, err)
	}

	// A transport of our own, so that insecure_skip_verify stays with this
	// request; closed at the end so that no idle connection outlives the step.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for explicitly
	}
	defer tr.CloseIdleConnections()
	req := &request{method: method, url: u.String(), where: where, headers: a.Headers, body: body,
		contentType: contentType, timeout: timeout, client: &http.Client{Transport: tr}}

	acted := false // an earlier attempt may have been acted on (a 503 half way)
	for attempt := 1; ; attempt++ {
		out, transient, err := req.send(ctx, env, a)
		if out != nil {
			out.Attempts = attempt
		}
		if !transient || attempt == attempts || ctx.Err() != nil {
			if transient && out != nil && !failOnError(a) {
				return out, nil // the last answer, for the assertions to judge
			}
			if r, ok := errors.AsType[*steptype.Refusal](err); ok && acted {
				err = r.Err // refused now, but not necessarily before
			}
			return out, err
		}
		acted = acted || !steptype.IsRefusal(err)
		wait := min(backoff<<(attempt-1), maxRetryBackoff)
		if out != nil {
			if ra, ok := retryAfter(out.Headers["Retry-After"]); ok {
				wait = ra
			}
		}
		env.Logf("%s: attempt %d of %d: %s; retrying in %s", where, attempt, attempts, env.Cut(err.Error(), 300), wait)
		if perr := steptype.Pause(ctx, wait); perr != nil {
			return out, fmt.Errorf("%w (cancelled while waiting to retry)", err)
		}
	}
}

// send sends the request once. transient says that the failure is worth
// another attempt: a status in retry_on, or no response at all.
func (r *request) send(ctx context.Context, env *steptype.Env, a *HTTPArgs) (out *HTTPOutput, transient bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(rctx, r.method, r.url, body)
	if err != nil {
		return nil, false, fmt.Errorf("http %s: %w", r.where, scrubURLError(err))
	}
	for k, v := range r.headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v // net/http ignores a Host entry in req.Header
			continue
		}
		req.Header.Set(k, v)
	}
	if r.contentType != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "planrun")
	}

	retrying := len(a.RetryOn) > 0
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		sent := !notSent(err, req.URL.String())
		err = requestError(ctx, rctx, r.where, r.timeout, err)
		if !sent {
			err = steptype.Refused(err)
		}
		return nil, retrying && ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, steptype.MaxCapture+1))
	if err != nil {
		return nil, retrying && ctx.Err() == nil, requestError(ctx, rctx, r.where, r.timeout, fmt.Errorf("reading the response body: %w", err))
	}
	out = &HTTPOutput{Status: resp.StatusCode, Headers: map[string]string{}}
	if len(raw) > steptype.MaxCapture {
		raw, out.Truncated = raw[:steptype.MaxCapture], true
		env.Logf("%s: the response body is longer than 1 MiB; output.body holds the first 1 MiB", r.where)
	}
	out.Seconds = time.Since(start).Seconds()
	out.Body = string(raw)
	for k, vs := range resp.Header {
		out.Headers[k] = strings.Join(vs, ", ")
	}
	if !out.Truncated {
		out.JSON = parseResponseJSON(raw)
	}
	parsed := out.JSON
	if a.KeepBody != nil && !*a.KeepBody {
		out.Body, out.JSON = "", nil
	}
	transient = slices.Contains(a.RetryOn, resp.StatusCode)
	if resp.StatusCode < 400 || (!failOnError(a) && !transient) {
		return out, false, nil
	}
	err = fmt.Errorf("http %s: status %d%s", r.where, resp.StatusCode, errorExcerpt(env, raw, parsed))
	if resp.StatusCode < 500 {
		// A client error (429 included): the server says it did not do it
		// (RFC 9110 §15.5), so there is nothing for a rollback to undo.
		err = steptype.Refused(err)
	}
	return out, transient, err
}

func failOnError(a *HTTPArgs) bool { return a.FailOnErrorStatus == nil || *a.FailOnErrorStatus }

// retryAfter reads a Retry-After header given in seconds (rate limits use
// that form), when it is not longer than maxRetryAfter.
func retryAfter(h string) (time.Duration, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 || time.Duration(n)*time.Second > maxRetryAfter {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// requestBody returns the body to send and the Content-Type to give it when
// the user gave none.
func requestBody(a *HTTPArgs) ([]byte, string, error) {
	// An absent json argument is cty.NilVal, which is null too.
	v, _ := a.JSON.UnmarkDeep()
	switch {
	case !v.IsNull() && a.Body != "":
		return nil, "", errors.New("give body or json, not both")
	case !v.IsNull():
		raw, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, "", fmt.Errorf("json: cannot encode the value: %w", err)
		}
		return raw, "application/json", nil
	case a.Body != "":
		if json.Valid([]byte(a.Body)) {
			return []byte(a.Body), "application/json", nil
		}
		return []byte(a.Body), "text/plain; charset=utf-8", nil
	}
	return nil, "", nil
}

// requestError says why a request failed: the step was cancelled or timed
// out (ctx), request_timeout passed (rctx), or the network said no.
func requestError(ctx, rctx context.Context, where string, timeout time.Duration, err error) error {
	err = scrubURLError(err)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("http %s: %w", where, ctx.Err())
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("http %s: no complete response within request_timeout (%s): %w", where, timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("http %s: %w", where, err)
}

// scrubURLError drops the *url.Error wrapper, whose message repeats the full
// URL (query string and all); the caller names the request itself.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// showURL is the URL as errors show it: without password or query string.
func showURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.Fragment = ""
	q := ""
	if c.RawQuery != "" {
		c.RawQuery, q = "", "?…"
	}
	return c.String() + q
}

// registerHeaderSecrets hides credentials wherever they might surface (a
// server that echoes the request in an error body, a debug log): the URL's
// password and the values of headers that carry credentials.
func registerHeaderSecrets(env *steptype.Env, u *url.URL, headers map[string]string) {
	if env == nil || env.Secrets == nil {
		return
	}
	if p, ok := u.User.Password(); ok {
		env.Secrets(p)
	}
	// Values shorter than this are not credentials, and masking "1" or "on"
	// everywhere would hide too much.
	const minSecret = 6
	for k, v := range headers {
		if !credentialHeader(k) || len(v) < minSecret {
			continue
		}
		env.Secrets(v)
		// "Bearer abc...": the credential alone too, for servers that echo only it.
		if _, cred, ok := strings.Cut(v, " "); ok && len(cred) >= minSecret {
			env.Secrets(cred)
		}
	}
}

func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, word := range []string{"auth", "cookie", "token", "key", "secret", "password", "session"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// parseResponseJSON returns the body parsed as JSON, or nil when it is not JSON.
// Numbers stay exact (json.Number), so that large ids survive.
func parseResponseJSON(raw []byte) any {
	if !json.Valid(raw) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return v
}

// notSent says whether a request failed before it left: the connection to
// its own URL (not a redirect's) could not be made, so the server cannot
// have acted on it.
func notSent(err error, reqURL string) bool {
	uerr, ok := errors.AsType[*url.Error](err)
	if !ok || uerr.URL != reqURL {
		return false
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "dial"
}

// errorExcerpt is what an error response says, for the error message:
// the "message" of a JSON error body (Heroku's {"id": ..., "message": ...},
// and many APIs' {"error": {"message": ...}} or {"error": "..."}) with its
// id, else the start of the body.
func errorExcerpt(env *steptype.Env, raw []byte, parsed any) string {
	if obj, ok := parsed.(map[string]any); ok {
		msg, _ := obj["message"].(string)
		if msg == "" {
			switch e := obj["error"].(type) {
			case string:
				msg = e
			case map[string]any:
				msg, _ = e["message"].(string)
			}
		}
		if msg != "" {
			if id, ok := obj["id"].(string); ok && id != "" {
				msg += " (" + id + ")"
			}
			return ": " + env.Cut(strings.TrimSpace(msg), 1000)
		}
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(raw), ""))
	if s == "" {
		return ""
	}
	return ": " + env.Cut(s, 200)
}
