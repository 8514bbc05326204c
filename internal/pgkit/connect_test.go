package pgkit

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A failed connection is said one cause per line, with a hint.
func TestConnectErrorSaysWhatToCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Connect(ctx, nil, &Database{Name: "rds", URL: "postgres://app:pw@" + addr + "/shop?sslmode=prefer"}, false)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	lines := strings.Split(err.Error(), "\n")
	if !strings.HasPrefix(lines[0], "connect to database rds (app@127.0.0.1:") || len(lines) < 3 ||
		!strings.Contains(lines[len(lines)-1], "hint: is the server running and reachable?") {
		t.Fatalf("%s", err)
	}
}
