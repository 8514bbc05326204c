package pgdump

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planrun/planrun/internal/steptest"
	"github.com/planrun/planrun/internal/testbin"
)

// killPlan dumps one database four ways; "over" replaces an earlier dump.
const killPlan = `
plan "backup" {}

variable "src" {
  type      = string
  sensitive = true
}
database "old" { url = var.src }
step "dir" {
  uses     = "pg_dump"
  database = database.old
  path     = "out/dir"
}
step "custom" {
  uses     = "pg_dump"
  database = database.old
  path     = "out/db.dump"
  format   = "custom"
}
step "plain" {
  uses     = "pg_dump"
  database = database.old
  path     = "out/db.sql"
  format   = "plain"
}
step "over" {
  uses      = "pg_dump"
  database  = database.old
  path      = "out/over"
  jobs      = 2
  overwrite = true
}
`

// waitFor polls a query on url until it returns want.
func waitFor(t *testing.T, url, query, want, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := steptest.Query(t, url, query)
		if len(got) == 1 && got[0] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s: %s gives %v, want %s", what, query, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockWaiters counts the sessions waiting for a lock on table.
func lockWaiters(table string) string {
	return `SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND NOT granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND relation = '` + table + `'::regclass`
}

// planrun is killed (SIGKILL: no cleanup of any kind) while its pg_dumps
// are half-way, each with one table of two written. Apply again resumes the run: every dump starts again
// and completes, and nothing partial is left beside them. Before, the
// partial output at path made the resumed step refuse it ("already
// exists", or "not a pg_dump directory" with overwrite).
func TestPgDumpKilledProcessResumes(t *testing.T) {
	bin := testbin.Planrun(t)
	url := fixtureDB(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(killPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	// An earlier dump for "over" to replace, told apart by its one table.
	env := steptest.Env(t)
	env.PlanDir = dir
	if _, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: "out/over", Tables: []string{"public.authors"}}); err != nil {
		t.Fatal(err)
	}

	// The link to the server fails as each pg_dump asks for the second
	// table's rows, with the first table's written.
	proxy, proxied := newBlackhole(t, url, "COPY public.books ")
	apply := func() *exec.Cmd {
		cmd := exec.Command(bin, "apply", "--auto-approve", "--parallelism", "4", "plan.hcl")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PLANRUN_VAR_src="+proxied)
		return cmd
	}
	var out bytes.Buffer
	first := apply()
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill() //nolint:errcheck // already dead when the test went well
	for deadline := time.Now().Add(30 * time.Second); proxy.stalls.Load() < 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the four pg_dumps did not get to the second table in 30s (%d did)\n%s", proxy.stalls.Load(), out.String())
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	// pg_dump gets SIGTERM when planrun dies, and ends its sessions.
	waitFor(t, url, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'`, "0", "the pg_dumps to end")

	left := listDir(t, filepath.Join(dir, "out"))
	for _, want := range []string{"dir" + partialMark, "db.dump" + partialMark, "db.sql" + partialMark, "over" + partialMark, "over"} {
		if !slices.ContainsFunc(left, func(name string) bool { return strings.HasPrefix(name, want) }) {
			t.Fatalf("after the kill, out/ holds %q; want %s* there\n%s", left, want, out.String())
		}
	}
	partial, _ := filepath.Glob(filepath.Join(dir, "out", "dir"+partialMark+"*"))
	// pg_dump writes toc.dat before the data: a partial dump passes
	// pg_restore --list.
	if files := listDir(t, partial[0]); len(files) < 2 {
		t.Fatalf("the killed directory-format dump holds %q: want its table of contents and table data", files)
	}
	if n, err := dumpTableCount(steptest.Ctx(t), filepath.Join(dir, "out/over"), "directory", 0); err != nil || n != 1 {
		t.Fatalf("the earlier dump was touched by the killed run: %d tables, %v", n, err)
	}
	proxy.armed.Store(false)
	if n := proxy.stalls.Load(); n != 4 {
		t.Fatalf("%d connections stalled", n)
	}

	got, err := apply().CombinedOutput()
	if err != nil {
		t.Fatalf("apply after the kill: %v\n%s", err, got)
	}
	if left, want := listDir(t, filepath.Join(dir, "out")), []string{"db.dump", "db.sql", "dir", "over"}; !slices.Equal(left, want) {
		t.Errorf("out/ holds %q, want %q\n%s", left, want, got)
	}
	for _, d := range []struct{ path, format string }{{"out/dir", "directory"}, {"out/db.dump", "custom"}, {"out/over", "directory"}, {"out/db.sql", "plain"}} {
		n, err := dumpTableCount(steptest.Ctx(t), filepath.Join(dir, d.path), d.format, 0)
		if err != nil || n != 2 {
			t.Errorf("%s: %d tables (%v), want a complete dump of 2", d.path, n, err)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "out/db.sql")); err != nil || !bytes.Contains(raw, []byte("-- PostgreSQL database dump complete")) {
		t.Errorf("the plain dump is not complete (%v)", err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// What an interrupted dump left is removed; what planrun did not write is
// not, even under a name like a partial dump's, and a foreign directory at
// path is still refused.
func TestPgDumpRemovesOnlyItsPartials(t *testing.T) {
	url := fixtureDB(t)
	env := steptest.Env(t)
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(env.PlanDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("dump"+partialMark+"0badc0de/3412.dat.gz", "rows") // a killed directory-format dump
	if err := os.Mkdir(filepath.Join(env.PlanDir, "dump"+partialMark+"empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("dump"+partialMark+"mine/notes.txt", "keep")
	write("db.dump"+partialMark+"5ca1ab1e", "PGDMP") // a killed custom-format dump
	a := &PgDumpArgs{Database: steptest.DB(url), Path: "dump"}
	if _, err := runPgDump(steptest.Ctx(t), env, a); err != nil {
		t.Fatal(err)
	}
	if _, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: "db.dump", Format: "custom"}); err != nil {
		t.Fatal(err)
	}
	if left, want := listDir(t, env.PlanDir), []string{"db.dump", "dump", "dump" + partialMark + "mine"}; !slices.Equal(left, want) {
		t.Errorf("plan directory holds %q, want %q", left, want)
	}

	write("theirs/notes.txt", "keep")
	write("theirs"+partialMark+"1/1.dat", "rows")
	_, err := runPgDump(steptest.Ctx(t), env, &PgDumpArgs{Database: steptest.DB(url), Path: "theirs"})
	if err == nil || !strings.Contains(err.Error(), "already exists and is not empty") {
		t.Errorf("a foreign directory at path: err = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(env.PlanDir, "theirs/notes.txt")); err != nil {
		t.Errorf("a foreign file was deleted: %v", err)
	}
}

// A dump that fails leaves the earlier one it was to replace as it was.
func TestPgDumpFailedOverwriteKeepsEarlier(t *testing.T) {
	url := fixtureDB(t)
	env := steptest.Env(t)
	for _, format := range []string{"directory", "custom"} {
		a := &PgDumpArgs{Database: steptest.DB(url), Path: "dump-" + format, Format: format}
		if _, err := runPgDump(steptest.Ctx(t), env, a); err != nil {
			t.Fatal(err)
		}
		a.Overwrite, a.Tables = true, []string{"no_such_table"}
		if _, err := runPgDump(steptest.Ctx(t), env, a); err == nil {
			t.Fatal("a dump of a missing table succeeded")
		}
		if n, err := dumpTableCount(steptest.Ctx(t), filepath.Join(env.PlanDir, a.Path), format, 0); err != nil || n != 2 {
			t.Errorf("%s: the earlier dump has %d tables (%v), want it whole", format, n, err)
		}
	}
	if left, want := listDir(t, env.PlanDir), []string{"dump-custom", "dump-directory"}; !slices.Equal(left, want) {
		t.Errorf("plan directory holds %q, want %q", left, want)
	}
}
