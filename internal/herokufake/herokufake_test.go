package herokufake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request as the runbook does and returns the status and the
// decoded body.
func (c client) do(method, path, body string) (int, any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, v
}

func message(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["message"].(string)
	return s
}

func TestAttachmentModel(t *testing.T) {
	api := New("tok-123456")
	api.AddApp("shop", map[string]string{"RAILS_ENV": "production"})
	id := api.ProvisionPostgres("shop", "COBALT", "postgres://heroku/db")
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := client{t: t, base: srv.URL, token: "tok-123456"}

	if got := api.Attachments("shop"); !reflect.DeepEqual(got, []string{"DATABASE=" + id, "HEROKU_POSTGRESQL_COBALT=" + id}) {
		t.Fatalf("a fresh database is attached twice: %v", got)
	}
	if cfg := api.Config("shop"); cfg["DATABASE_URL"] != "postgres://heroku/db" || cfg["HEROKU_POSTGRESQL_COBALT_URL"] != "postgres://heroku/db" {
		t.Fatalf("config: %v", cfg)
	}

	// Without the version or the token: refused with Heroku's error body.
	if st, body := (client{t: t, base: srv.URL}).do("GET", "/apps/shop", ""); st != 401 || message(body) == "" {
		t.Errorf("no token: %d %v", st, body)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/apps/shop", nil)
	req.Header.Set("Authorization", "Bearer tok-123456")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 406 {
		t.Errorf("no Accept version: %v %v", resp, err)
	}

	for _, name := range []string{"DATABASE_URL", "HEROKU_POSTGRESQL_COBALT_URL"} {
		st, body := c.do("PATCH", "/apps/shop/config-vars", `{"`+name+`":"postgres://rds/db"}`)
		if st != 422 || message(body) != "Cannot overwrite attachment values "+name+"." {
			t.Errorf("%s: %d %v", name, st, body)
		}
	}

	st, list := c.do("GET", "/apps/shop/addon-attachments", "")
	atts, _ := list.([]any)
	if st != 200 || len(atts) != 2 {
		t.Fatalf("attachments: %d %v", st, list)
	}
	ids := map[string]string{}
	for _, a := range atts {
		m := a.(map[string]any)
		ids[m["name"].(string)] = m["id"].(string)
	}

	// Detach DATABASE (the color keeps the add-on), then set DATABASE_URL.
	if st, body := c.do("DELETE", "/addon-attachments/"+ids["DATABASE"], ""); st != 200 {
		t.Fatalf("detach DATABASE: %d %v", st, body)
	}
	if st, body := c.do("DELETE", "/addon-attachments/"+ids["HEROKU_POSTGRESQL_COBALT"], ""); st != 422 ||
		!strings.HasPrefix(message(body), "Cannot destroy last attachment to billing app for resource postgresql-cobalt-") {
		t.Errorf("last attachment: %d %v", st, body)
	}
	if st, body := c.do("PATCH", "/apps/shop/config-vars", `{"DATABASE_URL":"postgres://rds/db"}`); st != 200 {
		t.Fatalf("set DATABASE_URL: %d %v", st, body)
	}
	// Attaching as DATABASE again needs the plain variable gone first.
	if st, _ := c.do("POST", "/addon-attachments", `{"addon":"`+id+`","app":"shop","name":"DATABASE"}`); st != 422 {
		t.Errorf("attach over a plain DATABASE_URL: %d", st)
	}
	if st, _ := c.do("PATCH", "/apps/shop/config-vars", `{"DATABASE_URL":null}`); st != 200 {
		t.Fatal(st)
	}
	if st, body := c.do("POST", "/addon-attachments", `{"addon":"`+id+`","app":"shop","as":"DATABASE"}`); st != 201 {
		t.Fatalf("attach as DATABASE: %d %v", st, body)
	}
	if cfg := api.Config("shop"); cfg["DATABASE_URL"] != "postgres://heroku/db" || cfg["RAILS_ENV"] != "production" {
		t.Errorf("config after reattaching: %v", cfg)
	}
}

func TestFailNth(t *testing.T) {
	api := New("tok-123456")
	api.AddApp("shop", nil)
	api.Fail("PATCH /apps/{app}", 2, 503)
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := client{t: t, base: srv.URL, token: "tok-123456"}
	var got []int
	for _, on := range []string{"true", "false", "false"} {
		st, _ := c.do("PATCH", "/apps/shop", `{"maintenance":`+on+`}`)
		got = append(got, st)
		if on == "true" && !api.Maintenance("shop") {
			t.Error("maintenance is not on")
		}
	}
	if !reflect.DeepEqual(got, []int{200, 503, 200}) || api.Maintenance("shop") {
		t.Errorf("statuses %v, maintenance %v", got, api.Maintenance("shop"))
	}
	if calls := api.Calls(); len(calls) != 3 || calls[1] != `PATCH /apps/shop {"maintenance":false}` {
		t.Errorf("calls: %q", calls)
	}
}
