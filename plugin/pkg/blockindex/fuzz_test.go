package blockindex

import (
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// FuzzLookup builds an index from fuzzed entries, queries it with a fuzzed
// name, compares Lookup with its general path, and plain names with the
// reference implementation.
func FuzzLookup(f *testing.F) {
	f.Add("abuse.example\n!help.abuse.example\n=deep.help.abuse.example\n*.bulk.example\n", "x.deep.help.abuse.example.")
	f.Add("a.b\n*.b\n=b\n!c.a.b\n", "C.A.B")
	f.Add("example\n", `\065buse.example.`)
	f.Add("x.example\n", "..x.example")
	f.Fuzz(func(t *testing.T, entries, qname string) {
		l, err := blocklist.Parse("fuzz.list", []byte("#! regblock-list 1\n#! name: fuzz\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n"+entries))
		if err != nil {
			return
		}
		ix, err := Build([]*blocklist.List{l})
		if err != nil {
			t.Fatal(err)
		}
		m, ok := ix.Lookup(qname)
		if ok && (m.Start < 0 || m.Start > len(qname)) {
			t.Fatalf("Start %d out of %q", m.Start, qname)
		}
		// Lookup's fast path must decide as the general path, which
		// decodes every name.
		var gm Match
		if gok := ix.findGeneral(qname, &gm); ok != gok || ok && (m.Start != gm.Start || m.Kind != gm.Kind || m.Order != gm.Order) {
			t.Fatalf("Lookup(%q) = %v at %d, the general path says %v at %d", qname, ok, m.Start, gok, gm.Start)
		}
		// The reference speaks of plain lower-case names only.
		plain, err := blocklist.CanonicalName(qname)
		if err != nil || strings.ContainsAny(qname, `\`) || strings.ToLower(strings.TrimSuffix(qname, ".")) != plain {
			return
		}
		wantList, _ := reference([]*blocklist.List{l}, qname)
		if ok != (wantList != "") {
			t.Fatalf("Lookup(%q) = %v, the reference says %q", qname, ok, wantList)
		}
	})
}
