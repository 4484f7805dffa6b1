package blockindex

import (
	"fmt"
	"maps"
	"slices"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// A delta changes a list without recompiling it: the new ListIndex shares
// the records and table of the old one (the base) and adds an overlay, a
// small index of the entries added since and the set of base records
// removed since. A lookup in a list without an overlay costs one more nil
// check; in a list with one, a probe of the overlay's small table, which
// stays in the cache. Compact folds an overlay into new records, off the
// query path.

// overlay is what the deltas applied since a list's records were compiled
// changed. It is immutable once its ListIndex is published.
type overlay struct {
	added []blocklist.Entry // the entries added, compiled into index
	index *ListIndex        // added compiled, and the canary when it changed; nil when empty
	// hidden counts, for each base record removed, how many of the
	// records identical to it (same key, check, kind and meta) are gone.
	hidden map[record]int32
	// kept maps the first base record of each run of records of one key,
	// check and kind that starts with hidden ones to the first record of
	// the run that is not hidden (the end of the run when none is): the
	// record a lookup takes, found once here rather than on every lookup
	// (a run of thousands of hidden claims made each lookup walk them).
	kept map[int]int
	// canary is the canary compiled into the base records.
	canary string
	// touched holds a word for each group of keys: the keys of records
	// added or hidden set two bits of their group's word (a blocked Bloom
	// filter). A key whose two bits are not both set decides in the base
	// records alone, at a lookup's cost before any delta, after one load.
	touched   []uint64
	touchMask uint64
}

// touchWord returns the word of touched that stands for key. The key is a
// hash already: its low six bits and its top six name the two bits it
// sets in the word, and the bits from the seventh on name the word.
func (ov *overlay) touchWord(key uint64) uint64 { return key >> 6 & ov.touchMask }

// touches reports whether the overlay may hold or hide records of key.
func (ov *overlay) touches(key uint64) bool {
	w := ov.touched[ov.touchWord(key)]
	return w>>(key&63)&1 != 0 && w>>(key>>58)&1 != 0
}

// filter sets touched for the overlay's keys: a word (64 bits) a key, so
// that about 1 key in 500 that it does not hold passes it, and the filter
// of a 1 000-entry delta (8 KB) stays in the core's first-level cache.
func (ov *overlay) filter() {
	n := len(ov.hidden)
	if ov.index != nil {
		n += len(ov.index.recs)
	}
	words := 8
	for words < n && words < 1<<19 { // at most 4 MB, so that 6+19 bits name a word
		words *= 2
	}
	ov.touched, ov.touchMask = make([]uint64, words), uint64(words-1)
	mark := func(key uint64) { ov.touched[ov.touchWord(key)] |= 1<<(key&63) | 1<<(key>>58) }
	for rec := range ov.hidden {
		mark(rec.key)
	}
	if ov.index != nil {
		for _, rec := range ov.index.recs {
			mark(rec.key)
		}
	}
}

// OverlayLen returns how many entries the deltas applied since the records
// were compiled changed: what Compact would fold in.
func (li *ListIndex) OverlayLen() int {
	if li.over == nil {
		return 0
	}
	n := len(li.over.added)
	for _, c := range li.over.hidden {
		n += int(c)
	}
	return n
}

// Apply returns the index of the version delta d makes from the one li
// holds, which must be the version d starts from (the caller checks its
// serial and SHA-256). li is unchanged. The result is checked against the
// delta's checksum before it is returned, at a cost in proportion to the
// change: an error is a *result.Error with result DeltaMismatch when the
// result would not be the issuer's version (an entry removed that li does
// not hold, another checksum).
func (li *ListIndex) Apply(d *blocklist.Delta) (*ListIndex, error) {
	mismatch := func(format string, args ...any) error {
		return result.Errorf(result.DeltaMismatch, "%s: "+format, append([]any{d.File}, args...)...)
	}
	if string(li.salt) != string(d.Salt) {
		return nil, mismatch("the delta's list is hashed under another salt than the version in force")
	}
	ov := &overlay{canary: li.list.Canary, hidden: map[record]int32{}}
	if li.over != nil {
		ov.added = slices.Clone(li.over.added)
		ov.hidden = maps.Clone(li.over.hidden)
		ov.canary = li.over.canary
	}
	sum := li.sum
	// An entry removed is taken from those an earlier delta added when it
	// is one of them, else from the base records.
	var fromAdded map[string][]int // entry text -> indexes in ov.added
	if len(d.Removed) > 0 && len(ov.added) > 0 {
		fromAdded = make(map[string][]int, len(ov.added))
		for i, a := range ov.added {
			t := a.Text()
			fromAdded[t] = append(fromAdded[t], i)
		}
	}
	gone := map[int]bool{}
	for _, e := range d.Removed {
		v, err := valueOf(e)
		if err != nil {
			return nil, mismatch("line %d: %v", e.Line, err)
		}
		if is := fromAdded[e.Text()]; len(is) > 0 {
			gone[is[len(is)-1]] = true
			fromAdded[e.Text()] = is[:len(is)-1]
		} else if !li.hide(ov.hidden, e) {
			return nil, mismatch("line %d: removes %s, which the version in force does not hold", e.Line, e.Pattern())
		}
		sum.sub(v)
	}
	if len(gone) > 0 {
		kept := ov.added[:0]
		for i, a := range ov.added {
			if !gone[i] {
				kept = append(kept, a)
			}
		}
		ov.added = kept
	}
	for _, e := range d.Added {
		v, err := valueOf(e)
		if err != nil {
			return nil, mismatch("line %d: %v", e.Line, err)
		}
		ov.added = append(ov.added, e)
		sum.add(v)
	}
	if got := sum.bytes(); got != d.Checksum {
		return nil, mismatch("the entries after applying it have the checksum %s, not the %s its digest header says", got, d.Checksum)
	}

	next, err := li.publish(d.List, sum, ov)
	if err != nil {
		return nil, mismatch("%v", err)
	}
	return next, nil
}

// publish returns li's records with overlay ov, which holds the entries
// added and the records hidden since they were compiled: the index of
// version l, whose entries sum to sum. The canary is l's: when it is not
// the one compiled into the records, that one is hidden and ov's index
// holds l's.
func (li *ListIndex) publish(l *blocklist.List, sum checksum, ov *overlay) (*ListIndex, error) {
	header := *l
	header.Canary = ""
	if ov.canary != "" {
		rec, ok := li.canaryRecord(ov.canary)
		switch {
		case !ok:
		case l.Canary != ov.canary:
			ov.hidden[rec] = 1
		default:
			delete(ov.hidden, rec)
		}
	}
	if l.Canary != ov.canary {
		header.Canary = l.Canary
	}
	if len(ov.added) > 0 || header.Canary != "" {
		c := NewCompiler(len(ov.added))
		for _, e := range ov.added {
			c.Add(e)
		}
		index, err := c.Finish(&header)
		if err != nil {
			return nil, err
		}
		ov.index = index
	}
	next := *li
	next.list, next.sum, next.over = l, sum, ov
	if len(ov.added) == 0 && len(ov.hidden) == 0 && ov.index == nil {
		next.over = nil
	} else {
		ov.filter()
		ov.kept = li.keptAfter(ov.hidden)
	}
	return &next, nil
}

// keptAfter returns overlay.kept for the records hidden hides. Of a run,
// only the hidden records at its start matter: the first kept one is the
// run's first claim left, and decides. It costs a binary search or two
// for each record hidden.
func (li *ListIndex) keptAfter(hidden map[record]int32) map[int]int {
	kept := map[int]int{}
	for rec, n := range hidden {
		if n <= 0 {
			continue
		}
		start, ok := li.find(rec.key)
		if !ok {
			continue
		}
		if !sameRun(li.recs[start], rec) { // a name listed under other kinds too
			i, _ := slices.BinarySearchFunc(li.recs[start:], rec, compareRuns)
			start += i
		}
		if _, done := kept[start]; done || li.recs[start] != rec {
			continue // not at the start of its run (or seen already)
		}
		r := start
		for r < len(li.recs) && sameRun(li.recs[r], rec) {
			h := int(hidden[li.recs[r]])
			size := li.copies(r)
			if h < size { // a copy of this claim is left (any copy: they are identical)
				break
			}
			r += size
		}
		if r != start {
			kept[start] = r
		}
	}
	return kept
}

// hide notes in hidden that one more base record identical to entry e is
// removed, and reports false when the base holds no more of them.
func (li *ListIndex) hide(hidden map[record]int32, e blocklist.Entry) bool {
	h, err := nameHashes(e)
	if err != nil {
		return false
	}
	_, k := newMeta(e)
	r, n, ok := li.identical(h.key(), uint32(h.h2), e.Kind, k)
	if !ok || hidden[li.recs[r]] >= n {
		return false
	}
	hidden[li.recs[r]]++
	return true
}

// identical returns the first of li's records of key, check, kind and
// meta, and how many there are (identical records sort next to each
// other). A name's records sort by check, kind and meta (sortMetas), so
// two binary searches find them however often the name is listed.
func (li *ListIndex) identical(key uint64, check uint32, kind blocklist.Kind, k metaKey) (int, int32, bool) {
	first, ok := li.find(key)
	if !ok {
		return 0, 0, false
	}
	recs := li.recs[first:]
	r, ok := slices.BinarySearchFunc(recs, k, func(x record, k metaKey) int {
		if c := compareRuns(x, record{key: key, check: check, kindMeta: uint32(kind) << metaBits}); c != 0 {
			return c
		}
		return li.metaOf(x).key().compare(k) // only then: a meta's key is made
	})
	if !ok {
		return 0, 0, false
	}
	return first + r, int32(li.copies(first + r)), true
}

// copies returns how many records from r on are identical to li.recs[r].
func (li *ListIndex) copies(r int) int {
	n, _ := slices.BinarySearchFunc(li.recs[r:], li.recs[r], func(x, rec record) int {
		if x == rec {
			return -1
		}
		return 1
	})
	return n
}

// canaryRecord returns the base record of the canary name: the header's
// canary, which no entry's record can equal. (Not an RPZ trigger at its
// name, which the parser puts in the canary's category with its own
// answer.)
func (li *ListIndex) canaryRecord(canary string) (record, bool) {
	h, _, ok := hashName(canary)
	if li.salt != nil {
		h, ok = digestHashes(blocklist.HashName(li.salt, canary)), true
	}
	if !ok {
		return record{}, false
	}
	r, _, ok := li.identical(h.key(), uint32(h.h2), blocklist.Exact, metaKey{category: blocklist.CategoryCanary})
	if !ok {
		return record{}, false
	}
	return li.recs[r], true
}

// decideOver is decide's step for a list with an overlay: of the base
// records not hidden and the overlay's records at key, the one that
// decides, as in a whole compile of the same version (pick). It reports
// whether one applied, and the hit (but for its suffix; an exception's
// when except).
func (li *ListIndex) decideOver(key uint64, check uint32, self bool) (h hit, except, ok bool) {
	best, from := record{}, (*ListIndex)(nil)
	if rec, found := li.pick(key, check, self, li.over.kept); found {
		best, from = rec, li
	}
	if o := li.over.index; o != nil {
		if rec, found := o.pick(key, check, self, nil); found {
			if from == nil || rank(rec.kind()) < rank(best.kind()) ||
				rank(rec.kind()) == rank(best.kind()) && metaCompare(o.metaOf(rec), from.metaOf(best)) < 0 {
				best, from = rec, o
			}
		}
	}
	if from == nil {
		return hit{}, false, false
	}
	if best.kind().IsException() {
		return hit{}, true, true
	}
	return hit{list: li, from: from, kindMeta: best.kindMeta}, false, true
}

func (li *ListIndex) metaOf(rec record) meta { return li.metas[rec.kindMeta&(1<<metaBits-1)] }

// metaCompare orders metas as blocklist.CompareClaims orders entries.
func metaCompare(a, b meta) int {
	return blocklist.CompareClaims(a.order, a.category, a.action, a.local, b.order, b.category, b.action, b.local)
}

// Compact returns li with its overlay folded into new records and table:
// the index a whole reload of the same version would build, without
// reading the list again. It costs a pass over the records and is meant to
// run off the query path; li is unchanged and stays valid.
func (li *ListIndex) Compact() *ListIndex {
	if li.over == nil {
		return li
	}
	ov := li.over
	n := len(li.recs)
	for _, c := range ov.hidden {
		n -= int(c)
	}
	var added []record
	metas, fromBase, ips := li.metas, []uint32(nil), li.ips
	if ov.index != nil {
		// The overlay's metas join the base's, each once and in claim
		// order: identical entries make identical records, as in a whole
		// compile, and compactions do not add up metas.
		var fromOver []uint32
		var ok bool
		if metas, fromBase, fromOver, ok = mergeMetas(li.metas, ov.index.metas); !ok {
			return li // more metas than a record can index: a whole reload will tell
		}
		added = slices.Clone(ov.index.recs)
		for i := range added { // renumbered in order: still sorted
			added[i].kindMeta = renumber(added[i].kindMeta, fromOver)
		}
		n += len(added)
		if ips != nil {
			renumbered := ips.renumbered(fromBase)
			ips = &renumbered
		}
	}
	recs, mem := offHeap[record](n + 1)
	recs = recs[:0]
	hidden := maps.Clone(ov.hidden)
	i, j := 0, 0
	for i < len(li.recs) || j < len(added) {
		if i < len(li.recs) {
			rec := li.recs[i]
			if hidden[rec] > 0 {
				hidden[rec]--
				i++
				continue
			}
			if fromBase != nil {
				rec.kindMeta = renumber(rec.kindMeta, fromBase)
			}
			if j == len(added) || !recordLess(added[j], rec) {
				recs = append(recs, rec)
				i++
				continue
			}
		}
		recs = append(recs, added[j])
		j++
	}
	next := &ListIndex{list: li.list, recs: recs, recsMem: mem, metas: metas, ips: ips, salt: li.salt, sum: li.sum, depths: li.depths}
	if ov.index != nil {
		next.depths |= ov.index.depths
	}
	next.table, next.tableMem, next.shift = buildTable(recs)
	return next
}

// mergeMetas returns the metas of a and b, each in claim order, as one
// slice in claim order with each meta once, and the numbers a's and b's
// metas take in it; false when they would not fit a record's meta bits.
func mergeMetas(a, b []meta) (metas []meta, fromA, fromB []uint32, ok bool) {
	keysOf := func(ms []meta) []metaKey {
		keys := make([]metaKey, len(ms))
		for i, m := range ms {
			keys[i] = m.key()
		}
		return keys
	}
	ka, kb := keysOf(a), keysOf(b)
	metas, fromA, fromB = make([]meta, 0, len(a)+len(b)), make([]uint32, len(a)), make([]uint32, len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		c := -1
		switch {
		case i == len(a):
			c = 1
		case j < len(b):
			c = ka[i].compare(kb[j])
		}
		id := uint32(len(metas))
		if c <= 0 {
			fromA[i] = id
			metas = append(metas, a[i])
			i++
		}
		if c >= 0 {
			fromB[j] = id
			if c > 0 {
				metas = append(metas, b[j])
			}
			j++
		}
	}
	return metas, fromA, fromB, len(metas) < 1<<metaBits
}

// String describes li for tests and logs.
func (li *ListIndex) String() string {
	return fmt.Sprintf("list %q: %d records, overlay of %d", li.list.Name, len(li.recs), li.OverlayLen())
}
