package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// BinDirEnv names an environment variable that, when set, overrides the
// search done by FindBinDir. It exists because TestMain (via Main) has no
// other way to be told where a non-standard installation lives.
const BinDirEnv = "PLANRUN_PG_BINDIR"

// serverBinaries are the programs a usable bin directory must contain.
// Only initdb and postgres are executed, but pg_ctl is required too so we
// never pick a client-only directory (e.g. one with just psql).
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir locates the PostgreSQL server binaries: $PLANRUN_PG_BINDIR,
// then PATH (initdb + pg_ctl), then /usr/lib/postgresql/*/bin (highest
// version first), then `pg_config --bindir`. The error says how to install
// them when nothing is found.
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("$%s=%s does not contain %s", BinDirEnv, dir, strings.Join(serverBinaries, ", "))
		}
		return dir, nil
	}
	for _, dir := range candidateBinDirs() {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found " +
		"in PATH, /usr/lib/postgresql/*/bin or `pg_config --bindir`; install them " +
		"(Debian/Ubuntu: `apt-get install -y postgresql`; macOS: `brew install postgresql`) " +
		"or set " + BinDirEnv + " to their directory")
}

// candidateBinDirs lists directories to probe, in order of preference.
func candidateBinDirs() []string {
	var dirs []string
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			// PATH often holds symlinks (e.g. /usr/local/bin/initdb); the real
			// directory also has pg_dump, psql, ... of the same version.
			if real, err := filepath.EvalSymlinks(initdb); err == nil {
				dirs = append(dirs, filepath.Dir(real))
			}
			dirs = append(dirs, filepath.Dir(initdb))
		}
	}
	dirs = append(dirs, debianBinDirs()...)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// debianBinDirs returns /usr/lib/postgresql/<version>/bin, newest first.
func debianBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.SliceStable(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return matches
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
