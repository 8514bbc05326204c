package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/user"

	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/planrun/planrun/internal/event"
	"github.com/planrun/planrun/internal/redact"
	"github.com/planrun/planrun/plan"
)

// sensitiveValue stands for a sensitive variable's value wherever it is shown or recorded.
const sensitiveValue = "(sensitive)"

// thisRunner is who this process runs as, for the run record.
func thisRunner() *event.Runner {
	r := &event.Runner{PID: os.Getpid()}
	if u, err := user.Current(); err == nil {
		r.User = u.Username
	}
	r.Host, _ = os.Hostname()
	return r
}

// recordedVars are the plan's variables as the run record keeps them:
// sensitive ones replaced, every other value redacted of the secrets the
// run knows (a password inside a URL given as a plain variable). A value
// not known yet is left out.
func recordedVars(p *plan.Plan, red *redact.Redactor) map[string]any {
	values := p.VarValues()
	out := map[string]any{}
	for _, v := range p.Variables {
		if v.Sensitive || p.IsSensitive(v.Name) {
			out[v.Name] = sensitiveValue
			continue
		}
		val, ok := values[v.Name]
		if !ok || !val.IsWhollyKnown() {
			continue
		}
		unmarked, _ := val.UnmarkDeep()
		raw, err := ctyjson.Marshal(unmarked, unmarked.Type())
		if err != nil {
			continue
		}
		var decoded any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // a number keeps every digit
		if err := dec.Decode(&decoded); err != nil {
			continue
		}
		out[v.Name] = red.Value(decoded)
	}
	return out
}
