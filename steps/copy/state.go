package copy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/planrun/planrun/internal/plural"
)

// copyState is what a copy has done, saved in the step's state directory
// so that a run after a crash (or a retry) goes on where the last one
// stopped: phases done are not done again, tables copied are not copied
// again. A table is the unit: one cut off half-way is emptied and copied
// again.
type copyState struct {
	Version          int                  `json:"version"`
	SchemaStarted    bool                 `json:"schema_started"` // the target may hold part of the schema
	SchemaDone       bool                 `json:"schema_done"`
	Tables           map[string]CopyTable `json:"tables"` // copied, by schema.name
	DataDone         bool                 `json:"data_done"`
	LargeObjectsDone bool                 `json:"large_objects_done"`
	LargeObjects     int64                `json:"large_objects"`
	SequencesDone    bool                 `json:"sequences_done"`
	Sequences        int                  `json:"sequences"`
	PostDataStarted  bool                 `json:"post_data_started"` // the target may hold some of the indexes
	PostDataDone     bool                 `json:"post_data_done"`
	Indexes          []CopyIndex          `json:"indexes"`
	AnalyzeDone      bool                 `json:"analyze_done"`

	mu      sync.Mutex
	saveMu  sync.Mutex // one writer of the file at a time
	path    string     // "" when there is no state directory: nothing is saved
	resumed bool       // loaded from an earlier run
	pending []string   // tables finished since the last save
	failed  error      // the last save that failed
}

const (
	copyStateFile   = "copy-state.json"
	copyStateFormat = 1
	copyArchiveFile = "schema.dump"
)

// loadCopyState reads the state an earlier run left in dir, or starts a
// new one. workDir is where the schema archive is kept: the state
// directory, so that a resumed run restores the post-data of the same
// archive as the pre-data; a temporary directory when there is none.
func loadCopyState(dir string) (*copyState, string, error) {
	s := &copyState{Version: copyStateFormat, Tables: map[string]CopyTable{}}
	if dir == "" {
		work, err := os.MkdirTemp("", "planrun-copy-")
		if err != nil {
			return nil, "", fmt.Errorf("create a work directory: %w", err)
		}
		return s, work, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("state directory: %w", err)
	}
	s.path = filepath.Join(dir, copyStateFile)
	raw, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, dir, nil
	case err != nil:
		return nil, "", fmt.Errorf("read the state of an earlier run: %w", err)
	}
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, "", fmt.Errorf("the state of an earlier run, %s, is damaged (%v): start a fresh run (planrun apply --restart) with an empty target", s.path, err)
	}
	if s.Version != copyStateFormat {
		return nil, "", fmt.Errorf("the state of an earlier run, %s, was written by another version of planrun (format %d): start a fresh run (planrun apply --restart) with an empty target", s.path, s.Version)
	}
	if s.Tables == nil {
		s.Tables = map[string]CopyTable{}
	}
	for k, t := range s.Tables {
		t.Earlier = true
		s.Tables[k] = t
	}
	s.resumed = true
	return s, dir, nil
}

// update changes the state and saves it at once: phases are few, and
// each must be on disk before the next one starts.
func (s *copyState) update(fn func(*copyState)) error {
	s.mu.Lock()
	fn(s)
	raw, err := s.marshal()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.save(raw)
}

// tableDone records a table in memory; flush saves it.
func (s *copyState) tableDone(t CopyTable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := t.Schema + "." + t.Name
	s.Tables[key] = t
	s.pending = append(s.pending, key)
}

// flush saves the tables finished since the last save, once barrier has
// made their rows durable on the target, and returns them: from now on a
// resumed run will not empty them again.
func (s *copyState) flush(ctx context.Context, barrier func(context.Context) error) []string {
	s.mu.Lock()
	if len(s.pending) == 0 || s.path == "" {
		s.mu.Unlock()
		return nil
	}
	raw, err := s.marshal()
	saved := s.pending
	s.pending = nil
	s.mu.Unlock()
	if err == nil {
		// Everything in raw was committed before the barrier starts.
		err = barrier(ctx)
	}
	if err == nil {
		err = s.save(raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.pending = append(saved, s.pending...) // try again at the next tick
		s.failed = fmt.Errorf("save the copy's progress: %w", err)
		return nil
	}
	s.failed = nil
	return saved
}

// flushErr is the error of the last save, if it failed.
func (s *copyState) flushErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// marshal is called with mu held.
func (s *copyState) marshal() ([]byte, error) {
	return json.MarshalIndent(s, "", "  ")
}

// save writes the state atomically: a temporary file, synced, renamed
// over the old one, and the directory synced, so that a crash leaves
// either the old state or the new one, never a torn file.
func (s *copyState) save(raw []byte) error {
	if s.path == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, copyStateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("save the copy's state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save the copy's state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself; not every file system can sync a directory
		_ = d.Close()
	}
	return nil
}

// complete reports whether an earlier run finished every phase.
func (s *copyState) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.SchemaDone && s.DataDone && s.LargeObjectsDone && s.SequencesDone && s.PostDataDone && s.AnalyzeDone
}

// summary says what an earlier run did, for the log.
func (s *copyState) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var done []string
	for _, p := range []struct {
		name string
		done bool
	}{{"schema", s.SchemaDone}, {"data", s.DataDone}, {"large objects", s.LargeObjectsDone}, {"sequences", s.SequencesDone}, {"post-data", s.PostDataDone}, {"analyze", s.AnalyzeDone}} {
		if p.done {
			done = append(done, p.name)
		}
	}
	phases := "none"
	if len(done) > 0 {
		phases = strings.Join(done, ", ")
	}
	return fmt.Sprintf("%s copied, phases done: %s", plural.Of(len(s.Tables), "table"), phases)
}

// tableList is the tables copied, sorted.
func (s *copyState) tableList() []CopyTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CopyTable, 0, len(s.Tables))
	for _, t := range s.Tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Name < out[j].Name
	})
	return out
}
