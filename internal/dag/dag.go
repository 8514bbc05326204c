// Package dag is a small directed acyclic graph of string-named vertices.
//
// It knows nothing about plans or steps: vertices are names, an edge says
// "this vertex depends on that one". Order is deterministic: vertices keep the
// order they were added in, so waves and cycles print the same way every run.
package dag

import (
	"fmt"
	"sort"
	"strings"
)

// Graph holds vertices and their dependency edges.
type Graph struct {
	names []string
	index map[string]int
	deps  []map[int]struct{} // deps[v]: the vertices v depends on
	users []map[int]struct{} // users[v]: the vertices that depend on v
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{index: map[string]int{}}
}

// Add adds a vertex; adding an existing vertex is a no-op.
func (g *Graph) Add(name string) {
	if _, ok := g.index[name]; ok {
		return
	}
	g.index[name] = len(g.names)
	g.names = append(g.names, name)
	g.deps = append(g.deps, map[int]struct{}{})
	g.users = append(g.users, map[int]struct{}{})
}

// Has reports whether the vertex exists.
func (g *Graph) Has(name string) bool {
	_, ok := g.index[name]
	return ok
}

// DependOn records that v depends on dep. Both must have been added.
func (g *Graph) DependOn(v, dep string) error {
	vi, ok := g.index[v]
	if !ok {
		return fmt.Errorf("dag: unknown vertex %q", v)
	}
	di, ok := g.index[dep]
	if !ok {
		return fmt.Errorf("dag: unknown vertex %q", dep)
	}
	g.deps[vi][di] = struct{}{}
	g.users[di][vi] = struct{}{}
	return nil
}

// Vertices returns every vertex in insertion order.
func (g *Graph) Vertices() []string {
	return append([]string(nil), g.names...)
}

// Len returns the number of vertices.
func (g *Graph) Len() int { return len(g.names) }

// Deps returns the direct dependencies of v in insertion order.
func (g *Graph) Deps(v string) []string {
	vi, ok := g.index[v]
	if !ok {
		return nil
	}
	return g.sortedNames(g.deps[vi])
}

// Users returns the vertices that depend directly on v, in insertion order.
func (g *Graph) Users(v string) []string {
	vi, ok := g.index[v]
	if !ok {
		return nil
	}
	return g.sortedNames(g.users[vi])
}

func (g *Graph) sortedNames(set map[int]struct{}) []string {
	ids := make([]int, 0, len(set))
	for i := range set {
		ids = append(ids, i)
	}
	sort.Ints(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = g.names[id]
	}
	return out
}

// Edges returns every (dependency, dependent) pair, ordered by dependent then dependency.
func (g *Graph) Edges() [][2]string {
	var out [][2]string
	for vi, name := range g.names {
		for _, dep := range g.sortedNames(g.deps[vi]) {
			out = append(out, [2]string{dep, name})
		}
	}
	return out
}

// Ancestors returns v and everything it depends on, directly or not.
func (g *Graph) Ancestors(v string) map[string]bool {
	seen := map[string]bool{}
	vi, ok := g.index[v]
	if !ok {
		return seen
	}
	stack := []int{vi}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[g.names[cur]] {
			continue
		}
		seen[g.names[cur]] = true
		for d := range g.deps[cur] {
			stack = append(stack, d)
		}
	}
	return seen
}

// Cycles returns one cycle per strongly connected component that has one,
// each as a path that starts and ends on the same vertex
// (["step.a", "step.b", "step.a"]). An empty result means the graph is acyclic.
func (g *Graph) Cycles() [][]string {
	var cycles [][]string
	for _, comp := range g.components() {
		if len(comp) == 1 {
			v := comp[0]
			if _, self := g.deps[v][v]; !self {
				continue
			}
			cycles = append(cycles, []string{g.names[v], g.names[v]})
			continue
		}
		cycles = append(cycles, g.cycleWithin(comp))
	}
	return cycles
}

// components is Tarjan's strongly connected components algorithm, iterative so
// that a 100,000-step chain cannot overflow the stack.
func (g *Graph) components() [][]int {
	n := len(g.names)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var comps [][]int
	next := 0
	type frame struct {
		v    int
		deps []int
		pos  int
	}
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		work := []frame{{v: root, deps: sortedKeys(g.deps[root])}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(work) > 0 {
			top := &work[len(work)-1]
			if top.pos < len(top.deps) {
				w := top.deps[top.pos]
				top.pos++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					work = append(work, frame{v: w, deps: sortedKeys(g.deps[w])})
				} else if onStack[w] && index[w] < low[top.v] {
					low[top.v] = index[w]
				}
				continue
			}
			v := top.v
			work = work[:len(work)-1]
			if len(work) > 0 && low[v] < low[work[len(work)-1].v] {
				low[work[len(work)-1].v] = low[v]
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				sort.Ints(comp)
				comps = append(comps, comp)
			}
		}
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i][0] < comps[j][0] })
	return comps
}

// cycleWithin finds a simple cycle through the first vertex of a strongly
// connected component, by breadth-first search inside the component.
func (g *Graph) cycleWithin(comp []int) []string {
	in := map[int]bool{}
	for _, v := range comp {
		in[v] = true
	}
	start := comp[0]
	prev := map[int]int{}
	queue := []int{start}
	visited := map[int]bool{start: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range sortedKeys(g.deps[cur]) {
			if !in[d] {
				continue
			}
			if d == start {
				path := []int{start}
				for at := cur; at != start; at = prev[at] {
					path = append(path, at)
				}
				path = append(path, start)
				// path runs start <- ... <- start along dependency edges;
				// print it in "depends on" order: a -> b means a depends on b.
				names := make([]string, len(path))
				for i, v := range path {
					names[len(path)-1-i] = g.names[v]
				}
				return names
			}
			if !visited[d] {
				visited[d] = true
				prev[d] = cur
				queue = append(queue, d)
			}
		}
	}
	return []string{g.names[start], g.names[start]}
}

func sortedKeys(set map[int]struct{}) []int {
	out := make([]int, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// Waves groups the vertices into layers that can run together: every vertex's
// dependencies are in earlier waves. It fails on a cycle.
func (g *Graph) Waves() ([][]string, error) {
	if cycles := g.Cycles(); len(cycles) > 0 {
		return nil, fmt.Errorf("dependency cycle: %s", strings.Join(cycles[0], " -> "))
	}
	remaining := make([]int, len(g.names))
	var current []int
	for i := range g.names {
		remaining[i] = len(g.deps[i])
		if remaining[i] == 0 {
			current = append(current, i)
		}
	}
	var waves [][]string
	for len(current) > 0 {
		sort.Ints(current)
		wave := make([]string, len(current))
		var next []int
		for i, v := range current {
			wave[i] = g.names[v]
			for u := range g.users[v] {
				remaining[u]--
				if remaining[u] == 0 {
					next = append(next, u)
				}
			}
		}
		waves = append(waves, wave)
		current = next
	}
	return waves, nil
}
