// Package journal records runs: every event of every run of a plan, so that
// `planrun status` can show them and a later apply can resume. Records are
// append-only JSON lines; nothing secret reaches them (events are redacted
// before they are recorded).
package journal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/planrun/planrun/internal/event"
)

// FileStore keeps runs under a directory (.planrun beside the plan):
// DIR/PLAN/runs/RUN.jsonl, and the plan's lock in DIR/PLAN/lock.
type FileStore struct {
	Dir string
	// LockCheck is how often a held lock checks that its directory is
	// still in place (0: DefaultFileLockCheck).
	LockCheck time.Duration
}

var _ Store = (*FileStore)(nil)

// Where is the directory of a plan's run records.
func (s *FileStore) Where(plan string) string { return filepath.Join(s.planDir(plan), "runs") }

// Close does nothing: files are opened per use.
func (s *FileStore) Close() error { return nil }

// flock opens path and takes its flock without waiting: a *LockedError
// naming the holder written in it when another process has it.
func flock(plan, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Plan: plan, Holder: holder}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

func readHolder(f *os.File) Holder {
	var h Holder
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err == nil {
		_ = json.Unmarshal(raw, &h) // an empty or garbled file means no holder
	}
	return h
}

func writeHolder(f *os.File, raw []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if len(raw) > 0 {
		if _, err := f.WriteAt(raw, 0); err != nil {
			return err
		}
	}
	return f.Sync()
}

// RunWriter appends events to one run's record.
type RunWriter interface {
	Record(ev event.Event) error
	// Check says whether the record is still in place: a
	// *RecordGoneError when it was removed while being written.
	Check() error
	Close() error
}

// RecordGoneError says a run's record was removed (or replaced) while the
// run wrote it: what it wrote after is lost.
type RecordGoneError struct {
	Path string
}

func (e *RecordGoneError) Error() string {
	return fmt.Sprintf("the run record %s was removed during the run", e.Path)
}

// RunInfo summarises a recorded run.
type RunInfo struct {
	ID       string
	Plan     string
	Hash     string
	Status   event.Status // "" while unfinished (or crashed)
	Started  string
	Finished string
	// Torn is set when the record ends in a torn line: it was read up to
	// its last complete event.
	Torn *TornError
	// Damaged is set when the record cannot be read: the run is known
	// by its id alone.
	Damaged error
}

func (s *FileStore) planDir(plan string) string {
	return filepath.Join(s.Dir, dirName(plan))
}

// maxVerbatim keeps directory names well below file systems' 255 bytes.
const maxVerbatim = 128

// dirName names a plan's directory, one per plan name: the name itself when
// it is a safe file name, else its safe form, "@" and a hash of the exact
// name. "@" is never in a name kept as it is, so the two forms never meet
// (an older planrun used the safe form alone: "a b" and "a_b" shared a lock).
func dirName(plan string) string {
	safe := safeName(plan)
	if safe == plan && len(plan) <= maxVerbatim {
		return plan
	}
	sum := sha256.Sum256([]byte(plan))
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return safe + "@" + hex.EncodeToString(sum[:8])
}

// safeName keeps a plan name usable as a directory name; several names
// map to one, so it is only a readable part of dirName (and the directory
// an older planrun used).
func safeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || b.String() == "." || b.String() == ".." {
		return "plan"
	}
	return b.String()
}

// legacyRuns finds the runs of plan that an older planrun recorded under
// safeName(plan), a directory that plans differing only in unsafe
// characters shared: a run there is this plan's when its run_started
// event names it. It maps run ids to files; empty when the plan's
// directory never changed.
func (s *FileStore) legacyRuns(plan string) map[string]string {
	legacy := filepath.Join(s.Dir, safeName(plan))
	if legacy == s.planDir(plan) {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(legacy, "runs"))
	if err != nil {
		return nil // none: nothing to migrate
	}
	out := map[string]string{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok {
			continue
		}
		path := filepath.Join(legacy, "runs", e.Name())
		if firstPlan(path) == plan {
			out[id] = path
		}
	}
	return out
}

// firstPlan reads the plan name in a record's first event, "" if unreadable.
func firstPlan(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	var ev struct {
		Type string `json:"type"`
		Plan string `json:"plan"`
	}
	if json.Unmarshal(line, &ev) != nil || ev.Type != event.RunStarted {
		return ""
	}
	return ev.Plan
}

// migrate moves the plan's runs from the directory an older planrun used
// into the plan's own, under the old directory's lock too, so that an older
// planrun applying the plan at this moment is not overtaken. Plans sharing
// the old directory each take their own runs when they are next locked.
func (s *FileStore) migrate(plan string) error {
	runs := s.legacyRuns(plan)
	if len(runs) == 0 {
		return nil
	}
	old, err := flock(plan, filepath.Join(s.Dir, safeName(plan), "lock"))
	if err != nil {
		return err
	}
	defer old.Close() // closing drops the flock
	dir := filepath.Join(s.planDir(plan), "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for id, path := range runs {
		dst := filepath.Join(dir, id+".jsonl")
		if _, err := os.Stat(dst); err == nil {
			continue // moved already; keep both rather than overwrite one
		}
		if err := os.Rename(path, dst); err != nil {
			return fmt.Errorf("journal: move %s to %s: %w", path, dst, err)
		}
	}
	return nil
}

// runFile is the file of one run: in the plan's directory, or where an
// older planrun left it when it has not been moved yet.
func (s *FileStore) runFile(plan, runID string) string {
	path := filepath.Join(s.planDir(plan), "runs", runID+".jsonl")
	if _, err := os.Stat(path); err != nil {
		if old, ok := s.legacyRuns(plan)[runID]; ok {
			return old
		}
	}
	return path
}

// FingerprintKey reads DIR/fingerprint.key (mode 0600), making it on first
// use. A new key is written whole to a temporary file and linked into place,
// so that two processes making one at once agree on the first.
func (s *FileStore) FingerprintKey(context.Context) ([]byte, error) {
	path := filepath.Join(s.Dir, "fingerprint.key")
	key, err := os.ReadFile(path)
	if err == nil && len(key) == 32 {
		return key, nil
	}
	if err == nil {
		return nil, fmt.Errorf("fingerprint key %s: want 32 bytes, found %d", path, len(key))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	key = make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand never fails on Linux
	tmp, err := os.CreateTemp(s.Dir, ".fingerprint.key-*")
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	// CreateTemp made it 0600.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	if key, err = os.ReadFile(path); err != nil || len(key) != 32 {
		return nil, fmt.Errorf("fingerprint key %s: unreadable or not 32 bytes (%v)", path, err)
	}
	return key, nil
}

// Create starts a new run record.
func (s *FileStore) Create(_ context.Context, plan, runID string) (RunWriter, error) {
	dir := filepath.Join(s.planDir(plan), "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, runID+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &fileWriter{f: f}, nil
}

// Append continues an existing run record (resume). A torn last line (a
// crash mid-write) is cut off first, so that the record reads whole again.
func (s *FileStore) Append(_ context.Context, plan, runID string) (RunWriter, error) {
	path := s.runFile(plan, runID)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := mend(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &fileWriter{f: f}, nil
}

// mend ends a record with a newline: a last line that lacks one is kept
// and ended when it is a whole event, else (torn) cut off.
func mend(f *os.File) error {
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return err
	}
	if len(raw) == 0 || raw[len(raw)-1] == '\n' {
		return nil
	}
	cut := bytes.LastIndexByte(raw, '\n') + 1
	if _, err := decodeEvent(raw[cut:]); err == nil {
		_, err := f.Write([]byte{'\n'})
		return err
	}
	if err := f.Truncate(int64(cut)); err != nil {
		return err
	}
	return f.Sync()
}

type fileWriter struct {
	f *os.File
}

// Record writes one event as one line in a single write, so that a crash
// leaves at most a partial last line, never an interleaved one. Events that
// mark progress are synced to disk before the run goes on.
func (w *fileWriter) Record(ev event.Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	line = append(line, '\n')
	if _, err := w.f.Write(line); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	switch ev.Type {
	case event.RunStarted, event.StepFinished, event.RollbackFinished, event.RunFinished:
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	return nil
}

// Check says whether the file written is still the one at its path.
func (w *fileWriter) Check() error {
	held, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if now, err := os.Stat(w.f.Name()); err != nil || !os.SameFile(held, now) {
		return &RecordGoneError{Path: w.f.Name()}
	}
	return nil
}

func (w *fileWriter) Close() error { return w.f.Close() }

// Runs lists a plan's runs, newest first.
func (s *FileStore) Runs(ctx context.Context, plan string) ([]RunInfo, error) {
	dir := filepath.Join(s.planDir(plan), "runs")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var ids []string
	seen := map[string]bool{}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok {
			ids = append(ids, id)
			seen[id] = true
		}
	}
	for id := range s.legacyRuns(plan) {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	// Run ids start with a UTC timestamp, so name order is time order.
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	return summarizeRuns(ctx, s, plan, ids)
}

// Events reads a run's events. A torn last line is left out (Runs says
// so); other damage is an error that names the file and line: never a
// silent fresh start.
func (s *FileStore) Events(ctx context.Context, plan, runID string) ([]event.Event, error) {
	events, _, err := s.readEvents(ctx, plan, runID)
	return events, err
}

func (s *FileStore) readEvents(_ context.Context, plan, runID string) ([]event.Event, *TornError, error) {
	path := s.runFile(plan, runID)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	events, torn, err := parseEvents(path, raw)
	if err != nil {
		return nil, nil, err
	}
	if torn > 0 {
		return events, &TornError{Run: runID, Path: path, Line: torn}, nil
	}
	return events, nil, nil
}

// parseEvents reads a record's lines. A last line without its newline is
// what a crash in the middle of a write leaves: when it is not a whole
// event it is left out and its number returned as torn; a line that does
// not parse anywhere else is damage.
func parseEvents(path string, raw []byte) (events []event.Event, torn int, err error) {
	body, tail := raw, []byte(nil)
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		cut := bytes.LastIndexByte(raw, '\n') + 1
		body, tail = raw[:cut], raw[cut:]
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		ev, err := decodeEvent(text)
		if err != nil {
			return nil, 0, &DamagedError{Path: path, Line: line, Reason: err.Error()}
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("journal %s: %w", path, err)
	}
	if len(bytes.TrimSpace(tail)) > 0 {
		line++
		if ev, err := decodeEvent(tail); err == nil {
			events = append(events, ev) // whole, but for its newline
		} else {
			torn = line
		}
	}
	if len(events) == 0 && torn > 0 {
		return nil, torn, nil // torn in its first line: the run did nothing
	}
	if len(events) == 0 || events[0].Type != event.RunStarted {
		return nil, 0, &DamagedError{Path: path, Line: 1, Reason: "a run record starts with run_started"}
	}
	return events, torn, nil
}

func decodeEvent(text []byte) (event.Event, error) {
	var ev event.Event
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(text)))
	dec.DisallowUnknownFields()
	dec.UseNumber() // keep 64-bit integers in outputs exact
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	if ev.Type == "" {
		return ev, errors.New("not an event")
	}
	return ev, nil
}

// TornError says a run's record ends in a torn line: a crash while writing
// it. The run is read up to its last complete event, so it is an unfinished
// run; resuming it cuts the torn line off.
type TornError struct {
	Run  string
	Path string
	Line int
}

func (e *TornError) Error() string {
	return fmt.Sprintf("run %s's record ends in a torn line (a crash while writing): it is read up to its last complete event", e.Run)
}

// DamagedError says a journal file cannot be trusted.
type DamagedError struct {
	Path   string
	Line   int
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("journal %s is damaged at line %d: %s; move it aside to start over (planrun apply --restart), or repair it", e.Path, e.Line, e.Reason)
}

// Summarize derives a run's summary from its events.
func Summarize(id string, events []event.Event) RunInfo {
	info := RunInfo{ID: id}
	for _, ev := range events {
		switch ev.Type {
		case event.RunStarted:
			info.Plan, info.Hash = ev.Plan, ev.Hash
			if info.Started == "" {
				info.Started = ev.Time.Format("2006-01-02 15:04:05")
			}
		case event.RunFinished:
			info.Status = ev.Status
			info.Finished = ev.Time.Format("2006-01-02 15:04:05")
		}
	}
	return info
}
