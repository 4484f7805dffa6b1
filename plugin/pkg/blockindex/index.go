// Package blockindex is regblock's lookup index: given a query name, it tells
// whether any loaded list blocks it, and by which entry.
//
// Names are kept as two 64-bit hashes, not as strings: an open-addressing
// table maps the first hash to a run of records sorted by the second hash,
// list and precedence. A lookup splits the query name on the stack, hashes
// every suffix in one pass and probes the table once per label, so it does
// not allocate and its cost does not grow with the number of entries.
package blockindex

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// MaxLists is the most lists one index holds.
const MaxLists = 256

// Index answers lookups over a fixed set of lists. It is immutable once
// built and safe for concurrent use.
type Index struct {
	keys  []uint64 // table keys (hashes.key); 0 marks an empty slot
	first []uint32 // index in recs of the first record of each slot's run
	mask  uint64
	recs  []record
	metas []meta
	lists []*blocklist.List // sorted by name; record.list indexes it
}

// record is one entry of one list.
type record struct {
	check uint64 // the second hash of the entry's name
	meta  uint32 // index in Index.metas
	list  uint8
	kind  blocklist.Kind
	run   bool // first record of its table key's run
}

// meta is what an entry says besides its name, interned: many entries share
// an order reference and most share a category.
type meta struct{ order, category string }

// Match is the entry that blocks a name.
type Match struct {
	List     *blocklist.List
	Kind     blocklist.Kind
	Order    string // empty when the entry has none
	Category string // empty when the entry has none; "canary" for the canary name
	// Start is the byte offset in the query name where the listed name starts:
	// qname[Start:] is the matched name as the client spelled it.
	Start int
}

// Build indexes lists. Lists must have distinct names; at most MaxLists.
func Build(lists []*blocklist.List) (*Index, error) {
	if len(lists) > MaxLists {
		return nil, fmt.Errorf("blockindex: %d lists, at most %d are supported", len(lists), MaxLists)
	}
	sorted := slices.Clone(lists)
	slices.SortFunc(sorted, func(a, b *blocklist.List) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("blockindex: %s and %s both define list %q", sorted[i-1].File, sorted[i].File, sorted[i].Name)
		}
	}

	n := 0
	for _, l := range sorted {
		n += len(l.Entries) + 1
	}
	all := make([]keyed, 0, n)
	metaIDs := map[meta]uint32{}
	ix := &Index{lists: sorted}
	add := func(list int, kind blocklist.Kind, name string, m meta) error {
		h, ok := hashName(name)
		if !ok {
			return fmt.Errorf("blockindex: list %q: invalid name %q", sorted[list].Name, name)
		}
		id, ok := metaIDs[m]
		if !ok {
			id = uint32(len(ix.metas))
			ix.metas = append(ix.metas, m)
			metaIDs[m] = id
		}
		all = append(all, keyed{h.key(), record{check: h.h2, meta: id, list: uint8(list), kind: kind}})
		return nil
	}
	for i, l := range sorted {
		for _, e := range l.Entries {
			if err := add(i, e.Kind, e.Name, meta{e.Order, e.Category}); err != nil {
				return nil, err
			}
		}
		if l.Canary != "" {
			if err := add(i, blocklist.Exact, l.Canary, meta{"", blocklist.CategoryCanary}); err != nil {
				return nil, err
			}
		}
	}

	sortKeyed(all)

	runs := 0
	for i := range all {
		if i == 0 || all[i].key != all[i-1].key {
			runs++
		}
	}
	size := 8
	for size*3 < runs*4 { // keep the load at or below 3/4
		size *= 2
	}
	ix.keys = make([]uint64, size)
	ix.first = make([]uint32, size)
	ix.mask = uint64(size - 1)
	ix.recs = make([]record, len(all))
	for i, k := range all {
		ix.recs[i] = k.rec
		if i > 0 && k.key == all[i-1].key {
			continue
		}
		ix.recs[i].run = true
		s := k.key & ix.mask
		for ix.keys[s] != 0 {
			s = (s + 1) & ix.mask
		}
		ix.keys[s], ix.first[s] = k.key, uint32(i)
	}
	return ix, nil
}

// keyed is a record with its table key, while an index is built.
type keyed struct {
	key uint64
	rec record
}

// sortKeyed sorts records by key with a radix sort (the keys are hashes,
// evenly spread: four passes of 16 bits beat a comparison sort several
// times over at millions of entries), then orders the rare records that
// share a key by second hash, list and precedence.
func sortKeyed(a []keyed) {
	buf := make([]keyed, len(a))
	src, dst := a, buf
	var count [1 << 16]int
	for shift := 0; shift < 64; shift += 16 {
		clear(count[:])
		for i := range src {
			count[uint16(src[i].key>>shift)]++
		}
		pos := 0
		for d := range count {
			count[d], pos = pos, pos+count[d]
		}
		for i := range src {
			d := uint16(src[i].key >> shift)
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	// Four passes leave the result in a again.
	for i := 0; i < len(a); {
		j := i + 1
		for j < len(a) && a[j].key == a[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(a[i:j], func(x, y keyed) int {
				return cmp.Or(cmp.Compare(x.rec.check, y.rec.check), cmp.Compare(x.rec.list, y.rec.list), cmp.Compare(rank(x.rec.kind), rank(y.rec.kind)))
			})
		}
		i = j
	}
}

// rank orders the records of one list at one name: the first that applies
// decides. Exact and Below never apply to the same query name, and both are
// narrower than an exception, which is narrower than a subtree entry.
func rank(k blocklist.Kind) int {
	switch k {
	case blocklist.Exact, blocklist.Below:
		return 0
	case blocklist.Exception:
		return 1
	}
	return 2
}

// applies reports whether an entry of kind k at a name applies to a query for
// that name (self) or for a name below it.
func applies(k blocklist.Kind, self bool) bool {
	switch k {
	case blocklist.Exact:
		return self
	case blocklist.Below:
		return !self
	}
	return true
}

// Lookup returns the entry that blocks qname, a name in presentation format
// as it comes off the wire (any case, escapes allowed, trailing dot or not).
//
// Within a list the most specific entry decides, exceptions included; across
// lists a name is blocked when any list blocks it, and the match reported is
// the most specific blocking one, ties going to the list whose name sorts
// first.
func (ix *Index) Lookup(qname string) (Match, bool) {
	if len(ix.recs) == 0 {
		return Match{}, false
	}
	var l labels
	if !l.split(qname) || l.n == 0 {
		return Match{}, false
	}
	// Hash every suffix, root first; suffix[i] is the name from label i on.
	var suffix [maxLabels]hashes
	h := hashes{seed1, seed2}
	for i := l.n - 1; i >= 0; i-- {
		h = h.add(l.label(i))
		suffix[i] = h
	}

	var excepted [MaxLists / 64]uint64 // lists whose exception decided already
	for i := 0; i < l.n; i++ {
		start, ok := ix.find(suffix[i].key())
		if !ok {
			continue
		}
		for r := start; r < len(ix.recs); r++ {
			rec := &ix.recs[r]
			if rec.run && r != start {
				break // the next key's run
			}
			if rec.check != suffix[i].h2 || !applies(rec.kind, i == 0) {
				continue
			}
			word, bit := rec.list/64, uint64(1)<<(rec.list%64)
			if excepted[word]&bit != 0 {
				continue
			}
			if rec.kind == blocklist.Exception {
				excepted[word] |= bit
				continue
			}
			m := ix.metas[rec.meta]
			return Match{List: ix.lists[rec.list], Kind: rec.kind, Order: m.order, Category: m.category, Start: int(l.start[i])}, true
		}
	}
	return Match{}, false
}

// find returns the first record of key's run.
func (ix *Index) find(key uint64) (int, bool) {
	for s := key & ix.mask; ; s = (s + 1) & ix.mask {
		switch ix.keys[s] {
		case key:
			return int(ix.first[s]), true
		case 0:
			return 0, false
		}
	}
}

// Lists returns the indexed lists, sorted by name. The caller must not
// modify them.
func (ix *Index) Lists() []*blocklist.List { return ix.lists }

// hashName hashes a canonical name as Lookup hashes a query name.
func hashName(name string) (hashes, bool) {
	var l labels
	if !l.split(name) || l.n == 0 {
		return hashes{}, false
	}
	h := hashes{seed1, seed2}
	for i := l.n - 1; i >= 0; i-- {
		h = h.add(l.label(i))
	}
	return h, true
}
