package blockindex

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// synthetic returns a list of n names like the ones national lists hold.
func synthetic(n int) *blocklist.List {
	l := &blocklist.List{Header: blocklist.Header{Name: "synthetic"}, Entries: make([]blocklist.Entry, n)}
	for i := range l.Entries {
		e := blocklist.Entry{Name: fmt.Sprintf("site%07d.host%03d.example", i, i%997)}
		if i%2 == 0 {
			e.Order, e.Category = fmt.Sprintf("ORDER-2026-%04d", i%5000), "csam"
		}
		l.Entries[i] = e
	}
	return l
}

func BenchmarkBuild1M(b *testing.B) {
	l := synthetic(1_000_000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build([]*blocklist.List{l}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	ix, err := Build([]*blocklist.List{synthetic(1_000_000)})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		"site0123456.host555.example.",         // listed, 3 labels
		"www.cdn.site0123456.host555.example.", // below a listed name, 5 labels
		"www.unlisted.test.",                   // not listed
		"a.b.c.d.e.unlisted.test.",             // not listed, 7 labels
	} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix.Lookup(q)
			}
		})
	}
}

// BenchmarkSortRecords compares Build's radix sort with a comparison sort of
// the same 1 M records, in the same run.
func BenchmarkSortRecords(b *testing.B) {
	orig := make([]record, 1_000_000)
	for i := range orig {
		h, _ := hashName(fmt.Sprintf("site%07d.host%03d.example", i, i%997))
		orig[i] = record{key: h.key(), check: uint32(h.h2)}
	}
	a := make([]record, len(orig))
	b.Run("radix", func(b *testing.B) {
		for b.Loop() {
			copy(a, orig)
			sortRecords(a)
		}
	})
	b.Run("pdqsort", func(b *testing.B) {
		for b.Loop() {
			copy(a, orig)
			slices.SortFunc(a, func(x, y record) int { return cmp.Compare(x.key, y.key) })
		}
	})
}
