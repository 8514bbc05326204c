// Package testbin builds the planrun binary once per test process, for the
// tests that signal or kill a real process.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	once sync.Once
	dir  string
	bin  string
	err  error
)

// TB is the part of testing.TB used here.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Planrun returns the path of a planrun binary built from this module.
func Planrun(t TB) string {
	t.Helper()
	once.Do(func() {
		dir, err = os.MkdirTemp("", "planrun-bin-")
		if err != nil {
			return
		}
		bin = filepath.Join(dir, "planrun")
		out, buildErr := exec.Command("go", "build", "-o", bin, "github.com/planrun/planrun/cmd/planrun").CombinedOutput()
		if buildErr != nil {
			err = fmt.Errorf("go build: %v\n%s", buildErr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Cleanup removes the binary; TestMain calls it after the tests.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
