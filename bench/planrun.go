package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// benchDatabases declares the two databases every plan of the benchmark
// runs between, their URLs given as variables.
const benchDatabases = `
variable "src" {
  type      = string
  sensitive = true
}
variable "dst" {
  type      = string
  sensitive = true
}

database "source" { url = var.src }
database "target" { url = var.dst }
`

// planrunPlan is the plan the benchmark applies: the copy step as a user
// writes it, with the jobs of the run.
const planrunPlan = `plan "bench" {}
` + benchDatabases + `
step "copy" {
  uses   = "copy"
  source = database.source
  target = database.target
  jobs   = %d
  %s
}
`

// planrunCopy applies a plan with a copy step through the planrun binary.
func (b *bench) planrunCopy(ctx context.Context, target string, r *result) error {
	return b.planrunCopyWith(b.copyArgs)(ctx, target, r)
}

// planrunCopyWith is planrunCopy with other arguments for the step.
func (b *bench) planrunCopyWith(args string) func(context.Context, string, *result) error {
	return func(ctx context.Context, target string, r *result) error {
		return b.planrunCopyArgs(ctx, target, r, args)
	}
}

func (b *bench) planrunCopyArgs(ctx context.Context, target string, r *result, args string) error {
	out, c, err := b.applyPlan(ctx, "copy", fmt.Sprintf(planrunPlan, b.jobs, args), target, true)
	if err != nil {
		return err
	}
	r.seconds, r.clientCPU, r.peakRSS = c.seconds, c.cpu, c.vmHWM
	var o struct {
		Bytes  int64 `json:"bytes"`
		Phases struct {
			Schema       float64 `json:"schema"`
			Data         float64 `json:"data"`
			LargeObjects float64 `json:"large_objects"`
			Sequences    float64 `json:"sequences"`
			PostData     float64 `json:"post_data"`
			Analyze      float64 `json:"analyze"`
		} `json:"phases"`
		Tables []struct {
			Name   string  `json:"name"`
			Chunks int     `json:"chunks"`
			Probe  string  `json:"probe"`
			Rate   float64 `json:"stream_bytes_per_second"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return fmt.Errorf("the copy step's output: %w", err)
	}
	p := o.Phases
	r.detail = fmt.Sprintf("schema %.1fs, data %.1fs (%s streamed), large objects %.1fs, sequences %.1fs, post-data %.1fs, analyze %.1fs",
		p.Schema, p.Data, human(o.Bytes), p.LargeObjects, p.Sequences, p.PostData, p.Analyze)
	for _, t := range o.Tables {
		if t.Probe != "" {
			verdict := "kept whole"
			if t.Probe == "split" {
				verdict = "link-bound, split"
			}
			r.detail += fmt.Sprintf("; %s: first stream %s/s, %s, %d chunks", t.Name, human(int64(t.Rate)), verdict, t.Chunks)
		}
	}
	return nil
}

// applyPlan runs planrun apply on a plan in a fresh directory and returns
// the output of its only step or check, from the run's record.
func (b *bench) applyPlan(ctx context.Context, name, plan, target string, watch bool) ([]byte, commandRun, error) {
	dir := filepath.Join(b.work, "plan-"+name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, commandRun{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, commandRun{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.hcl"), []byte(plan), 0o644); err != nil {
		return nil, commandRun{}, err
	}
	cmd := exec.CommandContext(ctx, b.planrun, "apply", "--auto-approve", "plan.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLANRUN_VAR_src="+b.src.URL(b.db), "PLANRUN_VAR_dst="+b.dst.URL(target), "PLANRUN_PG_BINDIR="+b.binDir)
	c := runCommand(ctx, cmd, watch)
	if err := failed("planrun apply", c); err != nil {
		return nil, c, err
	}
	out, err := stepOutput(dir)
	return out, c, err
}

// stepOutput reads the output of the step that finished from the record
// of the plan's run.
func stepOutput(dir string) ([]byte, error) {
	files, _ := filepath.Glob(filepath.Join(dir, ".planrun", "*", "runs", "*.jsonl"))
	if len(files) != 1 {
		return nil, fmt.Errorf("%d run records in %s", len(files), dir)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Output json.RawMessage `json:"output"`
		}
		if err := dec.Decode(&ev); err == io.EOF {
			return nil, errors.New("no step_finished event in the run record")
		} else if err != nil {
			return nil, err
		}
		if ev.Type == "step_finished" && len(ev.Output) > 0 {
			return ev.Output, nil
		}
	}
}
