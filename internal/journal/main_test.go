package journal

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/planrun/planrun/internal/pgtest"
)

// Server is this package's throwaway Postgres, for the PGStore tests.
var Server *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &Server)) }

// stores gives a fresh store of each kind, closed when the test ends.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	return map[string]Store{"file": &FileStore{Dir: t.TempDir()}, "pg": openPG(t, Server.FreshDB(t))}
}

func openPG(t *testing.T, url string) *PGStore {
	t.Helper()
	s, err := OpenPG(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sideConn is another session on the state database, as a second runner
// or an administrator would have.
func sideConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
