package compare

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/planrun/planrun/internal/pgkit"
)

// cmpDiff compares what was read on both sides.
func cmpDiff(src, tgt *cmpSide) *CompareOutput {
	out := &CompareOutput{Mismatched: []string{}, Tables: []CompareTable{}, Sequences: []CompareSequence{}, SequencesBehind: []string{}}
	sc, tc := src.cat, tgt.cat
	equal := true

	tables := func(c *cmpCatalog) map[string]cmpRelation {
		return cmpFilter(c.relations, func(r cmpRelation) bool { return r.isTable() })
	}
	st, tt := tables(sc), tables(tc)
	out.MissingTables, out.ExtraTables = cmpOneSided(st, tt)
	for _, key := range cmpUnion(st, tt) {
		r, onSource := st[key]
		_, onTarget := tt[key]
		if !onSource {
			r = tt[key]
		}
		t := CompareTable{Schema: r.schema, Name: r.name, SourceRows: src.rowsOf(key), TargetRows: tgt.rowsOf(key)}
		t.Match = onSource && onTarget && (t.SourceRows == nil) == (t.TargetRows == nil) &&
			(t.SourceRows == nil || *t.SourceRows == *t.TargetRows)
		if !t.Match {
			out.Mismatched = append(out.Mismatched, key)
		}
		out.Tables = append(out.Tables, t)
	}

	// Columns only of tables on both sides: a missing table is reported once, as a table.
	both := func(c *cmpCatalog) map[string]cmpColumn {
		return cmpFilter(c.columns, func(col cmpColumn) bool {
			_, s := st[col.table]
			_, t := tt[col.table]
			return s && t
		})
	}
	out.Columns.Missing, out.Columns.Extra = cmpOneSided(both(sc), both(tc))
	out.Columns.TypeChanged = cmpChanged(sc.columns, tc.columns, func(c cmpColumn) string { return c.typ })
	out.Columns.NotNullChanged = cmpChanged(sc.columns, tc.columns, func(c cmpColumn) string {
		return map[bool]string{true: "NOT NULL", false: "nullable"}[c.notNull]
	})
	out.Columns.DefaultChanged = cmpChanged(sc.columns, tc.columns, func(c cmpColumn) string {
		if c.dflt == "" {
			return "no default"
		}
		return c.dflt
	})

	out.Indexes.Missing, out.Indexes.Extra = cmpOneSided(sc.indexes, tc.indexes)
	out.Indexes.Changed = cmpChanged(sc.indexes, tc.indexes, func(i cmpIndex) string { return i.def })
	out.Indexes.Invalid = cmpKeys(cmpFilter(tc.indexes, func(i cmpIndex) bool { return !i.valid }))
	for k, i := range tc.indexes {
		if s, ok := sc.indexes[k]; ok && s.valid != i.valid {
			equal = false
		}
	}

	plain := func(c *cmpCatalog) map[string]cmpConstraint {
		return cmpFilter(c.constraints, func(k cmpConstraint) bool { return !k.foreign })
	}
	fkeys := func(c *cmpCatalog) map[string]cmpConstraint {
		return cmpFilter(c.constraints, func(k cmpConstraint) bool { return k.foreign })
	}
	// Validity is part of the definition compared: a constraint validated on
	// the source but NOT VALID on the target has unchecked rows there.
	def := func(k cmpConstraint) string {
		if !k.validated {
			return k.def + " NOT VALID"
		}
		return k.def
	}
	out.Constraints.Missing, out.Constraints.Extra = cmpOneSided(plain(sc), plain(tc))
	out.Constraints.Changed = cmpChanged(plain(sc), plain(tc), def)
	out.Constraints.NotValid = cmpKeys(cmpFilter(tc.constraints, func(k cmpConstraint) bool { return !k.validated }))
	for k, c := range tc.constraints {
		if s, ok := sc.constraints[k]; ok && s.validated != c.validated {
			equal = false
		}
	}
	out.ForeignKeys.Missing, out.ForeignKeys.Extra = cmpOneSided(fkeys(sc), fkeys(tc))
	out.ForeignKeys.Changed = cmpChanged(fkeys(sc), fkeys(tc), def)

	for _, key := range cmpUnion(sc.sequences, tc.sequences) {
		s, onSource := sc.sequences[key]
		t, onTarget := tc.sequences[key]
		seq := CompareSequence{Schema: s.schema, Name: s.name}
		if !onSource {
			seq.Schema, seq.Name = t.schema, t.name
		}
		if onSource {
			seq.SourceValue = &s.value
		}
		if onTarget {
			seq.TargetValue = &t.value
		}
		out.Sequences = append(out.Sequences, seq)
		switch {
		case !onSource:
			equal = false
		case !onTarget:
			out.SequencesBehind = append(out.SequencesBehind, key+": missing on the target")
		case s.increment > 0 && t.value < s.value, s.increment < 0 && t.value > s.value:
			out.SequencesBehind = append(out.SequencesBehind, fmt.Sprintf("%s: %d on the target, %d on the source", key, t.value, s.value))
		case t.value != s.value:
			equal = false // ahead: harmless, but not equal
		}
	}

	out.Extensions.Missing, out.Extensions.Extra = cmpOneSided(sc.extensions, tc.extensions)
	out.Extensions.Changed = cmpChanged(sc.extensions, tc.extensions, func(v string) string { return v })

	views := func(c *cmpCatalog) map[string]cmpRelation {
		return cmpFilter(c.relations, func(r cmpRelation) bool { return !r.isTable() })
	}
	out.Views.Missing, out.Views.Extra = cmpOneSided(views(sc), views(tc))

	// A role's settings count only where both servers have the role: the
	// roles of a managed service are its own (Heroku's u..., RDS's master
	// user), and copy names the statements for the others.
	settings := func(c, other *cmpCatalog) map[string]pgkit.DBSetting {
		return cmpFilter(c.settings, func(s pgkit.DBSetting) bool { return s.Role == "" || other.roles[s.Role] })
	}
	ss, ts := settings(sc, tc), settings(tc, sc)
	missing, extra := cmpOneSided(ss, ts)
	out.Settings.Missing, out.Settings.Extra = cmpSettingList(missing, ss), cmpSettingList(extra, ts)
	out.Settings.Changed = cmpChanged(ss, ts, func(s pgkit.DBSetting) string { return strings.TrimPrefix(s.Assignment(), s.Name+" = ") })

	for _, l := range [][]string{
		out.Mismatched, out.Columns.Missing, out.Columns.Extra, out.Columns.TypeChanged, out.Columns.NotNullChanged,
		out.Columns.DefaultChanged, out.Indexes.Missing, out.Indexes.Extra, out.Indexes.Changed,
		out.Constraints.Missing, out.Constraints.Extra, out.Constraints.Changed,
		out.ForeignKeys.Missing, out.ForeignKeys.Extra, out.ForeignKeys.Changed, out.SequencesBehind,
		out.Extensions.Missing, out.Extensions.Extra, out.Extensions.Changed, out.Views.Missing, out.Views.Extra,
		out.Settings.Missing, out.Settings.Extra, out.Settings.Changed,
	} {
		equal = equal && len(l) == 0
	}
	out.Equal = equal
	return out
}

// cmpSettingList writes settings by key as "search_path = ..." or
// "role alice: work_mem = '64MB'".
func cmpSettingList(keys []string, m map[string]pgkit.DBSetting) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		s := m[k]
		out[i] = s.Assignment()
		if s.Role != "" {
			out[i] = "role " + s.Role + ": " + out[i]
		}
	}
	return out
}

// cmpOneSided returns the keys only src has and those only tgt has, sorted.
func cmpOneSided[V any](src, tgt map[string]V) (missing, extra []string) {
	missing, extra = []string{}, []string{}
	for k := range src {
		if _, ok := tgt[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range tgt {
		if _, ok := src[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// cmpChanged lists the keys on both sides whose describe differs, with both.
func cmpChanged[V any](src, tgt map[string]V, describe func(V) string) []string {
	out := []string{}
	for _, k := range cmpKeys(src) {
		t, ok := tgt[k]
		if !ok {
			continue
		}
		if s, t := describe(src[k]), describe(t); s != t {
			out = append(out, fmt.Sprintf("%s: %s on the source, %s on the target", k, s, t))
		}
	}
	return out
}

func cmpFilter[V any](m map[string]V, keep func(V) bool) map[string]V {
	out := map[string]V{}
	for k, v := range m {
		if keep(v) {
			out[k] = v
		}
	}
	return out
}

func cmpKeys[V any](m map[string]V) []string {
	return append([]string{}, slices.Sorted(maps.Keys(m))...) // never nil
}

func cmpUnion[V any](a, b map[string]V) []string {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return cmpKeys(u)
}
