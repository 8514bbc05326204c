package pgkit

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

const hostile = `p@ss:/w%rd#?&=' \"é`

// withoutPassword keeps every parameter as pgx reads it, and the secrets
// found are the password in each form it was written in.
func TestConnStringWithoutPassword(t *testing.T) {
	enc := strings.ReplaceAll(url.QueryEscape(hostile), "+", "%20")
	userinfo := url.UserPassword("app", hostile).String()
	quoted := `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(hostile) + `'`
	for _, conn := range []string{
		"postgres://" + userinfo + "@db.example.com:5433/shop?sslmode=disable&application_name=mover&options=-c%20search_path%3Dapp&target_session_attrs=read-write",
		"postgresql://app:" + enc + "@h1:5432,h2:5433/shop?sslmode=disable&connect_timeout=7",
		"postgres://app@[::1]:5432/shop?sslmode=disable&password=" + enc,
		"host=db.example.com port=5433 user=app dbname=shop sslmode=disable password=" + quoted + " application_name='my app' options='-c search_path=app'",
		"  host = h1,h2 port=5432,5433   password = " + quoted + "  dbname=shop sslmode=disable target_session_attrs=read-write ",
	} {
		t.Run(conn[:12], func(t *testing.T) {
			want, err := pgconn.ParseConfig(conn)
			if err != nil {
				t.Fatal(err)
			}
			if want.Password != hostile {
				t.Fatalf("the fixture's password reads as %q", want.Password)
			}
			stripped, err := withoutPassword(conn)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(stripped, "w%rd") || strings.Contains(stripped, "w%25rd") || strings.Contains(stripped, "password") {
				t.Fatalf("the password is still in %s", stripped)
			}
			got, err := pgconn.ParseConfig(stripped)
			if err != nil {
				t.Fatalf("%s: %v", stripped, err)
			}
			if got.Password != "" {
				t.Errorf("password %q", got.Password)
			}
			for _, c := range []struct {
				what      string
				got, want any
			}{
				{"host", got.Host, want.Host}, {"port", got.Port, want.Port}, {"database", got.Database, want.Database},
				{"user", got.User, want.User}, {"runtime params", got.RuntimeParams, want.RuntimeParams},
				{"fallbacks", len(got.Fallbacks), len(want.Fallbacks)}, {"tls", got.TLSConfig == nil, want.TLSConfig == nil},
				{"connect timeout", got.ConnectTimeout, want.ConnectTimeout},
				{"session attrs", got.ValidateConnect == nil, want.ValidateConnect == nil},
			} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s: %v, want %v (from %s)", c.what, c.got, c.want, stripped)
				}
			}
			secrets := ConnSecrets(conn)
			for _, s := range secrets {
				if !strings.Contains(conn, s) && s != hostile {
					t.Errorf("secret %q is neither the password nor in the string", s)
				}
			}
			redacted := conn
			for _, s := range secrets {
				redacted = strings.ReplaceAll(redacted, s, "(sensitive)")
			}
			if strings.Contains(redacted, "w%") || strings.Contains(redacted, "é") || strings.Contains(redacted, "%C3%A9") {
				t.Errorf("redacted with %q: %s", secrets, redacted)
			}
		})
	}
}

// A string pgx refuses still gives up its password, so that its error or
// a value that carries it is redacted.
func TestConnSecretsOfAnUnparsableString(t *testing.T) {
	for conn, want := range map[string]string{
		"postgres://app:s3cr%3At@db:notaport/x":          "s3cr%3At",
		"host=db password='sp ace pw' sslmode=bogus":     "sp ace pw",
		"host=db sslpassword=keypw sslmode=verify-full ": "keypw",
	} {
		got := ConnSecrets(conn)
		found := false
		for _, s := range got {
			found = found || s == want
		}
		if !found {
			t.Errorf("%s: %q lacks %q", conn, got, want)
		}
	}
}

func TestWhereAndCheckSyntax(t *testing.T) {
	for conn, want := range map[string]string{
		"postgresql://me:p%40ss@db:6432/app?sslmode=disable":                           "me@db:6432/app",
		"host=db port=5433 dbname='my db' user=me password='it\\'s' sslmode=disable":   "me@db:5433/my db",
		"host=db dbname=app user=me sslmode=verify-full sslrootcert=/nowhere/ca.pem":   "me@db:5432/app",
		"postgres://me@db/app?sslmode=verify-full&sslrootcert=%2Fnowhere%2Fca.pem&x=1": "me@db:5432/app",
	} {
		if got := Where(conn); got != want {
			t.Errorf("Where(%s) = %q, want %q", conn, got, want)
		}
		if err := CheckSyntax(conn); err != nil {
			t.Errorf("CheckSyntax(%s): %v", conn, err)
		}
	}
	for _, bad := range []string{"host=db password='unterminated", "just words", "postgres://%zz"} {
		err := CheckSyntax(bad)
		if err == nil || strings.Contains(err.Error(), "unterminated'") {
			t.Errorf("CheckSyntax(%q) = %v", bad, err)
		}
	}
}
