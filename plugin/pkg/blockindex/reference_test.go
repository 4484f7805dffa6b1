package blockindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// reference is the matching rule of DESIGN.md written as plainly as possible:
// for each list, the entry on the longest matching name decides (at one name,
// = and *. before !, ! before a plain name); the deepest blocking decision
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
				depth, decided, blocked, pat = d, rank(e.Kind), e.Kind != blocklist.Exception, e.Pattern()
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
	labels := []string{"a", "b", "c", "example"}
	name := func(max int) string {
		n := 1 + rng.IntN(max)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = labels[rng.IntN(len(labels))]
		}
		return strings.Join(parts, ".")
	}
	prefixes := []string{"", "*.", "=", "!"}
	for round := range 200 {
		var lists []*blocklist.List
		for l := range 1 + rng.IntN(3) {
			var b strings.Builder
			for range rng.IntN(8) {
				b.WriteString(prefixes[rng.IntN(4)] + name(3) + "\n")
			}
			lists = append(lists, parse(t, fmt.Sprintf("l%d", l), b.String()))
		}
		ix := build(t, lists...)
		for range 50 {
			q := name(5) + "."
			wantList, wantPattern := reference(lists, q)
			m, ok := ix.Lookup(q)
			gotList, gotPattern := "", ""
			if ok {
				gotList, gotPattern = m.List.Name, m.Kind.Prefix()+q[m.Start:len(q)-1]
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
