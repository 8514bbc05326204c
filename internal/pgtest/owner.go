package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// childEnv is our environment without PG* variables (PGDATA, PGPORT, ...
// would override our flags) and with the C locale, so log messages are in
// English (port-clash detection reads them).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// childCredential returns the identity to run initdb/postgres as: nil (ourselves)
// unless we are root, in which case the "postgres" system user.
func childCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root, but there is no %q user to run it as "+
			"(installing the postgresql package creates one, or run as a non-root user): %w", "postgres", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user postgres: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user postgres: gid %q: %w", u.Gid, err)
	}
	// Groups stays empty: drop root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeRoot creates the server's temp directory, owned by the user that
// will run postgres. (t.TempDir is no good as root: its parent is 0700 root.)
func makeRoot(cred *syscall.Credential) (string, error) {
	parent := os.TempDir()
	if cred != nil && !traversable(parent, cred.Uid) {
		parent = "/tmp" // e.g. TMPDIR=/root/tmp: the postgres user cannot reach it
	}
	sweepOnce.Do(func() { sweepStale(parent) })
	dir, err := os.MkdirTemp(parent, dirPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	// The owner file lets a later process recognise this directory as
	// abandoned if we die without calling Stop.
	err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
	if err == nil && cred != nil {
		err = os.Chown(dir, int(cred.Uid), int(cred.Gid))
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return dir, nil
}

const ownerFile = "owner.pid"

var sweepOnce sync.Once

// sweepStale removes temp dirs left by processes that died without calling
// Stop (a panicking test skips TestMain's cleanup; Pdeathsig stops the
// postmaster but cannot delete files). Best effort: a directory is removed
// only if both its creating process and its postmaster are gone.
func sweepStale(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, dir := range dirs {
		owner := pidFromFile(filepath.Join(dir, ownerFile))
		if owner == 0 {
			continue // not ours, or being created right now
		}
		if pidAlive(owner) || pidAlive(pidFromFile(filepath.Join(dir, "data", "postmaster.pid"))) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// pidFromFile reads the PID on the first line of a file; 0 if unreadable.
func pidFromFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}

// pidAlive reports whether a process exists (EPERM counts as alive).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// traversable reports whether uid can reach dir by search permission on it
// and every ancestor (approximation: ignores group bits).
func traversable(dir string, uid uint32) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		owner := ok && st.Uid == uid
		if !(fi.Mode()&0o001 != 0 || owner && fi.Mode()&0o100 != 0) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
