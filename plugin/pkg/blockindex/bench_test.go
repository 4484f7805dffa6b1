package blockindex

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

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
	n := 1_000_000
	if os.Getenv("REGBLOCK_BENCH_10M") != "" {
		n = 10_000_000 // an index of 290 MB: most lookups miss the TLB
	}
	ix, err := Build([]*blocklist.List{synthetic(n)})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]string, 4096) // listed names all over the index
	for i := range random {
		j := rng.IntN(n)
		random[i] = fmt.Sprintf("site%07d.host%03d.example.", j, j%997)
	}
	b.Run("random-listed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ix.Lookup(random[i%len(random)])
			i++
		}
	})
	unlisted := make([]string, 4096) // most names pass: a lookup's cost is a miss's
	for i := range unlisted {
		unlisted[i] = fmt.Sprintf("www.unlisted%04d.test.", i)
	}
	b.Run("random-unlisted", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ix.Lookup(unlisted[i%len(unlisted)])
			i++
		}
	})
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

// BenchmarkSortRecords compares Build's in-place radix sort with a
// comparison sort of the same 1 M records, in the same run.
func BenchmarkSortRecords(b *testing.B) {
	orig := make([]record, 1_000_000)
	for i := range orig {
		h, _, _ := hashName(fmt.Sprintf("site%07d.host%03d.example", i, i%997))
		orig[i] = record{key: h.key(), check: uint32(h.h2)}
	}
	a := make([]record, len(orig))
	b.Run("inplace-radix", func(b *testing.B) {
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

// prefixList returns a list of n address entries: with spread false, the
// lengths lists use most (/24 and /32, /48 and /128); with spread true, every
// IPv4 length from /8 to /32, the most probes a lookup can need there.
func prefixList(n int, spread bool) *blocklist.List {
	rng := rand.New(rand.NewPCG(5, 6))
	l := &blocklist.List{Header: blocklist.Header{Name: "prefixes"}, Entries: make([]blocklist.Entry, n)}
	for i := range l.Entries {
		var prefix netip.Prefix
		if i%4 == 3 {
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8}
			binary.BigEndian.PutUint64(a[8:], rng.Uint64())
			prefix, _ = netip.AddrFrom16(a).Prefix([]int{48, 128}[i%2])
		} else {
			bits := []int{24, 32}[i%2]
			if spread {
				bits = 8 + i%25
			}
			prefix, _ = netip.AddrFrom4([4]byte{10 + byte(rng.IntN(200)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}).Prefix(bits)
		}
		l.Entries[i] = blocklist.Entry{Prefix: prefix, Order: "ORDER-1"}
	}
	return l
}

func BenchmarkLookupAddr(b *testing.B) {
	for _, spread := range []bool{false, true} {
		ix, err := Build([]*blocklist.List{prefixList(100_000, spread)})
		if err != nil {
			b.Fatal(err)
		}
		hit := ix.lists[0].list.Entries[0].Prefix.Addr()
		for _, addr := range []netip.Addr{netip.MustParseAddr("2.0.0.7"), netip.MustParseAddr("2001:db9::7"), hit} {
			what := "miss" // every length is probed
			if addr == hit {
				what = "hit"
			}
			b.Run(fmt.Sprintf("100k/spread=%v/%s/%s", spread, what, addr), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ix.LookupAddr("www.example.", addr)
				}
			})
		}
	}
}

// BenchmarkLookupOverlay compares, in one run, lookups in a list's index
// as loaded and in the same index after a delta of 1,000 added names (an
// overlay): the cost the overlay adds to each query.
func BenchmarkLookupOverlay(b *testing.B) {
	n := 1_000_000
	if os.Getenv("REGBLOCK_BENCH_10M") != "" {
		n = 10_000_000
	}
	l := synthetic(n)
	base, err := Compile(l)
	if err != nil {
		b.Fatal(err)
	}
	next := *l
	next.Entries = nil
	d := &blocklist.Delta{List: &next}
	sum := base.sum
	for i := range 1000 {
		e := blocklist.Entry{Name: fmt.Sprintf("added%04d.host%03d.example", i, i%997), Order: "ORDER-2026-9999", Category: "csam"}
		v, err := valueOf(e)
		if err != nil {
			b.Fatal(err)
		}
		sum.add(v)
		d.Added = append(d.Added, e)
	}
	d.Checksum = sum.bytes()
	over, err := base.Apply(d)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]string, 4096)
	for i := range random {
		j := rng.IntN(n)
		random[i] = fmt.Sprintf("site%07d.host%03d.example.", j, j%997)
	}
	// Most queries pass: names none of the list's records share a suffix
	// with below the TLD, drawn from more than the caches hold, so that
	// each probes the table where memory has to be read.
	unlisted := make([]string, 1<<18)
	for i := range unlisted {
		j := rng.IntN(n)
		unlisted[i] = fmt.Sprintf("www.site%07d.host%03d.test.", j, j%997)
	}
	queries := []struct {
		name  string
		names []string
	}{
		{"random-listed", random},
		{"random-unlisted", unlisted},
		{"www.cdn.site0123456.host555.example.", []string{"www.cdn.site0123456.host555.example."}},
		{"a.b.c.d.e.unlisted.test.", []string{"a.b.c.d.e.unlisted.test."}},
	}
	var ixs [2]*Index // as loaded, and with the overlay
	for k, li := range []*ListIndex{base, over} {
		if ixs[k], err = New([]*ListIndex{li}); err != nil {
			b.Fatal(err)
		}
		for _, q := range queries {
			b.Run([]string{"loaded", "overlay"}[k]+"/"+q.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					ixs[k].Lookup(q.names[i%len(q.names)])
					i++
				}
			})
		}
	}
	for _, q := range queries {
		b.Run("by-turns/"+q.name, func(b *testing.B) { lookupsByTurns(b, ixs, q.names) })
	}
}

// lookupsByTurns looks names up in ixs[0] and ixs[1] by turns, 64 at a
// time, the first index first on one turn and second on the next, so
// that both see the same machine (this one is shared and noisy), and
// reports the time a lookup took in each and their ratio. The two draw
// from opposite halves of names, so that neither finds the table's memory
// warmed by the other's last turn.
func lookupsByTurns(b *testing.B, ixs [2]*Index, names []string) {
	const turn = 64
	var spent [2]time.Duration
	i := 0
	for b.Loop() {
		for t := range 2 {
			k := (t + i/turn) % 2
			start, from := time.Now(), i+k*len(names)/2
			for j := range turn {
				ixs[k].Lookup(names[(from+j)%len(names)])
			}
			spent[k] += time.Since(start)
		}
		i += turn
	}
	lookups := float64(b.N * turn)
	b.ReportMetric(float64(spent[0].Nanoseconds())/lookups, "loaded-ns/lookup")
	b.ReportMetric(float64(spent[1].Nanoseconds())/lookups, "overlay-ns/lookup")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "overlay/loaded")
}

// BenchmarkNameListedManyTimes looks up, in a list that also holds a name
// listed 100 000 times (=many.example under as many order references),
// that name, a name below it (which passes all its records of a kind
// that does not apply), and a name listed once; applies a delta that
// removes the 1 000 claims that sort first, and looks up again. A lookup
// should cost about the same whichever the name.
func BenchmarkNameListedManyTimes(b *testing.B) {
	const n = 100_000
	l := synthetic(100_000)
	for i := range n {
		l.Entries = append(l.Entries, blocklist.Entry{Kind: blocklist.Exact, Name: "many.example", Order: fmt.Sprintf("ORDER-%06d", n-i)})
	}
	li, err := Compile(l)
	if err != nil {
		b.Fatal(err)
	}
	ix, err := New([]*ListIndex{li})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"site0000001.host001.example.", "many.example.", "www.many.example."} {
		b.Run("lookup/"+q, func(b *testing.B) {
			for b.Loop() {
				ix.Lookup(q)
			}
		})
	}
	// The delta removes the claims that sort first: a lookup after it
	// takes the first one left.
	d := &blocklist.Delta{List: &blocklist.List{Header: l.Header}}
	for i := range 1000 {
		d.Removed = append(d.Removed, blocklist.Entry{Kind: blocklist.Exact, Name: "many.example", Order: fmt.Sprintf("ORDER-%06d", 1+i)})
	}
	next := slices.DeleteFunc(slices.Clone(l.Entries), func(e blocklist.Entry) bool {
		var k int
		fmt.Sscanf(e.Order, "ORDER-%d", &k)
		return e.Name == "many.example" && k <= 1000
	})
	if d.Checksum, err = ChecksumOf(next); err != nil {
		b.Fatal(err)
	}
	b.Run("delta-removing-1000", func(b *testing.B) {
		for b.Loop() {
			if _, err := li.Apply(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	applied, err := li.Apply(d)
	if err != nil {
		b.Fatal(err)
	}
	if ix, err = New([]*ListIndex{applied}); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"site0000001.host001.example.", "many.example."} {
		b.Run("lookup-after-delta/"+q, func(b *testing.B) {
			for b.Loop() {
				ix.Lookup(q)
			}
		})
	}
}
