// Package herokufake is a stand-in for the Heroku Platform API, for tests:
// an http.Handler (serve it with httptest.NewServer) that keeps apps,
// Heroku Postgres add-ons and their attachments in memory and answers as
// the documented API does, refusals included:
//
//   - every request needs `Accept: application/vnd.heroku+json; version=3`
//     (else 406) and `Authorization: Bearer TOKEN` (else 401);
//   - GET and PATCH /apps/{app} (maintenance mode);
//   - GET and PATCH /apps/{app}/config-vars, where a null value removes a
//     variable and the variables an attachment owns (DATABASE_URL,
//     HEROKU_POSTGRESQL_<COLOR>_URL) are refused with 422 "Cannot
//     overwrite attachment values ...";
//   - GET /apps/{app}/addon-attachments and .../addon-attachments/{name};
//   - POST /addon-attachments {addon, app, name} (or "as"), which sets the
//     <NAME>_URL variable, refused when the name or that variable is taken;
//   - DELETE /addon-attachments/{id}, refused for an add-on's last
//     attachment on its billing app ("Cannot destroy last attachment to
//     billing app for resource ...").
//
// A freshly provisioned database (ProvisionPostgres) is attached twice, as
// DATABASE and as HEROKU_POSTGRESQL_<COLOR>, as Heroku does. Errors have
// Heroku's JSON body, {"id": ..., "message": ...}. Fail injects a status
// on the Nth call of a route, for tests of retries and rollbacks.
package herokufake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// API is the fake Platform API. Create it with New.
type API struct {
	token string
	mux   *http.ServeMux

	mu          sync.Mutex
	apps        map[string]*app
	addons      map[string]*addon // by id
	attachments []*attachment
	calls       []string
	counts      map[string]int // calls per route pattern
	faults      map[fault]int  // route and call number → status
	seq         int
}

type app struct {
	name        string
	maintenance bool
	config      map[string]string // plain config vars, not the attachments'
}

type addon struct {
	id, name, billingApp, url string
}

type attachment struct {
	id, name, addonID, app string
}

type fault struct {
	route string
	n     int
}

// New returns an API that accepts the bearer token given.
func New(token string) *API {
	f := &API{token: token, mux: http.NewServeMux(), apps: map[string]*app{}, addons: map[string]*addon{},
		counts: map[string]int{}, faults: map[fault]int{}}
	f.mux.HandleFunc("GET /apps/{app}", f.getApp)
	f.mux.HandleFunc("PATCH /apps/{app}", f.patchApp)
	f.mux.HandleFunc("GET /apps/{app}/config-vars", f.getConfig)
	f.mux.HandleFunc("PATCH /apps/{app}/config-vars", f.patchConfig)
	f.mux.HandleFunc("GET /apps/{app}/addon-attachments", f.listAttachments)
	f.mux.HandleFunc("GET /apps/{app}/addon-attachments/{name}", f.getAttachment)
	f.mux.HandleFunc("POST /addon-attachments", f.createAttachment)
	f.mux.HandleFunc("DELETE /addon-attachments/{id}", f.deleteAttachment)
	return f
}

// AddApp creates an app, out of maintenance, with the plain config vars given.
func (f *API) AddApp(name string, config map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &app{name: name, config: map[string]string{}}
	for k, v := range config {
		a.config[k] = v
	}
	f.apps[name] = a
}

// ProvisionPostgres creates a Heroku Postgres add-on billed to app, whose
// database is at url, attached as DATABASE and as HEROKU_POSTGRESQL_<color>
// (color in capitals, such as "COBALT"). It returns the add-on's id.
func (f *API) ProvisionPostgres(appName, color, url string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	ad := &addon{id: fmt.Sprintf("addon-%04d", f.seq), name: fmt.Sprintf("postgresql-%s-%d", strings.ToLower(color), 1000+f.seq), billingApp: appName, url: url}
	f.addons[ad.id] = ad
	f.attachLocked(ad, appName, "DATABASE")
	f.attachLocked(ad, appName, "HEROKU_POSTGRESQL_"+color)
	return ad.id
}

func (f *API) attachLocked(ad *addon, appName, name string) *attachment {
	f.seq++
	at := &attachment{id: fmt.Sprintf("attachment-%04d", f.seq), name: name, addonID: ad.id, app: appName}
	f.attachments = append(f.attachments, at)
	return at
}

// Fail makes the nth call (from 1) of a route answer status, with a
// Heroku-style error body, instead of doing anything. route is the
// method and path pattern, as in New: "PATCH /apps/{app}".
func (f *API) Fail(route string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[fault{route, n}] = status
}

// Calls lists the requests served, as "METHOD /path body", in order;
// refused ones (auth, injected faults) included.
func (f *API) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Maintenance says whether app is in maintenance mode.
func (f *API) Maintenance(appName string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apps[appName] != nil && f.apps[appName].maintenance
}

// Config is the app's config as the dynos see it: its plain vars and its
// attachments' <NAME>_URL.
func (f *API) Config(appName string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configLocked(appName)
}

// Attachments names the attachments on app, sorted: "DATABASE=addon-0001".
func (f *API) Attachments(appName string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, at := range f.attachments {
		if at.app == appName {
			out = append(out, at.name+"="+at.addonID)
		}
	}
	sort.Strings(out)
	return out
}

func (f *API) configLocked(appName string) map[string]string {
	out := map[string]string{}
	a := f.apps[appName]
	if a == nil {
		return out
	}
	for k, v := range a.config {
		out[k] = v
	}
	for _, at := range f.attachments {
		if at.app == appName {
			out[at.name+"_URL"] = f.addons[at.addonID].url
		}
	}
	return out
}

// owner is the attachment on app that owns config var name, or nil.
func (f *API) owner(appName, name string) *attachment {
	for _, at := range f.attachments {
		if at.app == appName && at.name+"_URL" == name {
			return at
		}
	}
	return nil
}

func (f *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "Cannot read the request body.")
		return
	}
	_, route := f.mux.Handler(r)
	f.mu.Lock()
	f.calls = append(f.calls, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	f.counts[route]++
	status, faulty := f.faults[fault{route, f.counts[route]}]
	f.mu.Unlock()

	if !strings.Contains(r.Header.Get("Accept"), "application/vnd.heroku+json; version=3") {
		fail(w, http.StatusNotAcceptable, "not_acceptable", "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		fail(w, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
		return
	}
	if faulty {
		switch {
		case status == http.StatusTooManyRequests:
			fail(w, status, "rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.")
		case status >= 500:
			fail(w, status, "unavailable", "The API is temporarily unavailable. Please try again.")
		default:
			fail(w, status, "invalid_params", "Injected failure.")
		}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mux.ServeHTTP(w, r)
}

func fail(w http.ResponseWriter, status int, id, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "message": message})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// findApp returns the app named in the path, or answers 404.
func (f *API) findApp(w http.ResponseWriter, name string) *app {
	a := f.apps[name]
	if a == nil {
		fail(w, http.StatusNotFound, "not_found", "Couldn't find that app.")
	}
	return a
}

func appJSON(a *app) map[string]any {
	return map[string]any{"id": "app-" + a.name, "name": a.name, "maintenance": a.maintenance}
}

func (f *API) attachmentJSON(at *attachment) map[string]any {
	ad := f.addons[at.addonID]
	return map[string]any{
		"id":   at.id,
		"name": at.name,
		"app":  map[string]any{"id": "app-" + at.app, "name": at.app},
		"addon": map[string]any{
			"id": ad.id, "name": ad.name,
			"app": map[string]any{"id": "app-" + ad.billingApp, "name": ad.billingApp},
		},
	}
}

func (f *API) getApp(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.findApp(w, r.PathValue("app")); a != nil {
		reply(w, http.StatusOK, appJSON(a))
	}
}

func (f *API) patchApp(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Maintenance *bool `json:"maintenance"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "Invalid JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findApp(w, r.PathValue("app"))
	if a == nil {
		return
	}
	if in.Maintenance != nil {
		a.maintenance = *in.Maintenance
	}
	reply(w, http.StatusOK, appJSON(a))
}

func (f *API) getConfig(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.findApp(w, r.PathValue("app")) != nil {
		reply(w, http.StatusOK, f.configLocked(r.PathValue("app")))
	}
}

func (f *API) patchConfig(w http.ResponseWriter, r *http.Request) {
	var in map[string]*string
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "Invalid JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findApp(w, r.PathValue("app"))
	if a == nil {
		return
	}
	var owned []string
	for k := range in {
		if f.owner(a.name, k) != nil {
			owned = append(owned, k)
		}
	}
	if len(owned) > 0 {
		sort.Strings(owned)
		fail(w, http.StatusUnprocessableEntity, "invalid_params", "Cannot overwrite attachment values "+strings.Join(owned, ", ")+".")
		return
	}
	for k, v := range in {
		if v == nil {
			delete(a.config, k)
		} else {
			a.config[k] = *v
		}
	}
	reply(w, http.StatusOK, f.configLocked(a.name))
}

func (f *API) listAttachments(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findApp(w, r.PathValue("app"))
	if a == nil {
		return
	}
	out := []any{}
	for _, at := range f.attachments {
		if at.app == a.name {
			out = append(out, f.attachmentJSON(at))
		}
	}
	reply(w, http.StatusOK, out)
}

func (f *API) getAttachment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findApp(w, r.PathValue("app"))
	if a == nil {
		return
	}
	for _, at := range f.attachments {
		if at.app == a.name && (at.name == r.PathValue("name") || at.id == r.PathValue("name")) {
			reply(w, http.StatusOK, f.attachmentJSON(at))
			return
		}
	}
	fail(w, http.StatusNotFound, "not_found", "Couldn't find that add on attachment.")
}

func (f *API) createAttachment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Addon, App, Name, As string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "Invalid JSON: "+err.Error())
		return
	}
	if in.Name == "" {
		in.Name = in.As
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.findApp(w, in.App)
	if a == nil {
		return
	}
	var ad *addon
	for _, x := range f.addons {
		if x.id == in.Addon || x.name == in.Addon {
			ad = x
		}
	}
	if ad == nil {
		fail(w, http.StatusNotFound, "not_found", "Couldn't find that add-on.")
		return
	}
	if in.Name == "" {
		in.Name = strings.ToUpper(strings.ReplaceAll(ad.name, "-", "_"))
	}
	for _, at := range f.attachments {
		if at.app == a.name && at.name == in.Name {
			fail(w, http.StatusUnprocessableEntity, "invalid_params", "Name is already taken by another attachment on "+a.name+".")
			return
		}
	}
	// Not documented either way: the fake refuses rather than silently
	// replacing a config var the user set, so tests prove the order.
	if _, ok := a.config[in.Name+"_URL"]; ok {
		fail(w, http.StatusUnprocessableEntity, "invalid_params", in.Name+"_URL is already set on "+a.name+" as a config var; remove it first.")
		return
	}
	at := f.attachLocked(ad, a.name, in.Name)
	reply(w, http.StatusCreated, f.attachmentJSON(at))
}

func (f *API) deleteAttachment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := -1
	for j, at := range f.attachments {
		if at.id == r.PathValue("id") {
			i = j
		}
	}
	if i < 0 {
		fail(w, http.StatusNotFound, "not_found", "Couldn't find that add on attachment.")
		return
	}
	at := f.attachments[i]
	ad := f.addons[at.addonID]
	others := 0
	for _, x := range f.attachments {
		if x != at && x.addonID == ad.id && x.app == ad.billingApp {
			others++
		}
	}
	if at.app == ad.billingApp && others == 0 {
		fail(w, http.StatusUnprocessableEntity, "invalid_params", "Cannot destroy last attachment to billing app for resource "+ad.name)
		return
	}
	out := f.attachmentJSON(at)
	f.attachments = append(f.attachments[:i], f.attachments[i+1:]...)
	reply(w, http.StatusOK, out)
}
