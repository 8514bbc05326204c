package compare

import (
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/planrun/planrun/internal/steptest"
)

// TestCompareSettings: the settings a database gives its sessions and
// roles are compared; a role's only where both servers have the role.
func TestCompareSettings(t *testing.T) {
	t.Parallel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	both, sourceOnly := "planrun_cmp_both_"+hex.EncodeToString(b), "planrun_cmp_src_"+hex.EncodeToString(b)
	src, tgt := steptest.Pair(t, Source, Target, "CREATE ROLE "+both, "CREATE ROLE "+sourceOnly+`;
		DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, heroku_ext', current_database());
			EXECUTE format('ALTER DATABASE %I SET work_mem = ''64MB''', current_database());
			EXECUTE format('ALTER ROLE `+both+` IN DATABASE %I SET statement_timeout = ''30s''', current_database());
			EXECUTE format('ALTER ROLE `+sourceOnly+` IN DATABASE %I SET statement_timeout = ''1s''', current_database());
		END $$`, `DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET work_mem = ''32MB''', current_database());
		END $$`)
	t.Cleanup(func() {
		steptest.MustExec(t, src.URL, "DROP ROLE "+both+"; DROP ROLE "+sourceOnly)
		steptest.MustExec(t, tgt.URL, "DROP ROLE "+both)
	})
	out := compareT(t, &CompareArgs{Source: src, Target: tgt})
	want := CompareDefs{
		Missing: []string{`role ` + both + `: statement_timeout = '30s'`, `search_path = "$user", public, heroku_ext`},
		Extra:   []string{},
		Changed: []string{"work_mem: '64MB' on the source, '32MB' on the target"},
	}
	if !reflect.DeepEqual(out.Settings, want) || out.Equal {
		t.Errorf("settings %#v, equal %v; want %#v", out.Settings, out.Equal, want)
	}

	// Once the target has them, the databases are equal again (the
	// source-only role's setting does not count).
	steptest.MustExec(t, tgt.URL, `DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, heroku_ext', current_database());
			EXECUTE format('ALTER DATABASE %I SET work_mem = ''64MB''', current_database());
			EXECUTE format('ALTER ROLE `+both+` IN DATABASE %I SET statement_timeout = ''30s''', current_database());
		END $$`)
	if out := compareT(t, &CompareArgs{Source: src, Target: tgt}); !out.Equal || len(out.Settings.Missing)+len(out.Settings.Extra)+len(out.Settings.Changed) != 0 {
		t.Errorf("settings %#v, equal %v", out.Settings, out.Equal)
	}
}
