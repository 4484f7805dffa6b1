package listset

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// entryRecorder is an indexer that keeps what it is given, cloning the strings
// as an indexer must.
type entryRecorder struct {
	got      []blocklist.Entry
	finished bool
}

func (r *entryRecorder) Add(e blocklist.Entry) {
	e.Name, e.Order, e.Category = strings.Clone(e.Name), strings.Clone(e.Order), strings.Clone(e.Category)
	r.got = append(r.got, e)
}

func (r *entryRecorder) Finish(*blocklist.List) (*blockindex.ListIndex, error) {
	r.finished = true
	return nil, nil
}

// TestPipeline hands a pipeline entries whose strings are in one buffer,
// overwritten after each Add as the parser's is, some as long as a line
// may be (so that a batch's text grows while strings point into it), and
// checks that the indexer got every entry, in order, as it was.
func TestPipeline(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 2*blocklist.MaxLine)
	aliased := func(s string, at int) string {
		if s == "" {
			return ""
		}
		copy(buf[at:], s)
		return unsafe.String(&buf[at], len(s))
	}
	for _, finish := range []bool{true, false} {
		r := &entryRecorder{}
		p := newPipeline(r)
		var want []blocklist.Entry
		for i := range 3000 {
			e := blocklist.Entry{Name: fmt.Sprintf("n%d.example", i), Line: i + 1, Kind: blocklist.Kind(i % 3)}
			switch i % 7 {
			case 0:
				e.Order, e.Category = fmt.Sprintf("ORDER-%d", i), "csam"
			case 1:
				e.Name = strings.Repeat("a", rng.IntN(blocklist.MaxLine-20)) + e.Name
			}
			want = append(want, e)
			handed := e
			handed.Name = aliased(e.Name, 0)
			handed.Order = aliased(e.Order, len(e.Name))
			handed.Category = aliased(e.Category, len(e.Name)+len(e.Order))
			p.Add(handed)
			for j := range buf {
				buf[j] = 'Q'
			}
		}
		if finish {
			p.Finish(nil)
		}
		p.close() // after Finish, or instead of it; twice does no harm
		p.close()
		if r.finished != finish {
			t.Errorf("indexer finished: %v, want %v", r.finished, finish)
		}
		if len(r.got) != len(want) {
			t.Fatalf("the indexer got %d entries, want %d", len(r.got), len(want))
		}
		for i := range want {
			if g, w := r.got[i], want[i]; g.Name != w.Name || g.Order != w.Order || g.Category != w.Category || g.Line != w.Line || g.Kind != w.Kind {
				t.Fatalf("entry %d: got %.40q line %d, want %.40q line %d", i, g.Name, g.Line, w.Name, w.Line)
			}
		}
	}
}
