package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestExportRoundTrip: random lists, whose entries nest and clash, are
// exported to RPZ and read back; every query name and every answer address
// gets the same decision (blocked or not, order and category) from both.
func TestExportRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	labels := []string{"a", "b", "c", "example"}
	name := func(max int) string {
		parts := make([]string, 1+rng.IntN(max))
		for i := range parts {
			parts[i] = labels[rng.IntN(len(labels))]
		}
		return strings.Join(parts, ".")
	}
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
		writeRPZ(&zone, orig, nil, 60)
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

func TestRPZIPOwner(t *testing.T) {
	for prefix, want := range map[string]string{
		"203.0.113.0/24":           "24.0.113.0.203.rpz-ip",
		"192.0.2.1/32":             "32.1.2.0.192.rpz-ip",
		"2001:db8::/32":            "32.zz.db8.2001.rpz-ip",
		"2001:db8::1/128":          "128.1.zz.db8.2001.rpz-ip",
		"2001:db8:0:1::/64":        "64.zz.1.0.db8.2001.rpz-ip",
		"::1/128":                  "128.1.zz.rpz-ip",
		"2001:db8:1:2:3:4:5:6/128": "128.6.5.4.3.2.1.db8.2001.rpz-ip",
	} {
		if got := rpzIPOwner(netip.MustParsePrefix(prefix)); got != want {
			t.Errorf("%s: %s, want %s", prefix, got, want)
		}
	}
}

// TestExportCommand runs the built binary: its output is a zone that
// regblock loads back with the list's signature rules, flags are checked,
// and an unverified list is not exported.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, dir)
	list := key.WriteList(t, dir, "example-csam.list", exampleList+"ip:198.51.100.0/24 ORDER-9\n")

	code, stdout, stderr := regblock(t, "export", "-format", "rpz", "-p", pub, "-notice", "192.0.2.80,2001:db8::80", list)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		";$ issuer: Example Communications Commission\n",
		"@ SOA localhost. hostmaster.regblock.invalid. 2026112801 ",
		"abuse.example A 192.0.2.80 ; order=ORDER-2026-0012 category=csam\n",
		"*.abuse.example AAAA 2001:db8::80 ; order=ORDER-2026-0012 category=csam\n",
		"help.abuse.example CNAME rpz-passthru. ; order=ORDER-2026-0014\n",
		"24.0.100.51.198.rpz-ip A 192.0.2.80 ; order=ORDER-9\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("export output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\ncdn7.hosting.example A") == false || strings.Contains(stdout, "*.cdn7.hosting.example") {
		t.Errorf("=cdn7.hosting.example is not exported as exactly that name:\n%s", stdout)
	}

	// -o writes the file; signed, it loads as a list.
	zone := filepath.Join(dir, "example-csam.rpz")
	if code, _, stderr := regblock(t, "export", "-format", "rpz", "-o", zone, list); code != 0 {
		t.Fatalf("export -o: exit %d\n%s", code, stderr)
	}
	data, err := os.ReadFile(zone)
	if err != nil {
		t.Fatal(err)
	}
	key.WriteList(t, dir, "example-csam.rpz", string(data))
	if l, err := loads(t, zone, pub); err != nil || l.Serial != 2026112801 || l.Blocking() != 5 {
		t.Errorf("the exported zone, signed, loads as %+v, %v", l, err)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-format", "bind", list}, 2, `unknown -format "bind"`},
		{[]string{list}, 2, "Usage: regblock export"},
		{[]string{"-format", "rpz", "-notice", "notice.example", list}, 2, `-notice "notice.example" is not an address`},
		{[]string{"-format", "rpz", "-p", pub, writeFile(t, dir, "forged.list", exampleList)}, 1, "forged.list was not exported"},
	} {
		code, stdout, stderr := regblock(t, append([]string{"export"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("export %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
