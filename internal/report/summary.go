package report

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/planrun/planrun/internal/bytesize"
)

// outputCut is how much of an output the generic summary shows.
const outputCut = 300

// summarizeOutput picks the outputs people look for in the built-in types'
// results; any other output is shown as compact JSON, cut.
func summarizeOutput(uses string, out any) []Fact {
	facts := []Fact{}
	if out == nil {
		return facts
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return facts
	}
	add := func(name string, value any, text string) {
		facts = append(facts, Fact{Name: name, Value: value, text: text})
	}
	count := func(name string, n int64) { add(name, n, fmt.Sprint(n)) }
	seconds := func(name string, s float64) { add(name, s, FormatDuration(secs(s))) }
	list := func(name string, items []string) {
		if items == nil {
			items = []string{}
		}
		text := "none"
		if len(items) > 0 {
			text = joinCut(items, 10)
		}
		add(name, items, text)
	}
	switch uses {
	case "copy":
		var o copyOutput
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("tables", int64(len(o.Tables)))
		count("rows", o.Rows)
		add("bytes", o.Bytes, bytesize.Format(o.Bytes))
		add("bytes_per_second", o.BytesPerSecond, bytesize.Format(int64(o.BytesPerSecond))+"/s")
		seconds("seconds", o.Seconds)
		if o.Resumed {
			add("resumed", true, "yes: it continued an interrupted copy")
		}
		return facts
	case "compare":
		var o struct {
			Equal           bool     `json:"equal"`
			Mismatched      []string `json:"mismatched"`
			SequencesBehind []string `json:"sequences_behind"`
			Checksums       []struct {
				Schema        string `json:"schema"`
				Name          string `json:"name"`
				DifferingKeys []struct {
					Key  string `json:"key"`
					Kind string `json:"kind"`
				} `json:"differing_keys"`
			} `json:"checksums"`
			Tables []struct {
				Schema     string `json:"schema"`
				Name       string `json:"name"`
				SourceRows *int64 `json:"source_rows"`
				TargetRows *int64 `json:"target_rows"`
			} `json:"tables"`
			Seconds float64 `json:"seconds"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		add("equal", o.Equal, fmt.Sprint(o.Equal))
		list("mismatched", o.Mismatched)
		// Each table's rows on both sides, differing ones first: the
		// figure a reader of the report checks against the source.
		if len(o.Tables) > 0 {
			rows := map[string]map[string]*int64{}
			var differ, same []string
			for _, t := range o.Tables {
				name := t.Schema + "." + t.Name
				rows[name] = map[string]*int64{"source": t.SourceRows, "target": t.TargetRows}
				src, dst := rowCount(t.SourceRows), rowCount(t.TargetRows)
				if src == dst {
					same = append(same, name+" "+src)
				} else {
					differ = append(differ, name+" "+src+" ≠ "+dst)
				}
			}
			add("table_rows", rows, joinCut(append(differ, same...), 10))
		}
		if len(o.SequencesBehind) > 0 {
			list("sequences_behind", o.SequencesBehind)
		}
		keys := map[string][]string{}
		var texts []string
		for _, t := range o.Checksums {
			if len(t.DifferingKeys) == 0 {
				continue
			}
			table := t.Schema + "." + t.Name
			var ks []string
			for _, k := range t.DifferingKeys {
				ks = append(ks, fmt.Sprintf("%s (%s)", k.Key, k.Kind))
			}
			keys[table] = ks
			texts = append(texts, table+": "+joinCut(ks, 5))
		}
		if len(keys) > 0 {
			add("differing_keys", keys, strings.Join(texts, "; "))
		}
		seconds("seconds", o.Seconds)
		return facts
	case "replicate":
		var o struct {
			Action        string `json:"action"`
			Tables        int64  `json:"tables"`
			LagBytes      int64  `json:"lag_bytes"`
			CaughtUpLSN   string `json:"caught_up_lsn"`
			NotReplicated []struct {
				Kind  string `json:"kind"`
				Count int64  `json:"count"`
			} `json:"not_replicated"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		if o.Action != "" {
			add("action", o.Action, o.Action)
		}
		count("tables", o.Tables)
		add("lag_bytes", o.LagBytes, bytesize.Format(o.LagBytes))
		add("caught_up_lsn", o.CaughtUpLSN, orDash(o.CaughtUpLSN))
		gaps := map[string]int64{}
		var texts []string
		for _, g := range o.NotReplicated {
			gaps[g.Kind] = g.Count
			texts = append(texts, fmt.Sprintf("%s (%d)", g.Kind, g.Count))
		}
		text := "nothing"
		if len(texts) > 0 {
			text = strings.Join(texts, ", ")
		}
		add("not_replicated", gaps, text)
		return facts
	case "capture":
		var o struct {
			Action       string      `json:"action"`
			Tables       []string    `json:"tables"`
			Applied      int64       `json:"applied"`
			NotFound     int64       `json:"not_found"`
			LagRows      int64       `json:"lag_rows"`
			LagMax       float64     `json:"lag_max_seconds"`
			Verify       string      `json:"verify"`
			VerifiedRows int64       `json:"verified_rows"`
			Differing    []string    `json:"differing"`
			FenceSeconds float64     `json:"fence_seconds"`
			Copy         *copyOutput `json:"copy"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		add("action", o.Action, o.Action)
		count("tables", int64(len(o.Tables)))
		if o.Copy != nil {
			count("copied_rows", o.Copy.Rows)
		}
		count("applied", o.Applied)
		if o.NotFound > 0 {
			count("not_found", o.NotFound)
		}
		count("lag_rows", o.LagRows)
		seconds("lag_max_seconds", o.LagMax)
		if o.Verify != "" {
			add("verify", o.Verify, o.Verify)
			count("verified_rows", o.VerifiedRows)
			list("differing", o.Differing)
		}
		if o.Action == "cutover" {
			seconds("fence_seconds", o.FenceSeconds)
		}
		return facts
	case "pg_restore":
		var o struct {
			Errors   int64 `json:"errors"`
			Warnings int64 `json:"warnings"`
			Messages []struct {
				Level string `json:"level"`
				Text  string `json:"text"`
			} `json:"messages"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("errors", o.Errors)
		count("warnings", o.Warnings)
		var errs []string
		for _, m := range o.Messages {
			if m.Level == "error" && len(errs) < 5 {
				errs = append(errs, m.Text)
			}
		}
		if len(errs) > 0 {
			add("error_messages", errs, strings.Join(errs, " | "))
		}
		return facts
	case "sequences":
		var o struct {
			Sequences []json.RawMessage `json:"sequences"`
			Updated   int64             `json:"updated"`
		}
		if json.Unmarshal(raw, &o) != nil {
			break
		}
		count("updated", o.Updated)
		count("sequences", int64(len(o.Sequences)))
		return facts
	}
	text := cutString(string(raw), outputCut)
	add("output", text, text)
	return facts
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// joinCut joins at most n items, saying how many more there are.
func joinCut(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// cutString cuts s after n bytes (at a rune boundary), marking the cut.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("… (%d bytes more)", len(s)-n)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// copyOutput is what the report reads of a copy step's output.
type copyOutput struct {
	Rows           int64   `json:"rows"`
	Bytes          int64   `json:"bytes"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	Seconds        float64 `json:"seconds"`
	Resumed        bool    `json:"resumed"`
	Phases         struct {
		Schema   float64 `json:"schema"`
		Data     float64 `json:"data"`
		PostData float64 `json:"post_data"`
	} `json:"phases"`
	Tables []struct {
		Schema string  `json:"schema"`
		Name   string  `json:"name"`
		Chunks int     `json:"chunks"`
		Split  string  `json:"split"`
		Probe  string  `json:"probe"`
		Rate   float64 `json:"stream_bytes_per_second"`
	} `json:"tables"`
}

// Expectation says, from a step's output in a rehearsal, what a run of it
// on the same data should expect beyond its duration: for a copy, the
// volume and rate, where the time went, and how each probed table was
// copied (a capped link splits it; a CPU-bound machine keeps it whole).
// It is "" for other types.
func Expectation(uses string, out any) string {
	if uses != "copy" || out == nil {
		return ""
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return ""
	}
	var o copyOutput
	if json.Unmarshal(raw, &o) != nil || o.Bytes == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s/s (schema %s, data %s, post-data %s)", bytesize.Format(o.Bytes), bytesize.Format(int64(o.BytesPerSecond)),
		FormatDuration(secs(o.Phases.Schema)), FormatDuration(secs(o.Phases.Data)), FormatDuration(secs(o.Phases.PostData)))
	var probed []string
	for _, t := range o.Tables {
		if t.Split == "" {
			continue
		}
		how := "kept whole"
		// Runs recorded before the probe field say it in split's text only.
		if t.Probe == "split" || (t.Probe == "" && strings.HasPrefix(t.Split, "link-bound")) {
			how = fmt.Sprintf("link-bound, split into %d chunks", t.Chunks)
		}
		probed = append(probed, fmt.Sprintf("%s.%s %s (one stream: %s/s)", t.Schema, t.Name, how, bytesize.Format(int64(t.Rate))))
	}
	if len(probed) > 0 {
		b.WriteString("; " + joinCut(probed, 3))
	}
	if o.Resumed {
		b.WriteString("; that run resumed an interrupted copy, so its figures cover only part of it")
	}
	return b.String()
}

// rowCount prints a row count, or "-" for a side without the table (or
// not counted).
func rowCount(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}
