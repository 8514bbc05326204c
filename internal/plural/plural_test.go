package plural

import "testing"

func TestOf(t *testing.T) {
	for _, c := range []struct {
		n    int
		noun string
		want string
	}{
		{0, "table", "0 tables"},
		{1, "table", "1 table"},
		{2, "table", "2 tables"},
		{1, "index", "1 index"},
		{3, "index", "3 indexes"},
		{2, "batch", "2 batches"},
		{2, "large object", "2 large objects"},
		{2, "entry", "2 entries"},
		{2, "key", "2 keys"},
		{2, "status", "2 statuses"},
		{1, "chunk", "1 chunk"},
	} {
		if got := Of(c.n, c.noun); got != c.want {
			t.Errorf("Of(%d, %q) = %q, want %q", c.n, c.noun, got, c.want)
		}
	}
	if got := Of(int64(1), "row"); got != "1 row" {
		t.Errorf("Of(int64(1), row) = %q", got)
	}
	if got := Choose(1, "is", "are") + Choose(2, "is", "are"); got != "isare" {
		t.Errorf("Choose = %q", got)
	}
}
