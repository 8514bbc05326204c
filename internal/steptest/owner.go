package steptest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/planrun/planrun/internal/pgtest"
)

// OwnerRole is Role for a role that may come to own things beyond the
// database's objects: setup (with %s for the role's name, run as the
// superuser in the database) may hand it the database itself (ALTER
// DATABASE ... OWNER TO %s), tables, or attributes such as CREATEDB. The
// role is made as Heroku and RDS make theirs: not superuser, without
// BYPASSRLS or REPLICATION. After the test whatever it owns goes back to
// the superuser before the role is dropped.
func OwnerRole(t *testing.T, server *pgtest.Server, dbURL, setup string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name, password := "planrun_owner_"+hex.EncodeToString(b), HostilePassword(hex.EncodeToString(b))
	MustExec(t, dbURL, "CREATE ROLE "+name+" LOGIN NOSUPERUSER NOBYPASSRLS NOREPLICATION PASSWORD '"+
		strings.ReplaceAll(password, "'", "''")+"'; "+strings.ReplaceAll(setup, "%s", name))
	t.Cleanup(func() {
		// REASSIGN takes back the database too (a shared object), which
		// DROP OWNED leaves alone.
		if err := Exec(t, dbURL, "REASSIGN OWNED BY "+name+" TO CURRENT_USER; DROP OWNED BY "+name+"; DROP ROLE "+name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// DBName is the database a URL names.
func DBName(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
