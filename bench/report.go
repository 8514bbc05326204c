package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// median returns the run with the median time (a failed run counts as the
// slowest), noting every time when there were several.
func median(rs []result) result {
	sorted := append([]result{}, rs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if (sorted[i].status == "") != (sorted[j].status == "") {
			return sorted[i].status == ""
		}
		return sorted[i].seconds < sorted[j].seconds
	})
	m := sorted[(len(sorted)-1)/2]
	if len(rs) > 1 && m.status == "" {
		var times []string
		for _, r := range rs {
			if r.status != "" {
				times = append(times, "failed")
			} else {
				times = append(times, fmt.Sprintf("%.2f", r.seconds))
			}
		}
		m.detail = fmt.Sprintf("median of %s s; %s", strings.Join(times, ", "), m.detail)
	}
	return m
}

// report prints the results as a Markdown table, then the targets.
func report(w io.Writer, results []result, machine, dataset string, sourceRows int64) {
	var planrun *result
	for i := range results {
		if strings.HasPrefix(results[i].name, "planrun copy") && results[i].status == "" {
			planrun = &results[i]
		}
	}
	fmt.Fprintf(w, "\nMachine: %s\nDataset: %s\n\n", machine, dataset)
	fmt.Fprintln(w, "| what | seconds | × planrun copy | rows | client CPU s | source CPU s | target CPU s | peak RSS | notes |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, r := range results {
		if r.status != "" {
			fmt.Fprintf(w, "| %s | – | – | – | – | – | – | – | %s |\n", cell(r.name), oneLine(r.status))
			continue
		}
		ratio := "–"
		if planrun != nil {
			ratio = fmt.Sprintf("%.2f", r.seconds/planrun.seconds)
		}
		rows := "–"
		switch {
		case r.rows == sourceRows:
			rows = fmt.Sprint(r.rows)
		case r.rows != 0:
			rows = fmt.Sprintf("**%d** (source: %d)", r.rows, sourceRows)
		}
		rss := "–"
		if r.peakRSS > 0 {
			rss = human(r.peakRSS)
		}
		fmt.Fprintf(w, "| %s | %.2f | %s | %s | %.1f | %.1f | %.1f | %s | %s |\n",
			cell(r.name), r.seconds, ratio, rows, r.clientCPU, r.srcCPU, r.dstCPU, rss, oneLine(r.detail))
	}
	fmt.Fprintln(w)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	var checksum, count *result
	for i := range results {
		switch r := &results[i]; {
		case r.status != "":
		case strings.HasPrefix(r.name, "planrun compare"):
			checksum = r
		case strings.HasPrefix(r.name, "count(*)"):
			count = r
		}
	}
	if checksum != nil && count != nil {
		x := checksum.seconds / count.seconds
		fmt.Fprintf(w, "- checksum compare / count(*) on both sides: %.2f (target ≤ 2.50: %s)\n", x, verdict(x <= 2.5))
	}
	if planrun == nil {
		return
	}
	var fastest *result
	var floor *result
	for i := range results {
		r := &results[i]
		if r.status != "" {
			continue
		}
		switch {
		case strings.HasPrefix(r.name, "pg_dump"), strings.HasPrefix(r.name, "pgcopydb"):
			if fastest == nil || r.seconds < fastest.seconds {
				fastest = r
			}
		case strings.HasPrefix(r.name, "raw floor"):
			floor = r
		}
	}
	if fastest != nil {
		x := planrun.seconds / fastest.seconds
		fmt.Fprintf(w, "- planrun copy / fastest classic tool (%s): %.2f (target ≤ 0.80: %s)\n", fastest.name, x, verdict(x <= 0.8))
	}
	if floor != nil {
		x := planrun.seconds / floor.seconds
		fmt.Fprintf(w, "- planrun copy / raw floor: %.2f (target ≤ 1.20: %s)\n", x, verdict(x <= 1.2))
	}
	fmt.Fprintf(w, "- planrun peak memory (VmHWM of the planrun process): %s (target < 200 MB: %s)\n", human(planrun.peakRSS), verdict(planrun.peakRSS < 200<<20))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// cell escapes the pipes of a shell pipeline ("pg_dump | pg_restore") in a
// Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
