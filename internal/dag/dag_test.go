package dag

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func build(t *testing.T, vertices []string, edges ...[2]string) *Graph {
	t.Helper()
	g := New()
	for _, v := range vertices {
		g.Add(v)
	}
	for _, e := range edges {
		if err := g.DependOn(e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func TestWaves(t *testing.T) {
	// dump and schema first; restore needs both; two checks after restore;
	// switch after both checks.
	g := build(t,
		[]string{"switch", "check.rows", "restore", "dump", "schema", "check.seq"},
		[2]string{"restore", "dump"}, [2]string{"restore", "schema"},
		[2]string{"check.rows", "restore"}, [2]string{"check.seq", "restore"},
		[2]string{"switch", "check.rows"}, [2]string{"switch", "check.seq"},
	)
	waves, err := g.Waves()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"dump", "schema"}, {"restore"}, {"check.rows", "check.seq"}, {"switch"}}
	if !reflect.DeepEqual(waves, want) {
		t.Fatalf("waves = %v, want %v", waves, want)
	}
}

func TestWavesKeepInsertionOrder(t *testing.T) {
	g := build(t, []string{"c", "a", "b"})
	for i := 0; i < 20; i++ { // map iteration must not leak into the order
		waves, err := g.Waves()
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]string{{"c", "a", "b"}}; !reflect.DeepEqual(waves, want) {
			t.Fatalf("waves = %v, want %v", waves, want)
		}
	}
}

func TestEmptyGraph(t *testing.T) {
	g := New()
	waves, err := g.Waves()
	if err != nil || len(waves) != 0 {
		t.Fatalf("Waves() = %v, %v", waves, err)
	}
	if c := g.Cycles(); len(c) != 0 {
		t.Fatalf("Cycles() = %v", c)
	}
}

func TestDependOnUnknownVertex(t *testing.T) {
	g := build(t, []string{"a"})
	if err := g.DependOn("a", "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("DependOn(a, nope) = %v", err)
	}
	if err := g.DependOn("nope", "a"); err == nil {
		t.Fatal("DependOn(nope, a) succeeded")
	}
}

func TestAddTwiceAndDuplicateEdges(t *testing.T) {
	g := build(t, []string{"a", "b", "a"}, [2]string{"b", "a"}, [2]string{"b", "a"})
	if g.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", g.Len())
	}
	if got := g.Edges(); !reflect.DeepEqual(got, [][2]string{{"a", "b"}}) {
		t.Fatalf("Edges() = %v", got)
	}
	if got := g.Deps("b"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("Deps(b) = %v", got)
	}
	if got := g.Users("a"); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("Users(a) = %v", got)
	}
	if g.Deps("nope") != nil || g.Users("nope") != nil {
		t.Fatal("Deps/Users of an unknown vertex are not nil")
	}
}

func TestCyclesInDependencyOrder(t *testing.T) {
	tests := []struct {
		name     string
		vertices []string
		edges    [][2]string
		want     [][]string
	}{
		{
			name:     "two",
			vertices: []string{"step.a", "step.b"},
			edges:    [][2]string{{"step.a", "step.b"}, {"step.b", "step.a"}},
			want:     [][]string{{"step.a", "step.b", "step.a"}},
		},
		{
			// a depends on b, b on c, c on a: printed in "depends on" order.
			name:     "three",
			vertices: []string{"step.a", "step.b", "step.c"},
			edges:    [][2]string{{"step.a", "step.b"}, {"step.b", "step.c"}, {"step.c", "step.a"}},
			want:     [][]string{{"step.a", "step.b", "step.c", "step.a"}},
		},
		{
			// the same cycle, declared in the other direction
			name:     "three reversed",
			vertices: []string{"step.a", "step.b", "step.c"},
			edges:    [][2]string{{"step.a", "step.c"}, {"step.c", "step.b"}, {"step.b", "step.a"}},
			want:     [][]string{{"step.a", "step.c", "step.b", "step.a"}},
		},
		{
			name:     "self",
			vertices: []string{"step.a", "step.b"},
			edges:    [][2]string{{"step.b", "step.b"}, {"step.b", "step.a"}},
			want:     [][]string{{"step.b", "step.b"}},
		},
		{
			name:     "two separate cycles and a tail",
			vertices: []string{"x", "a", "b", "c", "d"},
			edges: [][2]string{
				{"x", "a"}, // x is outside every cycle
				{"a", "b"}, {"b", "a"},
				{"c", "d"}, {"d", "c"},
			},
			want: [][]string{{"a", "b", "a"}, {"c", "d", "c"}},
		},
		{
			name:     "acyclic diamond",
			vertices: []string{"a", "b", "c", "d"},
			edges:    [][2]string{{"d", "b"}, {"d", "c"}, {"b", "a"}, {"c", "a"}},
			want:     nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(t, tt.vertices, tt.edges...)
			got := g.Cycles()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Cycles() = %v, want %v", got, tt.want)
			}
			for _, c := range got {
				// every arrow of the printed cycle is a real edge
				for i := 0; i+1 < len(c); i++ {
					if !contains(g.Deps(c[i]), c[i+1]) {
						t.Errorf("%s -> %s printed, but %s does not depend on %s", c[i], c[i+1], c[i], c[i+1])
					}
				}
			}
			_, err := g.Waves()
			if (err != nil) != (tt.want != nil) {
				t.Fatalf("Waves() error = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), strings.Join(tt.want[0], " -> ")) {
				t.Fatalf("Waves() error %q does not print the cycle %v", err, tt.want[0])
			}
		})
	}
}

func TestCycleIsShortest(t *testing.T) {
	// a -> b -> c -> d -> a, plus a shortcut b -> a: the cycle printed
	// through a is the short one.
	g := build(t, []string{"a", "b", "c", "d"},
		[2]string{"a", "b"}, [2]string{"b", "c"}, [2]string{"c", "d"}, [2]string{"d", "a"}, [2]string{"b", "a"})
	got := g.Cycles()
	if want := [][]string{{"a", "b", "a"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Cycles() = %v, want %v", got, want)
	}
}

func TestAncestors(t *testing.T) {
	g := build(t, []string{"a", "b", "c", "d", "e"},
		[2]string{"c", "a"}, [2]string{"c", "b"}, [2]string{"d", "c"}, [2]string{"e", "a"})
	got := g.Ancestors("d")
	want := map[string]bool{"d": true, "c": true, "a": true, "b": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Ancestors(d) = %v, want %v", got, want)
	}
	if got := g.Ancestors("a"); !reflect.DeepEqual(got, map[string]bool{"a": true}) {
		t.Fatalf("Ancestors(a) = %v", got)
	}
	if got := g.Ancestors("nope"); len(got) != 0 {
		t.Fatalf("Ancestors(nope) = %v", got)
	}
}

func TestLongChain(t *testing.T) {
	const n = 100_000
	g := New()
	for i := 0; i < n; i++ {
		g.Add(fmt.Sprintf("step.s%d", i))
		if i > 0 {
			if err := g.DependOn(fmt.Sprintf("step.s%d", i), fmt.Sprintf("step.s%d", i-1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waves, err := g.Waves()
	if err != nil {
		t.Fatal(err)
	}
	if len(waves) != n || waves[n-1][0] != fmt.Sprintf("step.s%d", n-1) {
		t.Fatalf("%d waves, last %v", len(waves), waves[len(waves)-1])
	}
	if got := len(g.Ancestors(fmt.Sprintf("step.s%d", n-1))); got != n {
		t.Fatalf("Ancestors of the last vertex: %d, want %d", got, n)
	}
	// Close the chain into one long cycle: found without overflowing the stack.
	if err := g.DependOn("step.s0", fmt.Sprintf("step.s%d", n-1)); err != nil {
		t.Fatal(err)
	}
	cycles := g.Cycles()
	if len(cycles) != 1 || len(cycles[0]) != n+1 {
		t.Fatalf("%d cycles, first of length %d", len(cycles), len(cycles[0]))
	}
	if cycles[0][0] != "step.s0" || cycles[0][1] != fmt.Sprintf("step.s%d", n-1) {
		t.Fatalf("cycle starts %v", cycles[0][:2])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
