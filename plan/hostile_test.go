package plan_test

import (
	"bufio"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planrun/planrun/plan"
)

// hostileInput is one entry of testdata/hostile/corpus.txt, generated.
type hostileInput struct {
	name, file string
	src        []byte
}

func hostileCorpus(t testing.TB) []hostileInput {
	f, err := os.Open("testdata/hostile/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hostileInput
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		in := hostileInput{name: fields[0], file: fields[1]}
		yaml := strings.HasSuffix(in.file, ".yaml")
		num := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s: %v", in.name, err)
			}
			return n
		}
		switch fields[2] {
		case "nest":
			open, closing, n := fields[3], fields[4], num(fields[5])
			value := strings.Repeat(open, n) + "1" + strings.Repeat(closing, n)
			if open == "!" { // prefix operators close with nothing
				value = strings.Repeat(open, n) + "true"
			}
			if yaml {
				in.src = []byte("steps:\n  s:\n    uses: exec\n    command: " + value + "\n")
			} else {
				in.src = []byte("locals {\n  x = " + value + "\n}\n")
			}
		case "garbage":
			in.src = make([]byte, num(fields[3]))
			rand.New(rand.NewSource(int64(num(fields[4])))).Read(in.src)
		case "control":
			var b strings.Builder
			for i := range num(fields[3]) {
				b.WriteString("step \"s" + strconv.Itoa(i) + "\x1b[31m\" { uses = \"exec\"\a }\n")
			}
			in.src = []byte(b.String())
		case "huge":
			n := num(fields[3])
			head := "step \"s\" {\n  uses    = \"exec\"\n  command = [\"true\"]\n}\n"
			in.src = []byte(head + strings.Repeat("# padding\n", (n-len(head))/10+1))
		default:
			t.Fatalf("%s: unknown kind %s", in.name, fields[2])
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("corpus: %v (%d entries)", err, len(out))
	}
	return out
}

// TestHostilePlans: every hostile input loads to errors with a position —
// no panic, no stack overflow — within generous bounds of time and
// memory (a hang or a blow-up fails; how fast is the benchmark's to say).
func TestHostilePlans(t *testing.T) {
	for _, in := range hostileCorpus(t) {
		t.Run(in.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), in.file)
			if err := os.WriteFile(path, in.src, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, diags := plan.Load(path, plan.Options{Types: testTypes(), Environ: []string{}})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if !diags.HasErrors() {
				t.Fatal("loaded without an error")
			}
			if d := diags[0]; d.Subject == nil || d.Subject.Start.Line < 1 {
				t.Errorf("the first error has no position: %s", d.Error())
			}
			if len(diags) > 50 {
				t.Errorf("%d diagnostics: a hostile file must get a few, not one per byte", len(diags))
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes: %v, %d MiB allocated, first error: %s", len(in.src), took, alloc>>20, diags[0].Summary)
			if took > 30*time.Second || alloc > 2<<30 {
				t.Errorf("took %v and %d MiB", took, alloc>>20)
			}
		})
	}
}

// BenchmarkHostilePlans prints how long each hostile input takes to be
// refused: go test ./plan -run '^$' -bench HostilePlans -benchtime 1x
func BenchmarkHostilePlans(b *testing.B) {
	for _, in := range hostileCorpus(b) {
		path := filepath.Join(b.TempDir(), in.file)
		if err := os.WriteFile(path, in.src, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				plan.Load(path, plan.Options{Types: testTypes(), Environ: []string{}})
			}
		})
	}
}
