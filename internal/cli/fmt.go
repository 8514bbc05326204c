package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aymanbagabas/go-udiff"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/planrun/planrun/plan"
)

func runFmt(c *CLI, args []string) int {
	flags := c.newFlags("fmt", "[--check] [--diff] [PATH...]")
	check := flags.Bool("check", false, "do not write; exit 1 if any file would change")
	diff := flags.Bool("diff", false, "do not write; print what would change as a unified diff (with --check, exit 1 if any file would change)")
	pos, code, ok := c.parseFlags(flags, args, 1<<20)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		pos = []string{"."}
	}
	var files []string
	for _, root := range pos {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && (d.Name() == ".planrun" || d.Name() == ".git") {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(path) == ".hcl" || path == root {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(c.stderr, "planrun fmt: %v\n", err)
			return ExitUsage
		}
	}
	changed := 0
	status := ExitOK
	for _, path := range files {
		if c.ctx.Err() != nil {
			fmt.Fprintln(c.stderr, "planrun: interrupted")
			return ExitInterrupted
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" || ext == ".json" {
			fmt.Fprintf(c.stderr, "planrun fmt: %s: fmt rewrites HCL plans only; a %s file is left as written\n", path, ext)
			status = ExitUsage
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(c.stderr, "planrun fmt: %v\n", err)
			status = ExitUsage
			continue
		}
		// hclwrite's parser recurses without a limit: refuse what would crash it.
		if diags := plan.CheckSource(src, path); diags.HasErrors() {
			writeDiagnostics(c.stderr, map[string]*hcl.File{path: {Bytes: src}}, diags, nil)
			status = ExitUsage
			continue
		}
		f, diags := hclwrite.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			writeDiagnostics(c.stderr, map[string]*hcl.File{path: {Bytes: src}}, diags, nil)
			status = ExitUsage
			continue
		}
		out := hclwrite.Format(f.Bytes())
		if bytes.Equal(out, src) {
			continue
		}
		changed++
		if *diff {
			fmt.Fprint(c.stdout, udiff.Unified(path, path+" (formatted)", string(src), string(out)))
			continue
		}
		fmt.Fprintln(c.stdout, path)
		if *check {
			continue
		}
		if err := writeFileAtomic(path, out); err != nil {
			fmt.Fprintf(c.stderr, "planrun fmt: %v\n", err)
			status = ExitUsage
		}
	}
	if status == ExitOK && *check && changed > 0 {
		return ExitFailed
	}
	return status
}

// writeFileAtomic replaces a file so that a crash leaves the old or the new
// content, never half of one.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644) // a new file
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s is a directory", path)
		}
		mode = st.Mode().Perm()
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
