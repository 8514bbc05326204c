package wait

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/exec"
	httpstep "github.com/planrun/planrun/steps/http"
	"github.com/planrun/planrun/steps/steptype"
)

// probeEnv is an Env whose RunNested does what the engine's does, without
// the engine (which imports this package): decode the body into the named
// built-in type's arguments, run it, and turn the output into plain JSON
// values. It counts probes and keeps the log lines.
type probeEnv struct {
	*steptype.Env
	probes atomic.Int32
	mu     sync.Mutex
	logs   []string
}

// probeTypes are the types these tests probe with: a test-only edge to
// them (the registry would import this package back).
var probeTypes = map[string]steptype.Type{"exec": exec.Type, "http": httpstep.Type}

func newProbeEnv(t *testing.T) *probeEnv {
	pe := &probeEnv{}
	pe.Env = &steptype.Env{Addr: "step.wait", PlanDir: t.TempDir()}
	pe.Log = func(format string, args ...any) {
		pe.mu.Lock()
		pe.logs = append(pe.logs, fmt.Sprintf(format, args...))
		pe.mu.Unlock()
	}
	pe.RunNested = func(ctx context.Context, uses string, body hcl.Body) (any, error) {
		pe.probes.Add(1)
		typ, ok := probeTypes[uses]
		if !ok {
			return nil, fmt.Errorf("unknown step type %q", uses)
		}
		args := typ.NewArgs()
		if diags := gohcl.DecodeBody(body, nil, args); diags.HasErrors() {
			return nil, diags
		}
		out, err := typ.Run(ctx, pe.Env, args)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		var norm any
		return norm, json.Unmarshal(raw, &norm)
	}
	return pe
}

func (pe *probeEnv) logText() string {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return strings.Join(pe.logs, "\n")
}

// parseProbe parses HCL arguments into a probe block of the given type.
func parseProbe(t *testing.T, uses, src string) WaitProbe {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "probe.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return WaitProbe{Uses: uses, Rest: f.Body}
}

// countingJSONServer answers request n (from 1) with answer(n).
func countingJSONServer(t *testing.T, answer func(n int32) (int, string)) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := answer(n.Add(1))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWaitUntilTrueAfterPolls(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) {
		return 200, fmt.Sprintf(`{"ready": %t, "n": %d}`, n >= 3, n)
	})
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.ready == true",
		Interval: "10ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Attempts != 3 || out.LastError != "" {
		t.Errorf("attempts %d, last error %q", out.Attempts, out.LastError)
	}
	last := out.Last.(map[string]any)
	if last["status"] != 200.0 || last["json"].(map[string]any)["n"] != 3.0 {
		t.Errorf("last = %v", out.Last)
	}
	if !strings.Contains(pe.logText(), "attempt 2: not yet") {
		t.Errorf("log:\n%s", pe.logText())
	}
}

func TestWaitExecProbeCounterFile(t *testing.T) {
	pe := newProbeEnv(t)
	// Each run bumps a counter kept in the plan directory and prints it.
	script := `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "{\"n\": $n}"`
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "exec", fmt.Sprintf("shell = %q\noutput_format = \"json\"", script)),
		Until:    "output.json.n >= 4",
		Interval: "1ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Attempts != 4 {
		t.Errorf("attempts = %d", out.Attempts)
	}
}

func TestWaitProbeErrorsAreNotYet(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) {
		if n < 3 {
			return 503, `{"error":"starting"}`
		}
		return 200, `{"ready": true}`
	})
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.ready",
		Interval: "1ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Attempts != 3 || out.LastError != "" {
		t.Errorf("attempts %d, last error %q", out.Attempts, out.LastError)
	}
	if log := pe.logText(); !strings.Contains(log, "attempt 1: not yet: http GET") || !strings.Contains(log, "status 503") {
		t.Errorf("log:\n%s", log)
	}
}

func TestWaitUntilErrorIsNotYet(t *testing.T) {
	// No rows yet: output.json.rows[0] fails to evaluate until a row shows up.
	srv, _ := countingJSONServer(t, func(n int32) (int, string) {
		if n < 2 {
			return 200, `{"rows": []}`
		}
		return 200, `{"rows": [{"lag": 0}]}`
	})
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.rows[0].lag == 0",
		Interval: "1ms",
	})
	if err != nil || out.Attempts != 2 {
		t.Fatalf("attempts %d, err %v", out.Attempts, err)
	}
}

func TestWaitGivesUpWithLastOutput(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) { return 200, `{"ready": false}` })
	pe := newProbeEnv(t)
	start := time.Now()
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.ready",
		Interval: "20ms",
		MaxWait:  "150ms",
	})
	if err == nil {
		t.Fatal("want an error")
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > time.Second {
		t.Errorf("gave up after %s, want about 150ms", d)
	}
	msg := err.Error()
	for _, want := range []string{"gave up", "max_wait 150ms", "until (output.json.ready) did not hold", "in " + plural.Of(out.Attempts, "attempt"), `"ready":false`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if out.Attempts < 3 {
		t.Errorf("attempts = %d", out.Attempts)
	}
}

func TestWaitGivesUpWithLastProbeError(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) { return 500, `{"error":"replica down"}` })
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.status == 200",
		Interval: "10ms",
		MaxWait:  "50ms",
	})
	if err == nil || !strings.Contains(err.Error(), "last error: http GET") || !strings.Contains(err.Error(), "replica down") {
		t.Fatalf("err = %v", err)
	}
	if out.Last != nil || !strings.Contains(out.LastError, "status 500") {
		t.Errorf("last %v, last error %q", out.Last, out.LastError)
	}
}

func TestWaitFailFast(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) {
		if n < 2 {
			return 200, `{"state": "catching_up"}`
		}
		return 200, `{"state": "broken"}`
	})
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.state == 'streaming'",
		FailFast: "output.json.state == 'broken'",
		Interval: "1ms",
	})
	if err == nil || !strings.Contains(err.Error(), "fail_fast (output.json.state == 'broken') is true after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	if out.Attempts != 2 {
		t.Errorf("attempts = %d", out.Attempts)
	}
}

func TestWaitContextCancelledWhilePausing(t *testing.T) {
	srv, _ := countingJSONServer(t, func(n int32) (int, string) { return 200, `{"ready": false}` })
	pe := newProbeEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	out, err := runWait(ctx, pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.json.ready",
		Interval: "1h",
		MaxWait:  "2h",
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped after 1 attempt") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second || out.Attempts != 1 {
		t.Errorf("took %s, %d attempts", d, out.Attempts)
	}
}

func TestWaitContextCancelledDuringProbe(t *testing.T) {
	srv := steptest.HangingHTTP(t)
	pe := newProbeEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := runWait(ctx, pe.Env, &WaitArgs{
		Probe: parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until: "output.status == 200",
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
}

func TestWaitMaxWaitCancelsAHungProbe(t *testing.T) {
	srv := steptest.HangingHTTP(t)
	pe := newProbeEnv(t)
	start := time.Now()
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:   parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:   "output.status == 200",
		MaxWait: "100ms",
	})
	if err == nil || !strings.Contains(err.Error(), "gave up") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second || out.Attempts != 1 {
		t.Errorf("took %s, %d attempts", d, out.Attempts)
	}
}

func TestWaitKeepsTheErrorOfTheAttemptBeforeACutOffOne(t *testing.T) {
	// The first probe fails for a reason; the second hangs until max_wait
	// cuts it off. The reason, not only "deadline exceeded", is reported.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	pe := newProbeEnv(t)
	out, err := runWait(context.Background(), pe.Env, &WaitArgs{
		Probe:    parseProbe(t, "http", fmt.Sprintf("url = %q", srv.URL)),
		Until:    "output.status == 200",
		Interval: "10ms",
		MaxWait:  "300ms",
	})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(out.LastError, "503") {
		t.Fatalf("err = %v, last_error %q", err, out.LastError)
	}
	if out.Attempts != 2 {
		t.Errorf("%d attempts", out.Attempts)
	}
}

func TestWaitBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args WaitArgs
		want string
	}{
		{WaitArgs{Until: "output.status =="}, `wait: until: "output.status ==" is not an expr-lang condition on output: unexpected token EOF`},
		{WaitArgs{Until: "1 + 1"}, `wait: until: "1 + 1" is not an expr-lang condition on output: expected bool, but got int`},
		{WaitArgs{Until: "true", FailFast: "output.("}, `wait: fail_fast: "output.(" is not an expr-lang condition on output`},
		{WaitArgs{Until: "true", Interval: "often"}, `wait: interval: "often" is not a duration such as "30s"`},
		{WaitArgs{Until: "true", MaxWait: "-1s"}, `wait: max_wait: "-1s" is not a duration such as "30s"`},
	} {
		pe := newProbeEnv(t)
		tc.args.Probe = parseProbe(t, "exec", `command = ["true"]`)
		_, err := runWait(context.Background(), pe.Env, &tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.args, err, tc.want)
		}
		if n := pe.probes.Load(); n != 0 {
			t.Errorf("%+v: %d probes ran before the arguments were checked", tc.args, n)
		}
	}
}
