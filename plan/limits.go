package plan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/planrun/planrun/plan/internal/nesting"
	"github.com/planrun/planrun/plan/yamlhcl"
)

// Limits on what a plan may be. They are far above any real plan; past them
// loading would take hours or exhaust memory or the stack, so the plan is
// refused, with a diagnostic naming the place, before the work starts.
const (
	// MaxFileBytes is the most a plan file may weigh, and the plan's files
	// (variable files and libraries included) together.
	MaxFileBytes = 64 << 20
	// MaxNesting is how deeply an expression may nest: brackets, braces,
	// parentheses, interpolations and blocks, plus each operator, attribute
	// or index of a chain. HCL's parser recurses once per level and has no
	// limit of its own: a few hundred kilobytes of "((((" crash it.
	MaxNesting = nesting.MaxDepth
	// MaxSteps is the most steps and checks a plan (libraries included) may declare.
	MaxSteps = 1_000_000
	// MaxLocals is the most locals a plan (libraries included) may declare.
	MaxLocals = 1_000_000
)

// limits are the counts a load enforces: the constants, or smaller ones in
// tests, which cannot afford a million steps.
type limits struct{ steps, locals int }

var defaultLimits = limits{steps: MaxSteps, locals: MaxLocals}

// asyncParseBytes is the size from which a file is parsed on a goroutine
// that cancellation can abandon (see parseAbandonable); below it a parse
// takes milliseconds.
const asyncParseBytes = 256 << 10

// readSource reads a plan, library or variable file, refusing one that
// would take the plan past MaxFileBytes. It reads at most one byte more
// than the limit, so that a huge file (or an endless device) costs nothing.
func (l *loader) readSource(open func() (io.ReadCloser, error), name string) ([]byte, hcl.Diagnostics) {
	f, err := open()
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read plan file", Detail: err.Error()}}
	}
	defer f.Close()
	left := int64(MaxFileBytes) - l.bytesRead
	src, err := io.ReadAll(io.LimitReader(f, left+1))
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read plan file", Detail: fmt.Sprintf("%s: %v", name, err)}}
	}
	if int64(len(src)) > left {
		l.tooBig = true
		detail := fmt.Sprintf("%s is larger than %d MiB, the most a plan file may weigh.", name, MaxFileBytes>>20)
		if l.bytesRead > 0 {
			detail = fmt.Sprintf("With %s the plan's files weigh more than %d MiB, the most a plan may weigh.", name, MaxFileBytes>>20)
		}
		pos := hcl.InitialPos
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Plan file too large", Detail: detail,
			Subject: &hcl.Range{Filename: name, Start: pos, End: pos},
		}}
	}
	l.bytesRead += int64(len(src))
	if d := binary(src, name); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	return src, nil
}

// binary refuses a file holding a NUL byte: neither HCL nor YAML allows
// one, and hclsyntax spends a diagnostic on each (minutes for a file of
// zeros).
func binary(src []byte, name string) *hcl.Diagnostic {
	i, what := notText(src)
	if i < 0 {
		return nil
	}
	line := bytes.Count(src[:i], []byte("\n")) + 1
	col := i - bytes.LastIndexByte(src[:i], '\n')
	pos := hcl.Pos{Line: line, Column: col, Byte: i}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Not a text file",
		Detail:  fmt.Sprintf("%s holds %s: a plan file is text (HCL or YAML, in UTF-8).", name, what),
		Subject: &hcl.Range{Filename: name, Start: pos, End: hcl.Pos{Line: line, Column: col + 1, Byte: i + 1}},
	}
}

// notText finds the first byte that no plan file holds — a NUL, another
// control character (tabs and line breaks aside), bytes that are not
// UTF-8 — and says what it is; -1 when there is none. One diagnostic for
// the file, early, instead of one per byte of garbage (whose control
// characters would reach the terminal).
func notText(src []byte) (int, string) {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				if c == 0 {
					return i, "a NUL byte"
				}
				return i, fmt.Sprintf("the control character 0x%02x", c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n == 1 {
			return i, "bytes that are not UTF-8"
		}
		if r >= 0x80 && r < 0xa0 {
			return i, fmt.Sprintf("the control character U+%04X", r)
		}
		i += n
	}
	return -1, ""
}

func osOpen(name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(name) }
}

// CheckSource refuses HCL source that nests deeper than MaxNesting or
// weighs more than MaxFileBytes, before anything parses it: for callers
// (planrun fmt) that parse HCL themselves.
func CheckSource(src []byte, filename string) hcl.Diagnostics {
	if len(src) > MaxFileBytes {
		pos := hcl.InitialPos
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Plan file too large",
			Detail:  fmt.Sprintf("%s is larger than %d MiB, the most a plan file may weigh.", filename, MaxFileBytes>>20),
			Subject: &hcl.Range{Filename: filename, Start: pos, End: pos},
		}}
	}
	if d := binary(src, filename); d != nil {
		return hcl.Diagnostics{d}
	}
	if d := nesting.Check(src, filename, hcl.InitialPos, nesting.Config); d != nil {
		return hcl.Diagnostics{d}
	}
	return nil
}

// parseHCL checks the nesting, then parses.
func parseHCL(src []byte, name string) (*hcl.File, hcl.Diagnostics) {
	if d := nesting.Check(src, name, hcl.InitialPos, nesting.Config); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	return hclsyntax.ParseConfig(src, name, hcl.InitialPos)
}

type parsed struct {
	hcl   *hcl.File
	yaml  *yamlhcl.File
	diags hcl.Diagnostics
}

// parseAbandonable parses a file, giving up waiting when ctx is done:
// neither hclsyntax nor yaml.v3 can be interrupted, and a file of tens of
// megabytes takes seconds. An abandoned parse finishes on its own (bounded
// by MaxFileBytes) and its result is dropped; nothing waits for it, which
// is the price of a prompt exit (in the CLI the process ends first).
func (l *loader) parseAbandonable(name string, src []byte) (parsed, hcl.Diagnostics) {
	parse := func() parsed {
		if isYAML(name) {
			f, d := yamlhcl.Parse(src, name)
			return parsed{yaml: f, diags: d}
		}
		f, d := parseHCL(src, name)
		return parsed{hcl: f, diags: d}
	}
	if len(src) < asyncParseBytes || l.ctx.Done() == nil {
		return parse(), nil
	}
	done := make(chan parsed, 1) // buffered: an abandoned parse never blocks
	go func() { done <- parse() }()
	select {
	case r := <-done:
		return r, nil
	case <-l.ctx.Done():
		return parsed{}, l.interrupted()
	}
}

// interrupted returns a diagnostic when the load's context is done.
func (l *loader) interrupted() hcl.Diagnostics {
	return interruptedDiags(l.ctx)
}

func interruptedDiags(ctx context.Context) hcl.Diagnostics {
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Interrupted",
		Detail: fmt.Sprintf("Loading stopped: %v.", context.Cause(ctx)),
	}}
}

// countDecl counts a step or a local and refuses the one past the limit.
func (l *loader) countDecl(what string, n *int, limit int, rng hcl.Range) hcl.Diagnostics {
	*n++
	if *n != limit+1 {
		return nil
	}
	l.tooBig = true
	return hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Too many " + what,
		Detail:  fmt.Sprintf("A plan declares at most %d %s, libraries included; this is one more.", limit, what),
		Subject: rng.Ptr(),
	}}
}
