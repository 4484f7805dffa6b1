package blocklist_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestWriteRPZRoundTrip: random lists, whose entries nest and clash, are
// exported to RPZ and read back; every query name and every answer address
// gets the same decision (blocked or not, order and category) from both.
func TestWriteRPZRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	name := func(max int) string { return blocklisttest.NestingName(rng, max) }
	addr := func() netip.Addr {
		if rng.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(4) << 6)})
		}
		a := netip.MustParseAddr("2001:db8::").As16()
		a[5], a[15] = byte(rng.IntN(4)), byte(rng.IntN(4)<<6)
		return netip.AddrFrom16(a)
	}
	kinds := []string{"", "*.", "=", "!", "!=", "!*."}
	for round := range 300 {
		var b strings.Builder
		fmt.Fprintf(&b, "#! regblock-list 1\n#! name: l\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\n", round+1)
		if rng.IntN(3) == 0 {
			b.WriteString("#! canary: " + name(2) + ".test\n")
		}
		for range rng.IntN(10) {
			order, cat := []string{"-", "ORDER-1", "ORDER-2"}[rng.IntN(3)], []string{"", "csam", "fraud"}[rng.IntN(3)]
			if rng.IntN(4) == 0 {
				a := addr()
				prefix, _ := a.Prefix(a.BitLen() - rng.IntN(9))
				fmt.Fprintf(&b, "%sip:%s %s %s\n", []string{"", "!"}[rng.IntN(2)], prefix.Masked(), order, cat)
				continue
			}
			fmt.Fprintf(&b, "%s%s %s %s\n", kinds[rng.IntN(len(kinds))], name(3), order, cat)
		}
		orig, err := blocklist.Parse("l.list", []byte(b.String()))
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, b.String())
		}
		var zone strings.Builder
		if err := blocklist.WriteRPZ(&zone, orig, nil, 60); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		back, err := blocklist.Parse("l.rpz", []byte(zone.String()))
		if err != nil {
			t.Fatalf("round %d: the exported zone does not read back: %v\n%s", round, err, zone.String())
		}
		if back.Name != orig.Name || back.Serial != orig.Serial || back.Canary != orig.Canary {
			t.Fatalf("round %d: header %+v, want %+v", round, back.Header, orig.Header)
		}
		ixOrig, err1 := blockindex.Build([]*blocklist.List{orig})
		ixBack, err2 := blockindex.Build([]*blocklist.List{back})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		decision := func(m blockindex.Match, ok bool) string {
			if !ok {
				return "passed"
			}
			return "blocked " + m.Order + " " + m.Category
		}
		for range 40 {
			q, a := name(5)+".", addr()
			if rng.IntN(5) == 0 && orig.Canary != "" {
				q = orig.Canary + "."
			}
			want, got := decision(ixOrig.Lookup(q)), decision(ixBack.Lookup(q))
			if got != want {
				t.Fatalf("round %d: %s is %q from the list, %q from its export\nlist:\n%s\nzone:\n%s", round, q, want, got, b.String(), zone.String())
			}
			want, got = decision(ixOrig.LookupAddr(q, a)), decision(ixBack.LookupAddr(q, a))
			if got != want {
				t.Fatalf("round %d: %s in an answer for %s is %q from the list, %q from its export\nlist:\n%s\nzone:\n%s", round, a, q, want, got, b.String(), zone.String())
			}
		}
	}
}
