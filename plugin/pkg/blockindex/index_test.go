package blockindex

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

func parse(t testing.TB, name, entries string) *blocklist.List {
	t.Helper()
	text := "#! regblock-list 1\n#! name: " + name + "\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n" + entries
	l, err := blocklist.Parse(name+".list", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func build(t testing.TB, lists ...*blocklist.List) *Index {
	t.Helper()
	ix, err := Build(lists)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// want describes a lookup result: "" for not blocked, else "LIST PATTERN",
// with the pattern as the entry wrote it.
type lookupCase struct {
	qname string
	want  string
}

func check(t *testing.T, ix *Index, cases []lookupCase) {
	t.Helper()
	for _, tc := range cases {
		m, ok := ix.Lookup(tc.qname)
		got := ""
		if ok {
			got = m.List.Name + " " + m.Kind.Prefix() + strings.ToLower(strings.TrimSuffix(tc.qname[m.Start:], "."))
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %q, want %q", tc.qname, got, tc.want)
		}
	}
}

func TestLookupKinds(t *testing.T) {
	ix := build(t, parse(t, "a", `
abuse.example          ORDER-1 csam
=cdn7.hosting.example  ORDER-2
*.bulk.example         -       csam
!help.abuse.example
=deep.help.abuse.example
`))
	check(t, ix, []lookupCase{
		// name: itself and below
		{"abuse.example.", "a abuse.example"},
		{"www.abuse.example.", "a abuse.example"},
		{"a.b.c.abuse.example.", "a abuse.example"},
		{"notabuse.example.", ""},
		{"example.", ""},
		// =name: exactly
		{"cdn7.hosting.example.", "a =cdn7.hosting.example"},
		{"x.cdn7.hosting.example.", ""},
		{"hosting.example.", ""},
		// *.name: below only
		{"bulk.example.", ""},
		{"x.bulk.example.", "a *.bulk.example"},
		{"y.x.bulk.example.", "a *.bulk.example"},
		// !name: exception, and a more specific entry under it wins again
		{"help.abuse.example.", ""},
		{"www.help.abuse.example.", ""},
		{"deep.help.abuse.example.", "a =deep.help.abuse.example"},
		{"x.deep.help.abuse.example.", ""},
		// not a list name at all
		{"other.test.", ""},
		{".", ""},
		{"", ""},
	})
}

func TestLookupSpelling(t *testing.T) {
	ix := build(t, parse(t, "a", "abuse.example\nbücher.example\n"))
	check(t, ix, []lookupCase{
		{"ABUSE.example.", "a abuse.example"},
		{"aBuSe.ExAmPlE.", "a abuse.example"}, // 0x20 mixed case
		{"abuse.example", "a abuse.example"},  // no trailing dot
		{"WWW.Abuse.Example", "a abuse.example"},
		{`\065buse.example.`, "a \\065buse.example"}, // escaped 'A'
		{`\097\098use.example.`, "a \\097\\098use.example"},
		{"xn--bcher-kva.example.", "a xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example.", "a xn--bcher-kva.example"},
		{`abuse\.example.`, ""}, // one label "abuse.example", not two
		{"abuse..example.", ""},
		{`abuse.example\`, ""},
		{`\999buse.example.`, ""},
	})
	m, _ := ix.Lookup("www.ABUSE.example.")
	if m.Start != 4 {
		t.Errorf("Start = %d, want 4", m.Start)
	}
}

func TestLookupPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		entries string
		cases   []lookupCase
	}{
		{"exact beats an exception on the same name", "=x.example\n!x.example\n", []lookupCase{
			{"x.example.", "a =x.example"}, {"y.x.example.", ""},
		}},
		{"wildcard beats an exception on the same name", "*.x.example\n!x.example\n", []lookupCase{
			{"x.example.", ""}, {"y.x.example.", "a *.x.example"},
		}},
		{"exception beats a subtree on the same name", "x.example\n!x.example\n", []lookupCase{
			{"x.example.", ""}, {"y.x.example.", ""},
		}},
		{"subtree and exact together", "=x.example\n*.x.example\n", []lookupCase{
			{"x.example.", "a =x.example"}, {"y.x.example.", "a *.x.example"}, {"example.", ""},
		}},
		{"exception above, block below", "!x.example\nsub.x.example\n", []lookupCase{
			{"x.example.", ""}, {"a.sub.x.example.", "a sub.x.example"}, {"other.x.example.", ""},
		}},
		{"block above, exception in between, wildcard below", "example\n!x.example\n*.y.x.example\n", []lookupCase{
			{"example.", "a example"}, {"w.example.", "a example"}, {"x.example.", ""},
			{"y.x.example.", ""}, {"z.y.x.example.", "a *.y.x.example"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, build(t, parse(t, "a", tc.entries)), tc.cases)
		})
	}
}

func TestLookupAcrossLists(t *testing.T) {
	a := parse(t, "a", "abuse.example ORDER-A\n!www.abuse.example\n")
	b := parse(t, "b", "www.abuse.example ORDER-B\n=deep.www.abuse.example\nother.example ORDER-B\n")
	c := parse(t, "c", "abuse.example ORDER-C\n!x.other.example\n")
	ix := build(t, c, b, a) // the order given does not matter
	check(t, ix, []lookupCase{
		// a's exception does not unblock what b blocks
		{"www.abuse.example.", "b www.abuse.example"},
		{"x.www.abuse.example.", "b www.abuse.example"},
		// the most specific blocking match is reported
		{"deep.www.abuse.example.", "b =deep.www.abuse.example"},
		// a tie goes to the list whose name sorts first
		{"abuse.example.", "a abuse.example"},
		{"y.abuse.example.", "a abuse.example"},
		// c's exception only concerns c
		{"x.other.example.", "b other.example"},
	})
	m, _ := ix.Lookup("abuse.example.")
	if m.Order != "ORDER-A" {
		t.Errorf("order = %q, want ORDER-A", m.Order)
	}
	if names := []string{ix.Lists()[0].Name, ix.Lists()[1].Name, ix.Lists()[2].Name}; strings.Join(names, ",") != "a,b,c" {
		t.Errorf("Lists() = %v, want sorted by name", names)
	}
}

func TestLookupCanary(t *testing.T) {
	text := "#! regblock-list 1\n#! name: a\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n#! canary: canary.a.regblock.test\nabuse.example ORDER-1 csam\n"
	l, err := blocklist.Parse("a.list", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ix := build(t, l)
	m, ok := ix.Lookup("Canary.A.regblock.test.")
	if !ok || m.Category != blocklist.CategoryCanary || m.Kind != blocklist.Exact || m.List != l {
		t.Errorf("canary: got %+v, %v", m, ok)
	}
	if _, ok := ix.Lookup("x.canary.a.regblock.test."); ok {
		t.Error("a name below the canary is blocked; the canary is an exact name")
	}
	m, _ = ix.Lookup("abuse.example.")
	if m.Order != "ORDER-1" || m.Category != "csam" {
		t.Errorf("entry metadata: got %+v", m)
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build([]*blocklist.List{parse(t, "a", ""), parse(t, "a", "")}); err == nil || !strings.Contains(err.Error(), `list "a"`) {
		t.Errorf("two lists named a: %v", err)
	}
	many := make([]*blocklist.List, MaxLists+1)
	for i := range many {
		many[i] = parse(t, fmt.Sprintf("l%d", i), "")
	}
	if _, err := Build(many); err == nil {
		t.Error("Build accepted more than MaxLists lists")
	}
	ix := build(t)
	if _, ok := ix.Lookup("abuse.example."); ok {
		t.Error("an empty index blocks")
	}
}

// TestLookupManyLists checks the exception bookkeeping past the first 64
// lists.
func TestLookupManyLists(t *testing.T) {
	var lists []*blocklist.List
	for i := range 200 {
		entries := "!x.abuse.example\n"
		if i == 199 {
			entries = "abuse.example\n"
		}
		lists = append(lists, parse(t, fmt.Sprintf("l%03d", i), entries+"abuse.example\n"))
	}
	check(t, build(t, lists...), []lookupCase{
		{"x.abuse.example.", "l199 abuse.example"},
		{"abuse.example.", "l000 abuse.example"},
	})
}

func TestLookupDoesNotAllocate(t *testing.T) {
	ix := build(t, parse(t, "a", "abuse.example\n!help.abuse.example\n*.bulk.example\n"))
	for _, name := range []string{"www.abuse.example.", "help.abuse.example.", "unlisted.example.", `\065buse.example.`} {
		if n := testing.AllocsPerRun(100, func() { ix.Lookup(name) }); n != 0 {
			t.Errorf("Lookup(%q) allocates %v times", name, n)
		}
	}
}

// TestSortRecords: the in-place sort leaves a permutation of its input in
// order, whatever the keys' spread (many records share top bits, and keys).
func TestSortRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 2, 1000, 200_000} {
		a := make([]record, n)
		for i := range a {
			key := rng.Uint64()
			if i%3 == 0 {
				key &= 0xffff_0000_0000_00ff // many in one bucket
			}
			if i%7 == 0 && i > 0 {
				key = a[i-1].key // equal keys
			}
			a[i] = record{key: key, check: rng.Uint32() % 4, kindMeta: rng.Uint32()}
		}
		want := slices.Clone(a)
		less := func(x, y record) int {
			return cmp.Or(cmp.Compare(x.key, y.key), cmp.Compare(x.check, y.check),
				cmp.Compare(rank(x.kind()), rank(y.kind())), cmp.Compare(x.kindMeta, y.kindMeta))
		}
		slices.SortFunc(want, less)
		sortRecords(a)
		if !slices.Equal(a, want) {
			t.Fatalf("n=%d: sortRecords differs from a comparison sort", n)
		}
	}
}

// TestOffHeapFreed: the memory of indexes and compilers no longer
// reachable, built or abandoned, is unmapped.
func TestOffHeapFreed(t *testing.T) {
	before := mappedBlocks.Load()
	for range 20 {
		if _, err := Build([]*blocklist.List{synthetic(10_000)}); err != nil {
			t.Fatal(err)
		}
		c := NewCompiler(1000) // abandoned, as when a list turns out invalid
		c.Add(blocklist.Entry{Name: "a.example"})
	}
	if mappedBlocks.Load() == before {
		t.Skip("no memory was mapped outside the Go heap on this system")
	}
	for range 100 { // cleanups run after a collection, on their own goroutine
		runtime.GC()
		if mappedBlocks.Load() == before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d blocks still mapped, %d before", mappedBlocks.Load(), before)
}

// TestFastPathAgreesWithGeneral: Lookup splits most names in place
// (splitPlain) and leaves the rest to findGeneral, which decodes them
// label by label. Both must decide every name alike, at the edges of what
// the fast path takes (label and name lengths, label counts, empty labels,
// escapes) above all: a too long label under a listed name is no name at
// all, not a name below it.
func TestFastPathAgreesWithGeneral(t *testing.T) {
	plain := parse(t, "a", "listed.example\n=exact.example\n")
	hashed, err := blocklist.Hash(parse(t, "b", "listed.example\n=exact.example\nx-y_z.example\n"), make([]byte, blocklist.SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	for _, lists := range [][]*blocklist.List{{plain}, {hashed}, {plain, hashed}} {
		fastPathAgrees(t, build(t, lists...))
	}
}

func fastPathAgrees(t *testing.T, ix *Index) {
	t.Helper()
	label := func(n int) string { return strings.Repeat("x", n) }
	labels := func(n int) string { return strings.Repeat("a.", n-2) + "listed.example." }
	long := func(n int) string { // a name of n bytes, without the final dot, under listed.example
		name := "listed.example"
		for len(name) < n {
			name = label(min(63, n-len(name)-1)) + "." + name
		}
		return name
	}
	names := []string{
		"listed.example.", "listed.example", "LISTED.Example.", "a.listed.example",
		label(63) + ".listed.example.", label(64) + ".listed.example.", label(63) + ".exact.example.",
		labels(16), labels(17), labels(127), labels(128),
		long(253), long(253) + ".", long(254), long(254) + ".", long(255),
		"a..listed.example.", ".listed.example.", "listed.example..", ".", "", "..",
		`\097.listed.example.`, `a\.b.listed.example.`, `listed.example\.`, `listed.example.\`,
		"exact.example.", "x.exact.example.", "X-Y_Z.example.", "a.x-y_z.example", "a b.listed.example.", "a\x00.listed.example.",
	}
	for _, q := range names {
		m, ok := ix.Lookup(q)
		var gm Match
		gok := ix.findGeneral(q, &gm)
		if ok != gok || ok && (m.Start != gm.Start || m.Kind != gm.Kind || m.List != gm.List || m.Digest != gm.Digest) {
			t.Errorf("Lookup(%q) = %v at %d, the general path says %v at %d", q, ok, m.Start, gok, gm.Start)
		}
		if ok {
			checkDigest(t, m, strings.ToLower(strings.TrimSuffix(q[m.Start:], ".")))
		}
	}
	// The cases must reach both sides of each edge.
	for q, want := range map[string]bool{labels(16): true, label(63) + ".listed.example.": true, label(64) + ".listed.example.": false, long(253): true} {
		if _, ok := ix.Lookup(q); ok != want {
			t.Errorf("Lookup of a %d-byte name = %v, want %v", len(q), ok, want)
		}
	}
}

// TestTable checks the table's layout and its probes on keys made to
// crowd it: a 3/4 full table, keys sharing a home slot, keys sharing a tag
// but not their low bits, tags of 0, keys listed more than once, and keys
// whose home is the last slot, which push the table past its home slots.
func TestTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const bits = 12
	var keys []uint64
	for range 3 << (bits - 2) { // 3/4 of 1<<bits
		keys = append(keys, rng.Uint64()|1)
	}
	last := uint64(1)<<bits - 1 // the last home slot
	for i := range uint64(40) {
		keys = append(keys, last<<(64-bits)|i<<20|1)
	}
	for i := range uint64(20) {
		keys = append(keys, 1<<(64-bits)|0xabc<<32|i<<8|1, 2*i+1) // one tag, many keys; tags of 0
	}
	var recs []record
	for i, k := range keys {
		for j := range 1 + i%3 {
			recs = append(recs, record{key: k, check: uint32(j)})
		}
	}
	sortRecords(recs)
	li := &ListIndex{recs: recs}
	li.table, li.tableMem, li.shift = buildTable(recs)

	if got := li.table[len(li.table)-1]; got != 0 {
		t.Fatalf("the table ends in %#x, not an empty slot", got)
	}
	for s := 1; s < len(li.table); s++ { // in order, each at or after its home
		prev, v := li.table[s-1], li.table[s]
		if v == 0 {
			continue
		}
		key := recs[uint32(v)-1].key
		if home := int(key >> li.shift); s < home {
			t.Errorf("slot %d holds %#x, whose home is slot %d", s, key, home)
		}
		if prev != 0 && prev>>32 > v>>32 {
			t.Errorf("slot %d holds tag %#x after %#x", s, v>>32, prev>>32)
		}
	}
	tags := map[uint64]bool{}
	for _, k := range keys {
		tags[k>>32] = true
		r, ok := li.find(k)
		if !ok || !li.mayHold(k) {
			t.Fatalf("key %#x: not found", k)
		}
		if recs[r].key != k || r > 0 && recs[r-1].key == k {
			t.Fatalf("key %#x: found record %d, not its first", k, r)
		}
	}
	absent := []uint64{2, 0xabc<<32 | 2, 1<<(64-bits) | 0xabc<<32 | 2, last<<(64-bits) | 2, ^uint64(0) - 1}
	for range 10000 {
		absent = append(absent, rng.Uint64()&^1) // the keys above are odd
	}
	for _, k := range absent {
		if _, ok := li.find(k); ok {
			t.Fatalf("key %#x: found, though not in the table", k)
		}
		if li.mayHold(k) && !tags[k>>32] {
			t.Errorf("key %#x: may be held, though no key in the table has its tag", k)
		}
	}
}
