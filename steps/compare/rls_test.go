package compare

import (
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/steptest"
)

// TestCompareForcedRowSecurity: on a target whose role owns a table that
// FORCEs row-level security (as a restore leaves it), compare fails rather
// than count filtered rows, and says the statements that fix it.
func TestCompareForcedRowSecurity(t *testing.T) {
	t.Parallel()
	const schema = `CREATE TABLE accounts (id int PRIMARY KEY, tenant text);
		INSERT INTO accounts VALUES (1, 'a'), (2, 'b');
		CREATE POLICY by_tenant ON accounts USING (tenant = current_user);
		ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;`
	src, tgt := steptest.Pair(t, Source, Target, schema, "", "ALTER TABLE accounts FORCE ROW LEVEL SECURITY")
	tgtRole := &pgkit.Database{Name: "rds", URL: steptest.OwnerRole(t, Target, tgt.URL, "ALTER TABLE accounts OWNER TO %s")}
	_, err := Run(steptest.Ctx(t), steptest.ReadOnlyEnv(t), &CompareArgs{Source: src, Target: tgtRole})
	if err == nil {
		t.Fatal("compare read a FORCE'd table as its owner")
	}
	for _, says := range []string{"row-level security", `ALTER TABLE "public"."accounts" NO FORCE ROW LEVEL SECURITY;`, `ALTER TABLE "public"."accounts" FORCE ROW LEVEL SECURITY;`} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("the error does not say %q: %v", says, err)
		}
	}
}
