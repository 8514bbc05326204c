package capture

import (
	"context"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/steps/steptype"
)

// ownerPair makes a fresh source and target, runs schema on the source,
// and hands the schema app and its tables to a new role that has no
// other right than to create schemas in the database (as a Heroku
// credential): the source URL returned logs in as that role, with a
// password full of characters a URL must encode.
func ownerPair(t *testing.T, schema string) (src, dst, admin string) {
	t.Helper()
	admin, dst = Source.FreshDB(t), Target.FreshDB(t)
	steptest.MustExec(t, admin, schema)
	src = steptest.Role(t, Source, admin, `
DO $$
DECLARE r record;
BEGIN
	EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), '%s');
	EXECUTE format('ALTER SCHEMA app OWNER TO %I', '%s');
	FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind = 'r' LOOP
		EXECUTE format('ALTER TABLE app.%I OWNER TO %I', r.relname, '%s');
	END LOOP;
END $$;`)
	if got := steptest.Query(t, src, "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"); got[0] != "false" {
		t.Fatalf("the source role is privileged: %v", got)
	}
	return src, dst, admin
}

// leftOn lists what capture left in a database: schemas, triggers and
// functions named planrun*.
func leftOn(t *testing.T, url string) []string {
	return steptest.Query(t, url, `
SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname LIKE 'planrun%'
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'planrun%'
UNION ALL SELECT 'function ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'planrun%'`)
}

// capRun runs capture directly.
func capRun(t *testing.T, ctx context.Context, env *steptype.Env, src, dst, action string, more func(*CaptureArgs)) (*CaptureOutput, error) {
	t.Helper()
	a := &CaptureArgs{Source: &pgkit.Database{Name: "source", URL: src}, Target: &pgkit.Database{Name: "target", URL: dst}, Action: action}
	if more != nil {
		more(a)
	}
	if env == nil {
		env = steptest.Env(t)
		env.Log = t.Logf
	}
	return runCapture(ctx, env, a)
}

func mustRun(t *testing.T, src, dst, action string, more func(*CaptureArgs)) *CaptureOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := capRun(t, ctx, nil, src, dst, action, more)
	if err != nil {
		t.Fatalf("capture %s: %v", action, err)
	}
	return out
}

// same fails unless query returns the same rows on both sides.
func same(t *testing.T, src, dst, query string) []string {
	t.Helper()
	a, b := steptest.Query(t, src, query), steptest.Query(t, dst, query)
	if len(a) != len(b) {
		t.Fatalf("%s: source has %d rows, target %d", query, len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s: row %d differs:\nsource %.300s\ntarget %.300s", query, i, a[i], b[i])
		}
	}
	return a
}
