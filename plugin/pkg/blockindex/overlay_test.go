package blockindex

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// reparse returns a list of l's name with another serial, canary and entries.
func reparse(t testing.TB, l *blocklist.List, serial int, canary string, entries []blocklist.Entry) *blocklist.List {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "#! regblock-list 1\n#! name: %s\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\n", l.Name, serial)
	if l.Hashed() {
		fmt.Fprintf(&b, "#! hashed: sha256 %x\n", l.Salt)
	}
	if canary != "" {
		fmt.Fprintf(&b, "#! canary: %s\n", canary)
	}
	for _, e := range entries {
		b.WriteString(e.Text() + "\n")
	}
	next, err := blocklist.Parse(l.Name+".list", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// delta is the delta from old to next with its checksum, as the toolkit
// makes it.
func delta(t testing.TB, old, next *blocklist.List) *blocklist.Delta {
	t.Helper()
	d, err := blocklist.MakeDelta(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if d.Checksum, err = ChecksumOf(next.Entries); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDeltaAgreesWithReference applies chains of random deltas, to plain
// and hashed lists (or diffs the next version against the one in force,
// as a whole reload of a list in force does), and checks every lookup, before and after compaction,
// against the reference rule on the list the chain ends with, and the
// checksum against that of a whole compile.
func TestDeltaAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	name := func(max int) string { return blocklisttest.NestingName(rng, max) }
	prefixes := []string{"", "*.", "=", "!", "!=", "!*."}
	orders := []string{"-", "ORDER-1", "ORDER-2", "ORDER-1 csam", "ORDER-2 court"}
	entry := func() string {
		return prefixes[rng.IntN(len(prefixes))] + name(3) + " " + orders[rng.IntN(len(orders))]
	}
	canaries := []string{"", "canary.a.test", "canary.b.test"}
	blockedNet := netip.MustParseAddr("203.0.113.5")
	for round := range 1000 {
		hashed := rng.IntN(2) == 0
		diffs := rng.IntN(2) == 0 // a differ takes no address entries
		var b strings.Builder
		if !hashed && !diffs {
			b.WriteString("ip:203.0.113.0/24 ORDER-IP\n") // kept by every delta; name exceptions lift it
		}
		for range rng.IntN(10) {
			b.WriteString(entry() + "\n")
		}
		plain := parse(t, "l", b.String())
		plain = reparse(t, plain, 1, canaries[rng.IntN(3)], plain.Entries)
		index := func(l *blocklist.List) *blocklist.List {
			if !hashed {
				return l
			}
			h, err := blocklist.Hash(l, make([]byte, blocklist.SaltSize))
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		li, err := Compile(index(plain))
		if err != nil {
			t.Fatal(err)
		}
		for step := range 1 + rng.IntN(3) {
			var entries []blocklist.Entry
			for _, e := range plain.Entries {
				if e.Prefix.IsValid() || rng.IntN(3) > 0 {
					entries = append(entries, e)
				}
			}
			for range rng.IntN(4) {
				entries = append(entries, parse(t, "l", entry()+"\n").Entries...)
			}
			if len(entries) > 0 && rng.IntN(4) == 0 { // a line listed twice
				if e := entries[rng.IntN(len(entries))]; !e.Prefix.IsValid() {
					entries = append(entries, e)
				}
			}
			next := reparse(t, plain, 2+step, canaries[rng.IntN(3)], entries)
			if diffs && rng.IntN(2) == 0 {
				differ := NewDiffer(li, 1<<20)
				for _, e := range index(next).Entries {
					differ.Add(e)
				}
				if li, err = differ.Finish(index(next)); err != nil {
					t.Fatalf("round %d step %d: diff: %v", round, step, err)
				}
			} else if li, err = li.Apply(delta(t, index(plain), index(next))); err != nil {
				t.Fatalf("round %d step %d: %v", round, step, err)
			}
			if rng.IntN(3) == 0 { // as the set does when an overlay grows
				li = li.Compact()
			}
			plain = next
		}
		whole, err := Compile(index(plain))
		if err != nil {
			t.Fatal(err)
		}
		if li.Checksum() != whole.Checksum() {
			t.Fatalf("round %d: checksum after deltas %s, whole compile %s", round, li.Checksum(), whole.Checksum())
		}
		wholeIdx, err := New([]*ListIndex{whole})
		if err != nil {
			t.Fatal(err)
		}
		for _, ix := range []*ListIndex{li, li.Compact()} {
			idx, err := New([]*ListIndex{ix})
			if err != nil {
				t.Fatal(err)
			}
			for range 40 {
				q := name(5) + "."
				if rng.IntN(8) == 0 {
					q = canaries[1+rng.IntN(2)] + "."
				}
				wantPattern := ""
				if _, p := reference([]*blocklist.List{plain}, q); p != "" {
					wantPattern = p
				}
				if plain.Canary != "" && q == plain.Canary+"." {
					wantPattern = "=" + plain.Canary
				}
				m, ok := idx.Lookup(q)
				gotPattern := ""
				if ok {
					gotPattern = m.Kind.Prefix() + strings.ToLower(q[m.Start:len(q)-1])
					if m.List != ix.list {
						t.Fatalf("round %d: match names list %p, not the version in force", round, m.List)
					}
				}
				if gotPattern != wantPattern {
					t.Logf("entries: %v canary %q; index %v", plain.Entries, plain.Canary, ix)
					t.Fatalf("round %d (hashed %v): Lookup(%q) = %q, reference says %q", round, hashed, q, gotPattern, wantPattern)
				}
				// The entry that decides is the one a whole compile picks:
				// the same order reference and category.
				if wm, wok := wholeIdx.Lookup(q); ok != wok || ok && (m.Order != wm.Order || m.Category != wm.Category || m.Kind != wm.Kind) {
					t.Logf("entries: %v", plain.Entries)
					t.Fatalf("round %d (hashed %v): Lookup(%q) = %+v after deltas, %+v after a whole compile", round, hashed, q, m, wm)
				}
				// The address path decides with the same entries.
				_, gotAddr := idx.LookupAddr(q, blockedNet)
				if _, wantAddr := wholeIdx.LookupAddr(q, blockedNet); gotAddr != wantAddr {
					t.Logf("entries: %v", plain.Entries)
					t.Fatalf("round %d: LookupAddr(%q, %v) = %v after deltas, %v after a whole compile", round, q, blockedNet, gotAddr, wantAddr)
				}
			}
		}
		if li.Compact().OverlayLen() != 0 {
			t.Fatal("compacted index keeps an overlay")
		}
	}
}

func TestDeltaMismatch(t *testing.T) {
	old := parse(t, "l", "a.example ORDER-1\nb.example\n")
	next := parse(t, "l", "b.example\nc.example\n")
	next = reparse(t, next, 2, "", next.Entries)
	li, err := Compile(old)
	if err != nil {
		t.Fatal(err)
	}

	d := delta(t, old, next)
	d.Checksum[0] ^= 1
	if _, err := li.Apply(d); result.Of(err) != result.DeltaMismatch || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("wrong checksum: %v", err)
	}

	// An entry removed that the version in force does not hold as written
	// (another order reference).
	d = delta(t, old, next)
	d.Removed[0].Order = "ORDER-2"
	if _, err := li.Apply(d); result.Of(err) != result.DeltaMismatch || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("absent entry removed: %v", err)
	}

	// A duplicate removed twice.
	dup := parse(t, "l", "a.example\na.example\n")
	one := reparse(t, dup, 2, "", dup.Entries[:1])
	none := reparse(t, dup, 3, "", nil)
	li, _ = Compile(dup)
	if li, err = li.Apply(delta(t, dup, one)); err != nil {
		t.Fatal(err)
	}
	if m, ok := mustIndex(t, li).Lookup("a.example."); !ok || m.Kind != blocklist.Subtree {
		t.Errorf("one of two duplicates removed: a.example passes")
	}
	if li, err = li.Apply(delta(t, one, none)); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustIndex(t, li).Lookup("a.example."); ok {
		t.Errorf("both duplicates removed: a.example still blocked")
	}
	if li.OverlayLen() != 2 {
		t.Errorf("OverlayLen = %d, want 2", li.OverlayLen())
	}
	if _, err := li.Apply(delta(t, one, none)); result.Of(err) != result.DeltaMismatch {
		t.Errorf("a duplicate removed once more than it was held: %v", err)
	}
}

func mustIndex(t testing.TB, li *ListIndex) *Index {
	t.Helper()
	ix, err := New([]*ListIndex{li})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// diff diffs next against li with the given limit.
func diff(li *ListIndex, next *blocklist.List, limit int) (*ListIndex, error) {
	d := NewDiffer(li, limit)
	for _, e := range next.Entries {
		d.Add(e)
	}
	return d.Finish(next)
}

// TestDiffGivesUp checks that a differ keeps the records it diffs against
// and gives up, for the caller to compile the version, on what an
// overlay should not take.
func TestDiffGivesUp(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "n%d.test\n", i)
	}
	base := parse(t, "l", b.String())
	li, err := Compile(base)
	if err != nil {
		t.Fatal(err)
	}
	// Three added, two removed: an overlay of five on the same records.
	small := reparse(t, base, 2, "", append(base.Entries[2:], parse(t, "l", "x.test\ny.test\nz.test\n").Entries...))
	got, err := diff(li, small, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got.OverlayLen() != 5 || &got.recs[0] != &li.recs[0] {
		t.Errorf("diffed: %v, sharing the base records %v; want an overlay of 5 on them", got, &got.recs[0] == &li.recs[0])
	}
	if ix := mustIndex(t, got); !blocked(ix, "z.test.") || blocked(ix, "n1.test.") || !blocked(ix, "n2.test.") {
		t.Error("the diffed index does not answer as the new version")
	}
	if _, err := diff(li, small, 4); err != ErrTooDifferent {
		t.Errorf("five changes against a limit of four: %v, want ErrTooDifferent", err)
	}
	// The canary is the header's: kept, it is no change.
	withCanary, err := Compile(reparse(t, base, 1, "canary.test", base.Entries))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := diff(withCanary, reparse(t, base, 2, "canary.test", small.Entries), 5); err != nil || got.OverlayLen() != 5 {
		t.Errorf("five changes, the canary kept, against a limit of five: %v, %v; want an overlay of 5", got, err)
	}
	withIP := reparse(t, base, 2, "", append(base.Entries, parse(t, "l", "ip:192.0.2.0/24\n").Entries...))
	if _, err := diff(li, withIP, 1000); err != ErrTooDifferent {
		t.Errorf("an address entry: %v, want ErrTooDifferent", err)
	}
	salted, err := blocklist.Hash(base, make([]byte, blocklist.SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := diff(li, salted, 1000); err != ErrTooDifferent {
		t.Errorf("the version hashed: %v, want ErrTooDifferent", err)
	}
	ipli, err := Compile(withIP)
	if err != nil {
		t.Fatal(err)
	}
	if NewDiffer(ipli, 1000) != nil || NewDiffer(li, 0) != nil {
		t.Error("a differ against a list with address entries, or with no room for a change")
	}
}

func blocked(ix *Index, qname string) bool {
	_, ok := ix.Lookup(qname)
	return ok
}

// TestOverlayFilter checks the overlay's filter: every key of its records
// passes it (a key that did not would decide in the base records, and an
// added name would pass), and few others do (each that does costs a probe
// of the overlay's records).
func TestOverlayFilter(t *testing.T) {
	key := func(name string) uint64 {
		h, _, ok := hashName(name)
		if !ok {
			t.Fatalf("hashName(%q) failed", name)
		}
		return h.key()
	}
	for _, n := range []int{1, 1000, 70_000} {
		ov := &overlay{hidden: map[record]int32{}}
		for i := range n {
			ov.hidden[record{key: key(fmt.Sprintf("added%06d.example", i))}] = 1
		}
		ov.filter()
		for rec := range ov.hidden {
			if !ov.touches(rec.key) {
				t.Fatalf("%d keys: a key of the overlay does not pass its filter", n)
			}
		}
		const probes = 100_000
		passed := 0
		for i := range probes {
			if ov.touches(key(fmt.Sprintf("www.probe%06d.test", i))) {
				passed++
			}
		}
		if passed > probes/300 {
			t.Errorf("%d keys: %d of %d other keys pass the filter, want at most 1 in 300", n, passed, probes)
		}
		t.Logf("%d keys, %d KB: %d of %d other keys pass", n, len(ov.touched)/128, passed, probes)
	}
}

// TestAddressClaimsRenumbered checks that address entries keep their order
// references when the metas are numbered in claim order: at a compile,
// where the list's first reference sorts last, and at a compaction, where
// a delta brings one that sorts first.
func TestAddressClaimsRenumbered(t *testing.T) {
	base := parse(t, "l", "ip:192.0.2.0/24 ORDER-C\nip:198.51.100.0/24 ORDER-B\nb.test ORDER-B\n")
	li, err := Compile(base)
	if err != nil {
		t.Fatal(err)
	}
	next := reparse(t, base, 2, "", append(slices.Clone(base.Entries), parse(t, "l", "a.test ORDER-A\n").Entries...))
	applied, err := li.Apply(delta(t, base, next))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		li   *ListIndex
	}{{"compiled", li}, {"delta applied", applied}, {"compacted", applied.Compact()}} {
		ix := mustIndex(t, step.li)
		for addr, want := range map[string]string{"192.0.2.7": "ORDER-C", "198.51.100.7": "ORDER-B"} {
			m, ok := ix.LookupAddr("www.example.", netip.MustParseAddr(addr))
			if !ok || m.Order != want {
				t.Errorf("%s: LookupAddr(%s) = %q, %v; want %q", step.name, addr, m.Order, ok, want)
			}
		}
	}
}

// TestAddressListedTwice: of two lines for one prefix, the claim that
// sorts first speaks for it whatever the order of the lines, as for a
// name; an exception wins over either.
func TestAddressListedTwice(t *testing.T) {
	for _, tc := range []struct{ lines, want string }{
		{"ip:192.0.2.0/24 ORDER-Z zz\nip:192.0.2.0/24 ORDER-A aa\n", "ORDER-A aa"},
		{"ip:192.0.2.0/24 ORDER-A aa\nip:192.0.2.0/24 ORDER-Z zz\n", "ORDER-A aa"},
		{"ip:192.0.2.0/24 ORDER-A bb\nip:192.0.2.0/24 ORDER-A aa\n", "ORDER-A aa"},
		{"ip:192.0.2.0/24 ORDER-A aa\n!ip:192.0.2.0/24 ORDER-Z\nip:192.0.2.0/24 -\n", ""},
	} {
		li, err := Compile(parse(t, "l", tc.lines))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := mustIndex(t, li).LookupAddr("www.example.", netip.MustParseAddr("192.0.2.7"))
		if got := strings.TrimSpace(m.Order + " " + m.Category); !ok && tc.want != "" || ok && got != tc.want {
			t.Errorf("%q: LookupAddr = %q, %v; want %q", tc.lines, got, ok, tc.want)
		}
	}
}

// TestNameListedManyTimes lists one name thousands of times, under
// thousands of order references and three kinds, and checks that the
// claim that sorts first decides (the name, and a name below it), through
// deltas that remove claims one by one, the differ, and compaction, as a
// whole compile of each version decides.
func TestNameListedManyTimes(t *testing.T) {
	const n = 3000
	var b strings.Builder
	for i := n; i > 0; i-- { // the first line's claim sorts last
		fmt.Fprintf(&b, "=many.test ORDER-%05d\nmany.test ORDER-%05d\n*.many.test ORDER-%05d\n", i, i+1, i+2)
		if i%2 == 0 {
			fmt.Fprintf(&b, "=many.test ORDER-%05d\n", i) // listed twice alike
		}
	}
	base := parse(t, "l", b.String())
	li, err := Compile(base)
	if err != nil {
		t.Fatal(err)
	}
	cur := base
	for step, drop := range []int{0, 1, 2, 3, 5, 100} {
		// The version without the claims ORDER-1 to ORDER-drop (both
		// copies of a claim listed twice): the next claim decides.
		var entries []blocklist.Entry
		for _, e := range base.Entries {
			var k int
			fmt.Sscanf(e.Order, "ORDER-%d", &k)
			if k > drop {
				entries = append(entries, e)
			}
		}
		next := reparse(t, base, 2+step, "", entries)
		applied, err := li.Apply(delta(t, cur, next))
		if err != nil {
			t.Fatalf("drop %d: %v", drop, err)
		}
		diffed, err := diff(li, next, 1<<20)
		if err != nil {
			t.Fatalf("drop %d: differ: %v", drop, err)
		}
		whole, err := Compile(next)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []struct {
			name string
			li   *ListIndex
		}{{"whole", whole}, {"delta", applied}, {"compacted", applied.Compact()}, {"diffed", diffed}, {"diffed, compacted", diffed.Compact()}} {
			ix := mustIndex(t, v.li)
			// The name: its =many.test claims (ORDER-1 on) outrank its
			// subtree's; below it, the *.many.test ones (ORDER-3 on).
			for q, want := range map[string]int{"many.test.": drop + 1, "www.many.test.": max(3, drop+1)} {
				m, ok := ix.Lookup(q)
				if !ok || m.Order != fmt.Sprintf("ORDER-%05d", want) {
					t.Fatalf("drop %d, %s: Lookup(%s) = %q, %v; want ORDER-%05d", drop, v.name, q, m.Order, ok, want)
				}
			}
		}
		li, cur = applied, next
	}
}
