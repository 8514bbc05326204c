package pgdump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/plural"
	"github.com/planrun/planrun/steps/steptype"
)

// PgDumpArgs are the arguments of pg_dump.
type PgDumpArgs struct {
	Database       *pgkit.Database `hcl:"database" doc:"The database to dump."`
	Path           string          `hcl:"path" doc:"Where to write the dump, relative to the plan's directory: a directory for the directory format, a file otherwise. pg_dump writes beside it (path.planrun-partial-*) and the dump is renamed to path only once complete, so an interrupted run leaves path as it was; the next run removes the partial."`
	Format         string          `hcl:"format,optional" doc:"directory (the default; allows jobs), custom (one file) or plain (an SQL script)."`
	Jobs           *int            `hcl:"jobs,optional" doc:"How many tables to dump at once; directory format only."`
	SchemaOnly     bool            `hcl:"schema_only,optional" doc:"Dump only the schema, no data."`
	DataOnly       bool            `hcl:"data_only,optional" doc:"Dump only the data, no schema."`
	Tables         []string        `hcl:"tables,optional" doc:"Dump only these tables (pg_dump --table patterns)."`
	ExcludeTables  []string        `hcl:"exclude_tables,optional" doc:"Leave these tables out (pg_dump --exclude-table patterns)."`
	Schemas        []string        `hcl:"schemas,optional" doc:"Dump only these schemas (pg_dump --schema patterns)."`
	ExcludeSchemas []string        `hcl:"exclude_schemas,optional" doc:"Leave these schemas out (pg_dump --exclude-schema patterns)."`
	NoOwner        bool            `hcl:"no_owner,optional" doc:"Do not record who owns each object."`
	NoACL          bool            `hcl:"no_acl,optional" doc:"Do not record privileges (GRANT and REVOKE)."`
	Compress       *int            `hcl:"compress,optional" doc:"Compression level, 0 (none) to 9."`
	ExtraArgs      []string        `hcl:"extra_args,optional" doc:"More pg_dump arguments, passed as they are."`
	Overwrite      bool            `hcl:"overwrite,optional" doc:"Replace an earlier dump at path; without it a non-empty path is an error."`
}

// PgDumpOutput is the output of pg_dump.
type PgDumpOutput struct {
	Path          string  `json:"path" doc:"The dump's absolute path."`
	Format        string  `json:"format" doc:"directory, custom or plain."`
	Bytes         int64   `json:"bytes" doc:"The dump's size on disk."`
	Tables        int     `json:"tables" doc:"How many tables' data the dump holds."`
	Seconds       float64 `json:"seconds" doc:"How long pg_dump ran."`
	PgDumpVersion string  `json:"pg_dump_version" doc:"The version of the pg_dump that ran, such as 16.2."`
}

var DumpType = steptype.Def[PgDumpArgs, PgDumpOutput]{
	Summary:   "Dumps a database with pg_dump (directory, custom or plain format; parallel jobs; schema or data only; selected tables). The step's timeout includes pg_dump's time to stop: it gets SIGTERM min(10s, a quarter of the timeout) before the timeout and SIGKILL at it, and leaves no dump.",
	Fn:        runPgDump,
	ArgChecks: map[string]func(string) error{"format": steptype.CheckOneOf("", "directory", "custom", "plain")},
}

var pgDumpFormats = map[string]string{"directory": "d", "custom": "c", "plain": "p"}

func runPgDump(ctx context.Context, env *steptype.Env, a *PgDumpArgs) (*PgDumpOutput, error) {
	name := "?"
	if a.Database != nil {
		name = a.Database.Name
	}
	out, err := pgDump(ctx, env, a)
	if err != nil {
		return nil, fmt.Errorf("pg_dump %s: %w", name, err)
	}
	return out, nil
}

func pgDump(ctx context.Context, env *steptype.Env, a *PgDumpArgs) (*PgDumpOutput, error) {
	format := a.Format
	if format == "" {
		format = "directory"
	}
	if err := checkPgDumpArgs(a, format); err != nil {
		return nil, err
	}
	path := a.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.PlanDir, path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}

	// The server's version picks the binary: pg_dump refuses newer servers.
	conn, err := pgkit.Connect(ctx, env, a.Database, true)
	if err != nil {
		return nil, err
	}
	major, err := pgkit.ServerMajor(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	bin, binMajor, err := pgkit.Tool(ctx, "pg_dump", major)
	if err != nil {
		return nil, err
	}
	version := pgToolVersion(ctx, bin, binMajor)
	dsn, environ, err := pgkit.LibPQ(env, a.Database)
	if err != nil {
		return nil, err
	}
	// Refuse now rather than after the dump; the earlier dump itself makes
	// way only once the new one is complete.
	if _, err := checkDumpPath(env, path, a.Overwrite); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removePartials(env, path); err != nil {
		return nil, err
	}
	partial, err := partialName(path)
	if err != nil {
		return nil, err
	}

	argv := pgDumpArgv(a, format, partial, dsn)
	env.Logf("dumping database %s with pg_dump %s (%s format) to %s", a.Database.Name, version, format, path)
	start := time.Now()
	if err := pgkit.RunClient(ctx, bin, argv, environ, nil); err != nil {
		// Leave nothing half-written behind, so that a retry starts clean.
		_ = os.RemoveAll(partial)
		return nil, err
	}
	if err := putInPlace(env, partial, path, a.Overwrite); err != nil {
		_ = os.RemoveAll(partial)
		return nil, err
	}
	out := &PgDumpOutput{Path: path, Format: format, Seconds: time.Since(start).Seconds(), PgDumpVersion: version}
	if out.Bytes, err = diskSize(path); err != nil {
		return nil, err
	}
	if out.Tables, err = dumpTableCount(ctx, path, format, binMajor); err != nil {
		return nil, err
	}
	env.Logf("dumped %s, %s in %.1fs", plural.Of(out.Tables, "table"), plural.Of(out.Bytes, "byte"), out.Seconds)
	return out, nil
}

func checkPgDumpArgs(a *PgDumpArgs, format string) error {
	if a.Database == nil {
		return errors.New("no database given")
	}
	if a.Path == "" {
		return errors.New("path is empty")
	}
	if _, ok := pgDumpFormats[format]; !ok {
		return fmt.Errorf("format is directory, custom or plain, not %q", format)
	}
	if a.Jobs != nil && format != "directory" {
		return fmt.Errorf("jobs needs format = \"directory\" (pg_dump writes other formats from one process), not %q", format)
	}
	if a.Jobs != nil && *a.Jobs < 1 {
		return errors.New("jobs must be at least 1")
	}
	if a.SchemaOnly && a.DataOnly {
		return errors.New("give schema_only or data_only, not both")
	}
	if a.Compress != nil && (*a.Compress < 0 || *a.Compress > 9) {
		return errors.New("compress is a level from 0 to 9")
	}
	return nil
}

// pgDumpArgv builds pg_dump's arguments. The connection string carries no
// password (libpq passes it in the environment), so none shows in `ps`.
func pgDumpArgv(a *PgDumpArgs, format, path, dsn string) []string {
	argv := []string{"--format=" + pgDumpFormats[format], "--file=" + path, "--no-password"}
	if a.Jobs != nil {
		argv = append(argv, "--jobs="+strconv.Itoa(*a.Jobs))
	}
	flags := []struct {
		on   bool
		flag string
	}{{a.SchemaOnly, "--schema-only"}, {a.DataOnly, "--data-only"}, {a.NoOwner, "--no-owner"}, {a.NoACL, "--no-acl"}}
	for _, f := range flags {
		if f.on {
			argv = append(argv, f.flag)
		}
	}
	lists := []struct {
		names []string
		flag  string
	}{{a.Tables, "--table="}, {a.ExcludeTables, "--exclude-table="}, {a.Schemas, "--schema="}, {a.ExcludeSchemas, "--exclude-schema="}}
	for _, l := range lists {
		for _, n := range l.names {
			argv = append(argv, l.flag+n)
		}
	}
	if a.Compress != nil {
		argv = append(argv, "--compress="+strconv.Itoa(*a.Compress))
	}
	argv = append(argv, a.ExtraArgs...)
	return append(argv, "--dbname="+dsn)
}

// checkDumpPath says whether path may take a new dump, and what is in
// the way: nothing, an empty file or directory, or (only with overwrite)
// what looks like an earlier dump (a file, or a directory holding
// toc.dat), so that a wrong path never costs someone their files.
func checkDumpPath(env *steptype.Env, path string, overwrite bool) (inTheWay bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		if fi.Size() > 0 && !overwrite {
			return false, fmt.Errorf("%s already exists; set overwrite = true to replace it", path)
		}
		return true, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return false, err
	}
	if len(entries) == 0 {
		return true, nil
	}
	if !overwrite {
		return false, fmt.Errorf("%s already exists and is not empty; set overwrite = true to replace an earlier dump", path)
	}
	if rel, err := filepath.Rel(path, env.PlanDir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return false, fmt.Errorf("%s holds the plan itself: planrun will not delete it", path)
	}
	if _, err := os.Stat(filepath.Join(path, "toc.dat")); err != nil {
		return false, fmt.Errorf("%s is not a pg_dump directory (no toc.dat): planrun will not delete it, even with overwrite = true", path)
	}
	return true, nil
}

// The dump is written beside path under a name of its own and renamed
// into place once pg_dump exited 0: a run killed mid-dump (kill -9, a
// crash, a lost machine) leaves path as it was, and the partial under a
// name that says whose it is, which the next run removes (a partial
// directory cannot be told from a whole one by its toc.dat: pg_dump writes
// that before the data). The name is
// new for each attempt, so a pg_dump that outlived its planrun cannot
// write into the next attempt's directory.
const partialMark = ".planrun-partial-"

func partialName(path string) (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return path + partialMark + hex.EncodeToString(b), nil
}

// pgDumpDirFile is a file pg_dump writes in a directory-format dump: the
// table of contents, one file per table's data, large objects; with the
// suffix of its compression.
var pgDumpDirFile = regexp.MustCompile(`^(toc\.dat|blobs(_\d+)?\.toc|(blob_)?\d+\.dat)(\.gz|\.lz4|\.zst)?$`)

// removePartials removes what interrupted dumps to path left beside it: a
// file, or a directory holding only what pg_dump writes. Anything else
// with such a name is left alone (planrun did not make it).
func removePartials(env *steptype.Env, path string) error {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+partialMark
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !isPartialDump(p, e) {
			env.Logf("leaving %s alone: it is not a partial dump of planrun's", p)
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove the partial dump of an interrupted run: %w", err)
		}
		env.Logf("removed %s, the partial dump of an interrupted run", p)
	}
	return nil
}

func isPartialDump(path string, e fs.DirEntry) bool {
	if e.Type().IsRegular() {
		return true
	}
	if !e.IsDir() {
		return false
	}
	files, err := os.ReadDir(path)
	if err != nil {
		return false
	}
	for _, f := range files {
		if !f.Type().IsRegular() || !pgDumpDirFile.MatchString(f.Name()) {
			return false
		}
	}
	return true
}

// putInPlace renames a complete dump to path, first removing what is in
// the way there (checked again: the dump took a while).
func putInPlace(env *steptype.Env, partial, path string, overwrite bool) error {
	inTheWay, err := checkDumpPath(env, path, overwrite)
	if err != nil {
		return err
	}
	if inTheWay {
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("remove the earlier dump: %w", err)
		}
	}
	if err := os.Rename(partial, path); err != nil {
		return fmt.Errorf("put the dump in place: %w", err)
	}
	// pg_dump synced its files; make the rename last as well.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

var pgVersionRe = regexp.MustCompile(`\(PostgreSQL\) (\S+)`)

// pgToolVersion returns the full version of a tool pgTool found (pgTool
// returns only the major).
func pgToolVersion(ctx context.Context, bin string, major int) string {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if m := pgVersionRe.FindSubmatch(out); err == nil && m != nil {
		return string(m[1])
	}
	return strconv.Itoa(major)
}

// diskSize adds up the sizes of a file or of the files in a directory.
func diskSize(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// dumpTableCount counts the TABLE DATA entries of a dump: from its table of
// contents (pg_restore --list) for the archive formats, from the "Data for
// Name" comments pg_dump writes before each table for the plain format.
func dumpTableCount(ctx context.Context, path, format string, minMajor int) (int, error) {
	if format == "plain" {
		return plainTableCount(path)
	}
	bin, _, err := pgkit.Tool(ctx, "pg_restore", minMajor)
	if err != nil {
		return 0, err
	}
	out, err := exec.CommandContext(ctx, bin, "--list", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("pg_restore --list: %w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return 0, fmt.Errorf("pg_restore --list: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		// "215; 0 16390 TABLE DATA public t postgres"; comments start with ";".
		if !strings.HasPrefix(line, ";") && strings.Contains(line, " TABLE DATA ") {
			n++
		}
	}
	return n, nil
}

func plainTableCount(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) { // compress gzips a plain dump
		gz, err := gzip.NewReader(br)
		if err != nil {
			return 0, err
		}
		defer gz.Close()
		r = gz
	}
	// Read line by line without a length limit: a COPY row may be huge, and
	// only the start of each line matters.
	lr := bufio.NewReaderSize(r, 64<<10)
	n, lineStart := 0, true
	for {
		chunk, err := lr.ReadSlice('\n')
		if lineStart && bytes.HasPrefix(chunk, []byte("-- Data for Name: ")) && bytes.Contains(chunk, []byte("; Type: TABLE DATA;")) {
			n++
		}
		lineStart = err == nil // bufio.ErrBufferFull: the rest of this line comes next
		switch {
		case err == io.EOF:
			return n, nil
		case err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return n, err
		}
	}
}
