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
)

// reference is the matching rule of docs/list-format.md written as plainly as possible:
// for each list, the entry on the longest matching name decides (at one name,
// != and !*. before = and *., those before !, ! before a plain name); the deepest blocking decision
// across lists wins, ties to the first list by name.
func reference(lists []*blocklist.List, qname string) (list string, pattern string) {
	qname = strings.ToLower(strings.TrimSuffix(qname, "."))
	bestDepth := -1
	sorted := slices.Clone(lists)
	slices.SortFunc(sorted, func(a, b *blocklist.List) int { return strings.Compare(a.Name, b.Name) })
	for _, l := range sorted {
		depth, decided, blocked, pat := -1, -1, false, ""
		for _, e := range l.Entries {
			self := e.Name == qname
			if !self && !strings.HasSuffix(qname, "."+e.Name) || !applies(e.Kind, self) {
				continue
			}
			d := strings.Count(e.Name, ".")
			if d > depth || d == depth && rank(e.Kind) < decided {
				depth, decided, blocked, pat = d, rank(e.Kind), !e.Kind.IsException(), e.Pattern()
			}
		}
		if blocked && depth > bestDepth {
			bestDepth, list, pattern = depth, l.Name, pat
		}
	}
	return list, pattern
}

// TestLookupAgreesWithReference compares Lookup with reference on random
// lists over a small alphabet of labels, so that entries nest and clash.
func TestLookupAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	name := func(max int) string { return blocklisttest.NestingName(rng, max) }
	prefixes := []string{"", "*.", "=", "!", "!=", "!*."}
	for round := range 200 {
		var lists []*blocklist.List
		for l := range 1 + rng.IntN(3) {
			var b strings.Builder
			for range rng.IntN(8) {
				b.WriteString(prefixes[rng.IntN(len(prefixes))] + name(3) + "\n")
			}
			lists = append(lists, parse(t, fmt.Sprintf("l%d", l), b.String()))
		}
		ix := build(t, hashSome(t, rng, lists)...)
		for range 50 {
			q := name(5) + "."
			if rng.IntN(4) == 0 {
				q = strings.ToUpper(q[:1]) + q[1:]
			}
			wantList, wantPattern := reference(lists, q)
			m, ok := ix.Lookup(q)
			gotList, gotPattern := "", ""
			if ok {
				gotList, gotPattern = m.List.Name, m.Kind.Prefix()+strings.ToLower(q[m.Start:len(q)-1])
				checkDigest(t, m, strings.ToLower(q[m.Start:len(q)-1]))
			}
			if gotList != wantList || gotPattern != wantPattern {
				for _, l := range lists {
					t.Logf("list %s: %v", l.Name, l.Entries)
				}
				t.Fatalf("round %d: Lookup(%q) = %q %q, reference says %q %q", round, q, gotList, gotPattern, wantList, wantPattern)
			}
		}
	}
}

// referenceAddr is LookupAddr's rule written plainly: per list, the longest
// prefix holding addr decides, unless the list's name entries except qname;
// the longest blocking prefix across lists wins, ties to the first list.
func referenceAddr(lists []*blocklist.List, qname string, addr netip.Addr) (list, pattern string) {
	sorted := slices.Clone(lists)
	slices.SortFunc(sorted, func(a, b *blocklist.List) int { return strings.Compare(a.Name, b.Name) })
	best := -1
	for _, l := range sorted {
		if excepts(l, qname) {
			continue
		}
		bits, blocked, pat := -1, false, ""
		for _, e := range l.Entries {
			if !e.Prefix.IsValid() || !e.Prefix.Contains(addr) {
				continue
			}
			if n := e.Prefix.Bits(); n > bits || n == bits && e.Kind.IsException() {
				bits, blocked, pat = n, !e.Kind.IsException(), e.Pattern()
			}
		}
		if blocked && bits > best {
			best, list, pattern = bits, l.Name, pat
		}
	}
	return list, pattern
}

// excepts reports whether the most specific name entry of l for qname is an
// exception, by reference's rule.
func excepts(l *blocklist.List, qname string) bool {
	qname = strings.ToLower(strings.TrimSuffix(qname, "."))
	depth, decided, except := -1, -1, false
	for _, e := range l.Entries {
		self := e.Name == qname
		if e.Prefix.IsValid() || !self && !strings.HasSuffix(qname, "."+e.Name) || !applies(e.Kind, self) {
			continue
		}
		if d := strings.Count(e.Name, "."); d > depth || d == depth && rank(e.Kind) < decided {
			depth, decided, except = d, rank(e.Kind), e.Kind.IsException()
		}
	}
	return except
}

// TestLookupAddrAgreesWithReference compares LookupAddr with referenceAddr
// on random lists of nested prefixes in a small space of both families.
func TestLookupAddrAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	addr := func() netip.Addr {
		if rng.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(4) << 6)})
		}
		a := netip.MustParseAddr("2001:db8::").As16()
		a[3], a[15] = byte(rng.IntN(4)), byte(rng.IntN(4)<<6)
		return netip.AddrFrom16(a)
	}
	for round := range 200 {
		var lists []*blocklist.List
		for l := range 1 + rng.IntN(3) {
			var b strings.Builder
			for range rng.IntN(8) {
				a := addr()
				bits := a.BitLen() - rng.IntN(9)
				if rng.IntN(4) == 0 {
					bits = 24 + rng.IntN(9)
				}
				prefix, _ := a.Prefix(bits)
				b.WriteString([]string{"", "!"}[rng.IntN(2)] + "ip:" + prefix.String() + "\n")
			}
			if rng.IntN(3) == 0 {
				b.WriteString([]string{"!", "!=", "=", ""}[rng.IntN(4)] + "a.example\n")
			}
			lists = append(lists, parse(t, fmt.Sprintf("l%d", l), b.String()))
		}
		ix := build(t, hashSome(t, rng, lists)...)
		for range 50 {
			q, a := []string{"a.example.", "b.a.example.", "c.example."}[rng.IntN(3)], addr()
			if rng.IntN(4) == 0 && a.Is4() {
				a = netip.AddrFrom16(a.As16()) // an IPv4-mapped IPv6 address
			}
			wantList, wantPattern := referenceAddr(lists, q, a.Unmap())
			m, ok := ix.LookupAddr(q, a)
			gotList, gotPattern := "", ""
			if ok {
				gotList, gotPattern = m.List.Name, "ip:"+m.Prefix.String()
			}
			if gotList != wantList || gotPattern != wantPattern {
				for _, l := range lists {
					t.Logf("list %s: %v", l.Name, l.Entries)
				}
				t.Fatalf("round %d: LookupAddr(%q, %s) = %q %q, reference says %q %q", round, q, a, gotList, gotPattern, wantList, wantPattern)
			}
		}
	}
}

// hashSome returns lists with about half of them replaced by their hashed
// form, which must decide every lookup as the plain list does.
func hashSome(t *testing.T, rng *rand.Rand, lists []*blocklist.List) []*blocklist.List {
	t.Helper()
	out := slices.Clone(lists)
	for i, l := range lists {
		if rng.IntN(2) == 0 {
			continue
		}
		salt := make([]byte, blocklist.SaltSize)
		for j := range salt {
			salt[j] = byte(rng.IntN(256))
		}
		h, err := blocklist.Hash(l, salt)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = h
	}
	return out
}

// checkDigest checks the digest a match of a hashed list reports: that of
// the matched name (and none for a plain list).
func checkDigest(t *testing.T, m Match, matched string) {
	t.Helper()
	var want blocklist.Digest
	if m.List.Hashed() {
		want = blocklist.HashName(m.List.Salt, matched)
	}
	if m.Digest != want {
		t.Fatalf("match of %q in list %s: digest %s, want %s", matched, m.List.Name, m.Digest, want)
	}
}
