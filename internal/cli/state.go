package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/planrun/planrun/internal/journal"
	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
)

// stateFlags choose where run records and locks live.
type stateFlags struct {
	url string
}

func (s *stateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "state-url", "", "keep run records and locks in this Postgres database instead of .planrun/ (overrides the plan's state block)")
}

// openStore opens the journal: --state-url, else the plan's state block,
// else .planrun/ beside the plan.
func (c *CLI) openStore(ctx context.Context, p *plan.Plan, sf stateFlags) (journal.Store, bool) {
	url := sf.url
	if url != "" {
		// The run's redactor and every message below hide its password too.
		p.AddSecrets(pgkit.ConnSecrets(url)...)
	}
	if url == "" {
		u, diags := p.StateURL()
		if diags.HasErrors() {
			writeDiagnostics(c.stderr, p.Files, diags, p.Secrets())
			return nil, false
		}
		url = u
	}
	if url == "" {
		return &journal.FileStore{Dir: filepath.Join(p.Dir, ".planrun")}, true
	}
	store, err := journal.OpenPG(ctx, url)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %s\n", redactWith(p.Secrets(), err.Error()))
		return nil, false
	}
	return store, true
}

// fingerprints identify each step's content: its type, arguments (as known
// before the run, variables included), when, dependencies, assertions and
// rollback. A resumed run must see the same fingerprints, or the plan changed
// under it. Sensitive values enter only as HMACs keyed with the store's
// fingerprint key: a plain hash of a weak password falls to a dictionary.
func fingerprints(p *plan.Plan, key []byte) map[string]string {
	out := make(map[string]string, len(p.Steps))
	for _, st := range p.Steps {
		h := sha256.New()
		fmt.Fprintf(h, "uses=%s\n", st.Uses)
		writeArgsFingerprint(h, st.Args, key)
		if st.When != nil {
			fmt.Fprintf(h, "when=%s\n", sourceText(p, st.When.Range()))
		}
		fmt.Fprintf(h, "deps=%s\ntimeout=%s\nretry=%+v\n", strings.Join(st.Deps, ","), st.Timeout, st.Retry)
		for _, as := range st.Asserts {
			fmt.Fprintf(h, "assert=%s|%s|%s\n", as.That, as.Message, as.Severity)
		}
		if rb := st.Rollback; rb != nil {
			fmt.Fprintf(h, "rollback=%s\n", rb.Uses)
			writeArgsFingerprint(h, rb.Args, key)
		}
		out[st.Addr] = hex.EncodeToString(h.Sum(nil))[:16]
	}
	return out
}

// storeFingerprints computes the fingerprints with the store's key; it
// says why when the key cannot be read.
func (c *CLI) storeFingerprints(store journal.Store, p *plan.Plan) (map[string]string, bool) {
	key, err := store.FingerprintKey(c.ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "planrun: %v\n", err)
		return nil, false
	}
	return fingerprints(p, key), true
}

// asRecorded is fps for comparing with recorded fingerprints: an older
// planrun hashed sensitive values without a key, and a step whose recorded
// fingerprint is that unkeyed one has not changed (a run it left unfinished
// still resumes).
//
// Loaded without some variables (status, history and report need none), a
// step whose arguments are not all known cannot be compared: it is taken as
// recorded.
func asRecorded(p *plan.Plan, recorded, fps map[string]string) map[string]string {
	legacy := fingerprints(p, nil)
	blind := unsetVars(p)
	out := make(map[string]string, len(fps))
	for addr, fp := range fps {
		if old, ok := recorded[addr]; ok && old != fp && (old == legacy[addr] || blind && !argsKnown(p.Step(addr))) {
			fp = old
		}
		out[addr] = fp
	}
	return out
}

// unsetVars says whether a root variable was left unknown (plan.Options.UnsetUnknown).
func unsetVars(p *plan.Plan) bool {
	for _, v := range p.VarValues() {
		if !v.IsWhollyKnown() {
			return true
		}
	}
	return false
}

// argsKnown says whether a step's arguments and its rollback's are all known.
func argsKnown(st *plan.Step) bool {
	if st == nil {
		return true
	}
	args := st.Args
	if st.Rollback != nil {
		args = append(append([]plan.Arg(nil), args...), st.Rollback.Args...)
	}
	for _, a := range args {
		if v, _ := a.Value.UnmarkDeep(); !v.IsWhollyKnown() {
			return false
		}
	}
	return true
}

func writeArgsFingerprint(w interface{ Write([]byte) (int, error) }, args []plan.Arg, key []byte) {
	sorted := append([]plan.Arg(nil), args...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, a := range sorted {
		fmt.Fprintf(w, "arg %s=%s\n", a.Name, valueFingerprint(a.Value, key))
	}
}

func valueFingerprint(v cty.Value, key []byte) string {
	sensitive := plan.IsSensitive(v)
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return "(known after apply)"
	}
	raw, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return "?"
	}
	if sensitive {
		if key == nil { // how an older planrun fingerprinted: see asRecorded
			sum := sha256.Sum256(raw)
			return "sensitive:" + hex.EncodeToString(sum[:])
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(raw)
		return "sensitive:" + hex.EncodeToString(mac.Sum(nil))
	}
	return string(raw)
}

func redactWith(secrets []string, s string) string {
	return redact.New(secrets...).String(s)
}

// latestRun reads the newest run of the plan, nil when there is none.
func latestRun(ctx context.Context, store journal.Store, p *plan.Plan) (*journal.Run, error) {
	runs, err := store.Runs(ctx, p.Name)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	if runs[0].Damaged != nil {
		return nil, runs[0].Damaged
	}
	events, err := store.Events(ctx, p.Name, runs[0].ID)
	if err != nil {
		return nil, err
	}
	r := journal.Replay(runs[0].ID, events)
	r.Torn = runs[0].Torn
	return r, nil
}
