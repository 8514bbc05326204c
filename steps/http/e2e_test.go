package http_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/planrun/planrun/internal/e2etest"
	"github.com/planrun/planrun/internal/engine"
	"github.com/planrun/planrun/internal/event"
)

// appAPI is a toy platform API: an app whose maintenance mode can be read
// and PATCHed with a bearer token, and an endpoint that fails and echoes the
// request's Authorization header (as careless APIs do).
type appAPI struct {
	token string

	mu           sync.Mutex
	maintenance  bool
	contentTypes []string
}

func (a *appAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/broken" {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "internal error handling request with %s", r.Header.Get("Authorization"))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+a.token {
		http.Error(w, `{"id":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.Method {
	case http.MethodPatch:
		a.contentTypes = append(a.contentTypes, r.Header.Get("Content-Type"))
		var body struct{ Maintenance bool }
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, `{"id":"bad_request"}`, http.StatusBadRequest)
			return
		}
		a.maintenance = body.Maintenance
	case http.MethodGet:
	default:
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name": "demo", "maintenance": %t}`, a.maintenance)
}

// state is the app's maintenance mode and the Content-Types of the PATCHes.
func (a *appAPI) state() (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maintenance, strings.Join(a.contentTypes, ",")
}

const httpPlan = `
plan "maintenance" { on_failure = "rollback" }

variable "base" { type = string }
variable "token" {
  type      = string
  sensitive = true
}

step "maintenance_on" {
  uses    = "http"
  method  = "PATCH"
  url     = "${var.base}/apps/demo"
  headers = { Authorization = "Bearer ${var.token}", Accept = "application/vnd.heroku+json; version=3" }
  json    = { maintenance = true }
  assert { that = "output.status == 200" }
  assert { that = "output.json.maintenance == true" }
  rollback {
    uses    = "http"
    method  = "PATCH"
    url     = "${var.base}/apps/demo"
    headers = { Authorization = "Bearer ${var.token}" }
    body    = jsonencode({ maintenance = false })
  }
}

step "read_back" {
  uses    = "http"
  url     = "${var.base}/apps/${step.maintenance_on.output.json.name}"
  headers = { Authorization = "Bearer ${var.token}" }
  assert { that = "output.json.maintenance" }
}

step "without_token" {
  uses                 = "http"
  url                  = "${var.base}/apps/demo"
  fail_on_error_status = false
  request_timeout      = "5s"
  depends_on           = [step.maintenance_on]
  assert { that = "output.status == 401 && output.json.id == 'unauthorized'" }
}
%s`

func TestHTTPEndToEnd(t *testing.T) {
	api := &appAPI{token: "tok-1234567890"}
	srv := httptest.NewServer(api)
	defer srv.Close()

	res, _ := e2etest.Apply(t, "plan.hcl", fmt.Sprintf(httpPlan, ""), engine.Options{}, "base="+srv.URL, "token="+api.token)
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	on := e2etest.OutputOf(t, res, "step.maintenance_on")
	if on["status"] != int64(200) || on["json"].(map[string]any)["maintenance"] != true {
		t.Errorf("maintenance_on output: %v", on)
	}
	if got := e2etest.OutputOf(t, res, "step.without_token")["status"]; got != int64(401) {
		t.Errorf("without_token status = %v", got)
	}
	if on, types := api.state(); !on || types != "application/json" {
		t.Errorf("maintenance %v, content types %v", on, types)
	}
}

func TestHTTPEndToEndFailureRollsBackAndHidesToken(t *testing.T) {
	api := &appAPI{token: "tok-1234567890"}
	srv := httptest.NewServer(api)
	defer srv.Close()

	broken := `
step "broken" {
  uses       = "http"
  method     = "POST"
  url        = "${var.base}/broken"
  headers    = { Authorization = "Bearer ${var.token}" }
  depends_on = [step.read_back, step.without_token]
}`
	res, events := e2etest.Apply(t, "plan.hcl", fmt.Sprintf(httpPlan, broken), engine.Options{}, "base="+srv.URL, "token="+api.token)
	if res.Status != event.StatusFailed {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	sr := res.Steps["step.broken"]
	if sr.Status != event.StatusFailed || !strings.Contains(sr.Err.Error(), "http POST "+srv.URL+"/broken: status 500") {
		t.Errorf("broken: %s, %v", sr.Status, sr.Err)
	}
	// The rollback (body = jsonencode(...), no Content-Type given) turned
	// maintenance off, sent as JSON.
	if rb := res.Steps["step.maintenance_on"].Rollback; rb == nil || rb.Status != event.StatusRolledBack {
		t.Fatalf("rollback: %+v", rb)
	}
	if on, types := api.state(); on || types != "application/json,application/json" {
		t.Errorf("maintenance %v, content types %v", on, types)
	}
	// The server echoed the token into its error body: the events (what is
	// shown and recorded) must not carry it.
	raw, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), api.token) {
		t.Errorf("the token leaked into the events: %s", raw)
	}
	if !strings.Contains(string(raw), "internal error handling request with (sensitive)") {
		t.Errorf("events do not show the redacted error body: %s", raw)
	}
}

// YAML plans give json a map directly: no jsonencode, no template.
func TestHTTPEndToEndYAML(t *testing.T) {
	api := &appAPI{token: "tok-1234567890"}
	srv := httptest.NewServer(api)
	defer srv.Close()

	src := `
plan: { name: maintenance-yaml }
variables:
  base: { type: string }
  token: { type: string, sensitive: true }
steps:
  maintenance_on:
    uses: http
    method: PATCH
    url: "${var.base}/apps/demo"
    headers: { Authorization: "Bearer ${var.token}" }
    json: { maintenance: true }
    assert:
      - that: output.json.maintenance == true
`
	res, _ := e2etest.Apply(t, "plan.yaml", src, engine.Options{}, "base="+srv.URL, "token="+api.token)
	if res.Status != event.StatusSucceeded {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	if on, _ := api.state(); !on {
		t.Error("maintenance mode is still off")
	}
}
