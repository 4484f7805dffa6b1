// Package blockindex is regblock's lookup index: given a query name, it tells
// whether any loaded list blocks it, and by which entry.
//
// Names are kept as hashes, not as strings: each list is compiled into
// records sorted by a 64-bit hash of the entry's name (with 32 more bits of
// a second hash to tell colliding names apart) and an open-addressing table
// that finds a name's records. A lookup splits the query name on the stack,
// hashes its suffixes from the top label down and probes each list's table
// for each suffix as long as some list's names are, so it does not
// allocate and its cost does not grow with the number of entries.
package blockindex

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// MaxLists is the most lists one index holds.
const MaxLists = 256

// metaBits is how many bits of a record index its list's metas; the three
// above hold the entry's kind.
const metaBits = 29

// ListIndex is one list compiled for lookups: 16 bytes a record plus its
// share of the table (8 bytes a slot, at most 3/4 full). It is immutable
// and safe for concurrent use.
type ListIndex struct {
	list *blocklist.List
	// table holds, for each key, the key's top 32 bits (its tag) above the
	// index + 1 in recs of its first record; 0 marks an empty slot. A
	// key's home slot is named by its top bits (key >> shift) and the keys
	// are in order: each in its home slot or, when that is taken, in the
	// first free one after. A probe passes over smaller tags and stops at
	// a larger one or an empty slot, so a key the table does not hold (the
	// suffixes of most query names) costs about as few probes as one it
	// holds: 1.5 at half full and 2.5 at 3/4 full, against 2.5 and 8.5 for
	// keys in the order they came. The tag lets a probe pass over other
	// keys' slots without touching recs: against a list of millions, every
	// record read is a cache miss. An empty slot ends the table.
	table []uint64
	shift uint8
	recs  []record // sorted by key, then second hash, precedence, kind and meta
	metas []meta   // each once, in claim order (sortMetas)
	// The blocks that hold table and recs, outside the Go heap; kept here
	// so that they live as long as the index.
	tableMem, recsMem *block
	ips               *prefixes // the address entries; nil when there are none
	// salt is a hashed list's salt: its records are keyed by the digests of
	// names under it (digestHashes), not by hashName. nil for a plain list.
	salt []byte
	// sum is the checksum of the version's entries (see checksum.go).
	sum checksum
	// over holds the changes of the deltas applied since the records were
	// compiled; nil when there are none (see overlay.go).
	over *overlay
	// depths has bit d set when a record's name has d labels (63 for 63
	// or more), every bit for a hashed list: a query's suffix of another
	// length needs no probe.
	depths uint64
}

// record is one entry of a list.
type record struct {
	key      uint64 // hashes.key of the entry's name
	check    uint32 // the low half of the second hash: a false match needs 96 bits to collide
	kindMeta uint32 // the entry's kind above metaBits, its meta's index below
}

func (r record) kind() blocklist.Kind { return blocklist.Kind(r.kindMeta >> metaBits) }

// meta is what an entry says besides its name, interned: many entries share
// an order reference and most share a category and an action.
type meta struct {
	order, category string
	action          blocklist.Action
	local           []dns.RR
}

// metaKey identifies a meta: its local data by their text.
type metaKey struct {
	order, category string
	action          blocklist.Action
	local           string
}

func newMeta(e blocklist.Entry) (meta, metaKey) {
	m := meta{order: e.Order, category: e.Category, action: e.Action, local: e.Local}
	return m, m.key()
}

// key returns the metaKey of m.
func (m meta) key() metaKey {
	return metaKey{order: m.order, category: m.category, action: m.action, local: blocklist.LocalText(m.local)}
}

// compare orders meta keys as metaCompare orders their metas.
func (k metaKey) compare(o metaKey) int {
	return cmp.Or(cmp.Compare(k.order, o.order), cmp.Compare(k.category, o.category), cmp.Compare(k.action, o.action), cmp.Compare(k.local, o.local))
}

// Index answers lookups over a set of compiled lists. It is immutable and
// safe for concurrent use.
type Index struct {
	lists  []*ListIndex      // sorted by list name
	names  []*blocklist.List // the same lists
	ips    bool              // whether any list has address entries
	salted bool              // whether any list is hashed
	plain  bool              // whether any list is not
	depths uint64            // the depths of all the lists' records, overlays' included
}

// Match is the entry that blocks a name.
type Match struct {
	List     *blocklist.List
	Kind     blocklist.Kind
	Order    string // empty when the entry has none
	Category string // empty when the entry has none; "canary" for the canary name
	// Start is the byte offset in the query name where the listed name starts:
	// qname[Start:] is the matched name as the client spelled it.
	Start int
	// Prefix is the listed prefix when an address matched (LookupAddr).
	Prefix netip.Prefix
	// Action is the answer the entry asks for; Local its records for
	// blocklist.LocalData, owned by ".": the caller must copy them.
	Action blocklist.Action
	Local  []dns.RR
	// Digest is the digest of the matched name when List is hashed: what
	// may be written down about the match instead of the name.
	Digest blocklist.Digest
}

// Compile compiles list l, its entries and its canary name. The index
// keeps no entry: once compiled, l.DropEntries may free them.
func Compile(l *blocklist.List) (*ListIndex, error) {
	c := NewCompiler(len(l.Entries))
	for _, e := range l.Entries {
		c.Add(e)
	}
	return c.Finish(l)
}

// Compiler compiles a list's entries one by one, as blocklist.ParseFunc
// reads them, so that they need not all be held first.
type Compiler struct {
	recs    []record
	recsMem *block // holds recs
	metas   []meta
	metaIDs map[metaKey]uint32
	ips     prefixes
	names   int // entries added by name
	digests int // entries added by digest
	sum     checksum
	// metaSums are the metaHash of each meta, by index.
	metaSums []uint64
	// canary is set while the canary is added: it is not in the sum.
	canary bool
	depths uint64 // as ListIndex.depths
	// last is the meta of the last entry: most entries share one, and a
	// map lookup per entry was a fifth of a compile.
	last   metaKey
	lastID uint32
	err    error
}

// NewCompiler returns a compiler with room for about n entries.
func NewCompiler(n int) *Compiler {
	recs, mem := offHeap[record](n + 1)
	return &Compiler{recs: recs[:0], recsMem: mem, metaIDs: map[metaKey]uint32{}, lastID: ^uint32(0)}
}

// NewCompilerFor returns a compiler for a list file of size bytes. Where
// the index is mapped outside the Go heap, it reserves room for an entry
// every 4 bytes ("a.b\n"), which no list outgrows and which costs only
// address space: pages never written take no memory.
func NewCompilerFor(size int64) *Compiler {
	if offHeapMapped {
		return NewCompiler(int(size/4) + 16)
	}
	return NewCompiler(int(size/32) + 16) // grows when lines are shorter
}

// Add adds an entry. An error is kept for Finish to return.
func (c *Compiler) Add(e blocklist.Entry) {
	if c.err != nil {
		return
	}
	id, ok := c.meta(newMeta(e))
	if !ok {
		return
	}
	if e.Prefix.IsValid() {
		c.ips.add(e.Prefix, uint32(e.Kind)<<metaBits|id, c.claimFirst)
		h, _ := nameHashes(e)
		c.sum.add(entryValue(h, e.Kind, c.metaSums[id]))
		return
	}
	var h hashes
	if e.Hashed {
		c.digests++
		h = digestHashes(e.Digest)
		c.depths = ^uint64(0)
	} else {
		c.names++
		var depth int
		var ok bool
		if h, depth, ok = hashName(e.Name); !ok {
			c.err = fmt.Errorf("blockindex: invalid name %q", e.Name)
			return
		}
		c.depths |= 1 << min(depth, 63)
	}
	c.addHashes(e.Kind, h, id)
	if !c.canary {
		c.sum.add(entryValue(h, e.Kind, c.metaSums[id]))
	}
}

// claimFirst reports whether the meta of kindMeta a sorts before that of
// b in claim order.
func (c *Compiler) claimFirst(a, b uint32) bool {
	return c.metas[a&(1<<metaBits-1)].key().compare(c.metas[b&(1<<metaBits-1)].key()) < 0
}

// meta interns m.
func (c *Compiler) meta(m meta, k metaKey) (uint32, bool) {
	if c.lastID != ^uint32(0) && k == c.last {
		return c.lastID, true
	}
	id, ok := c.metaIDs[k]
	if ok {
		c.last, c.lastID = c.metas[id].key(), id
		return id, true
	}
	id = uint32(len(c.metas))
	if id >= 1<<metaBits {
		c.err = fmt.Errorf("blockindex: too many distinct order references")
		return 0, false
	}
	// Copies, so that the index does not keep the list file alive, and so
	// that the key stays what it is while a stream reuses its buffer.
	m.order, m.category = strings.Clone(m.order), strings.Clone(m.category)
	k.order, k.category = m.order, m.category
	c.metas = append(c.metas, m)
	c.metaSums = append(c.metaSums, metaHash(m))
	c.metaIDs[k] = id
	c.last, c.lastID = k, id
	return id, true
}

func (c *Compiler) addHashes(kind blocklist.Kind, h hashes, id uint32) {
	if len(c.recs) == cap(c.recs) { // more entries than foreseen
		recs, mem := offHeap[record](2*cap(c.recs) + 16)
		c.recs, c.recsMem = recs[:copy(recs, c.recs)], mem
	}
	c.recs = append(c.recs, record{key: h.key(), check: uint32(h.h2), kindMeta: uint32(kind)<<metaBits | id})
}

// Finish adds the list's canary name and returns the compiled list; the
// compiler is spent.
func (c *Compiler) Finish(l *blocklist.List) (*ListIndex, error) {
	if l.Hashed() && c.names > 0 || !l.Hashed() && c.digests > 0 {
		c.err = fmt.Errorf("blockindex: a list is hashed or plain, not both")
	}
	if l.Canary != "" {
		canary := blocklist.Entry{Kind: blocklist.Exact, Name: l.Canary, Category: blocklist.CategoryCanary}
		if l.Hashed() { // plain in the header, keyed by its digest like every name of the list
			canary = blocklist.Entry{Kind: blocklist.Exact, Hashed: true, Digest: blocklist.HashName(l.Salt, l.Canary), Category: blocklist.CategoryCanary}
		}
		c.canary = true
		c.Add(canary)
		c.canary = false
	}
	if c.err != nil {
		return nil, fmt.Errorf("list %q: %w", l.Name, c.err)
	}
	c.sortMetas()
	recs := c.recs
	sortRecords(recs)
	li := &ListIndex{list: l, recs: recs, metas: c.metas, recsMem: c.recsMem, salt: l.Salt, sum: c.sum, depths: c.depths}
	if c.ips.len() > 0 {
		li.ips = &c.ips
	}
	c.recs, c.recsMem, c.metas, c.metaIDs, c.metaSums = nil, nil, nil, nil, nil
	li.table, li.tableMem, li.shift = buildTable(recs)
	return li, nil
}

// sortMetas numbers the metas in claim order (metaKey.compare), so that
// the records of one name, check and kind sort as they decide: the first
// speaks for the name however often it is listed, and one removed is
// found by binary search. A list's metas are few (its order references),
// its records many.
func (c *Compiler) sortMetas() {
	keys := make([]metaKey, len(c.metas))
	for k, id := range c.metaIDs {
		keys[id] = k
	}
	order := make([]uint32, len(c.metas))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return keys[a].compare(keys[b]) })
	remap := make([]uint32, len(order))
	metas := make([]meta, len(order))
	moved := false
	for id, old := range order {
		remap[old], metas[id] = uint32(id), c.metas[old]
		moved = moved || uint32(id) != old
	}
	c.metas = metas
	if !moved {
		return
	}
	for i := range c.recs {
		c.recs[i].kindMeta = renumber(c.recs[i].kindMeta, remap)
	}
	c.ips = c.ips.renumbered(remap)
}

// renumber returns kindMeta with its meta numbered by remap.
func renumber(kindMeta uint32, remap []uint32) uint32 {
	return kindMeta&^(1<<metaBits-1) | remap[kindMeta&(1<<metaBits-1)]
}

// buildTable returns the table that finds the first record of each key in
// recs, sorted, and the shift that takes a key to its home slot.
func buildTable(recs []record) (table []uint64, mem *block, shift uint8) {
	runs := 0
	for i := range recs {
		if i == 0 || recs[i].key != recs[i-1].key {
			runs++
		}
	}
	bits := 3
	for 1<<bits*3 < runs*4 { // keep the load at or below 3/4
		bits++
	}
	shift = uint8(64 - bits)
	// The keys pushed past the last home slot, and an empty slot after
	// them that ends every probe, make the table a little longer.
	end := 0 // the first slot after the keys placed so far
	for i := range recs {
		if i == 0 || recs[i].key != recs[i-1].key {
			end = max(end, int(recs[i].key>>shift)) + 1
		}
	}
	table, mem = offHeap[uint64](max(end, 1<<bits) + 1)
	end = 0
	for i := range recs {
		if i > 0 && recs[i].key == recs[i-1].key {
			continue
		}
		s := max(end, int(recs[i].key>>shift))
		table[s] = recs[i].key>>32<<32 | uint64(i+1)
		end = s + 1
	}
	return table, mem, shift
}

// New combines compiled lists into an index. Lists must have distinct
// names; at most MaxLists.
func New(lists []*ListIndex) (*Index, error) {
	if len(lists) > MaxLists {
		return nil, fmt.Errorf("blockindex: %d lists, at most %d are supported", len(lists), MaxLists)
	}
	sorted := slices.Clone(lists)
	slices.SortFunc(sorted, func(a, b *ListIndex) int { return cmp.Compare(a.list.Name, b.list.Name) })
	ix := &Index{lists: sorted}
	for i, li := range sorted {
		if i > 0 && li.list.Name == sorted[i-1].list.Name {
			return nil, fmt.Errorf("%s and %s both define list %q", sorted[i-1].list.File, li.list.File, li.list.Name)
		}
		ix.names = append(ix.names, li.list)
		ix.ips = ix.ips || li.ips != nil
		ix.salted = ix.salted || li.salt != nil
		ix.plain = ix.plain || li.salt == nil
		ix.depths |= li.depths
		if li.over != nil && li.over.index != nil {
			ix.depths |= li.over.index.depths
		}
	}
	return ix, nil
}

// Build compiles lists and combines them: Compile, then New.
func Build(lists []*blocklist.List) (*Index, error) {
	if len(lists) > MaxLists {
		return nil, fmt.Errorf("blockindex: %d lists, at most %d are supported", len(lists), MaxLists)
	}
	compiled := make([]*ListIndex, len(lists))
	for i, l := range lists {
		li, err := Compile(l)
		if err != nil {
			return nil, err
		}
		compiled[i] = li
	}
	return New(compiled)
}

// sortRecords sorts records by key, then second hash and precedence (ties
// to the meta interned first), in place: an American flag sort, a radix
// sort that moves each record straight into its bucket, 8 bits of the key
// at a time from the top (256 buckets, whose cursors stay in the cache;
// 65536 made it twice as slow), within each bucket of more than a few
// records, which an insertion sort finishes. The keys are hashes, evenly
// spread, so the buckets are even too. Sorting in place keeps a reload from
// needing a second copy of the records (16 bytes an entry).
func sortRecords(a []record) {
	var bounds [257]int
	var next [256]int
	flagSort(a, 56, bounds[:], next[:])
}

// flagSort sorts a, whose keys agree above bit shift+len(next), on the
// log2(len(next)) bits of the key from shift up, and then on the bits
// below; bounds and next are its scratch space, len(next)+1 and len(next)
// long.
func flagSort(a []record, shift uint, bounds, next []int) {
	if len(a) <= 32 {
		insertionSort(a)
		return
	}
	buckets := len(next)
	mask := uint64(buckets - 1)
	clear(bounds)
	for i := range a {
		bounds[a[i].key>>shift&mask+1]++
	}
	for d := 1; d <= buckets; d++ {
		bounds[d] += bounds[d-1]
	}
	copy(next, bounds) // next[d]: the first record of bucket d not yet in place
	for d := range buckets {
		for next[d] < bounds[d+1] {
			// Carry the record at next[d] to its bucket, and the one it
			// displaces to its own, until one belongs in bucket d.
			r := a[next[d]]
			for t := int(r.key >> shift & mask); t != d; t = int(r.key >> shift & mask) {
				r, a[next[t]] = a[next[t]], r
				next[t]++
			}
			a[next[d]] = r
			next[d]++
		}
	}
	var subBounds [257]int
	var subNext [256]int
	for d := range buckets {
		b := a[bounds[d]:bounds[d+1]]
		switch {
		case len(b) <= 1:
		case shift == 0 && len(b) > 32: // a name listed many times
			slices.SortFunc(b, compareRecords)
		case shift == 0:
			insertionSort(b) // equal keys: order by the rest
		default:
			flagSort(b, shift-8, subBounds[:], subNext[:])
		}
	}
}

// insertionSort sorts a few records by key, then second hash and
// precedence, then meta.
func insertionSort(a []record) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && recordLess(a[j], a[j-1]); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// compareRecords orders records as recordLess does, for slices.SortFunc:
// a list may hold one name any number of times, where insertion sort's
// work grows with the square of the count.
func compareRecords(x, y record) int {
	switch {
	case recordLess(x, y):
		return -1
	case recordLess(y, x):
		return 1
	}
	return 0
}

func recordLess(x, y record) bool {
	if x.key != y.key {
		return x.key < y.key
	}
	if x.check != y.check {
		return x.check < y.check
	}
	if rx, ry := rank(x.kind()), rank(y.kind()); rx != ry {
		return rx < ry
	}
	return x.kindMeta < y.kindMeta
}

// rank orders the records of one list at one name: see blocklist.Kind.Rank.
func rank(k blocklist.Kind) int { return k.Rank() }

// applies reports whether an entry of kind k at a name applies to a query for
// that name (self) or for a name below it.
func applies(k blocklist.Kind, self bool) bool {
	switch k {
	case blocklist.Exact, blocklist.ExceptExact:
		return self
	case blocklist.Below, blocklist.ExceptBelow:
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
func (ix *Index) Lookup(qname string) (m Match, ok bool) {
	ok = ix.Find(qname, &m)
	return m, ok
}

// Find is Lookup for the query path: it reports whether qname is blocked
// and fills m only then. (A Match is too large for registers: returned, it
// is cleared and copied on every query, most of which no list blocks.)
func (ix *Index) Find(qname string, m *Match) bool {
	if len(ix.lists) == 0 {
		return false
	}
	// Most names are plain and short: split them in place, in a small
	// stack frame. (A frame of kilobytes would make the runtime grow the
	// stack of the query's goroutine, which costs more than the lookup.)
	var start [shortLabels]uint16
	n, ok := splitPlain(qname, &start)
	switch {
	case !ok:
		return ix.findGeneral(qname, m)
	case ix.salted:
		return ix.findSalted(qname, start[:n], m)
	}
	// Most names are listed nowhere: hash the suffixes from the top label
	// down and ask each list's table about each, in a loop without calls
	// but add's. Only a name some list may hold is decided, most specific
	// suffix first.
	h := hashes{seed1, seed2}
	end := len(qname)
	if qname[end-1] == '.' {
		end--
	}
	for i := n - 1; i >= 0; i-- {
		h = add(h, qname[start[i]:end])
		end = int(start[i]) - 1
		if ix.depths>>((n-i)&63)&1 == 0 { // no list holds a name of this many labels
			continue
		}
		key := h.key()
		for _, li := range ix.lists {
			if li.over != nil && li.over.touches(key) || li.mayHold(key) {
				return ix.findPlain(qname, start[:n], i, h, m)
			}
		}
	}
	return false
}

// findPlain is Find for a plain name in an index of plain lists, one of
// which may hold its suffix from label i on, hashed to h, and none a
// shorter one: only suffixes i to 0 may decide.
func (ix *Index) findPlain(qname string, start []uint16, i int, h hashes, m *Match) bool {
	var suffix [shortLabels]hashes
	suffix[i] = h
	for j := i - 1; j >= 0; j-- {
		h = add(h, qname[start[j]:start[j+1]-1])
		suffix[j] = h
	}
	found, ok := ix.decide(suffix[:i+1], nil)
	if ok {
		*m = found.match(start, nil)
	}
	return ok
}

// findSalted is Find for a plain name in an index with hashed lists, which
// lays the name out for digests, apart so that the layout is on the stack
// only then.
func (ix *Index) findSalted(qname string, start []uint16, m *Match) bool {
	var suffix [shortLabels]hashes
	if ix.plain {
		hashPlain(qname, start, suffix[:len(start)])
	}
	var salted saltedName
	salted.fillPlain(qname, start)
	found, ok := ix.decide(suffix[:len(start)], &salted)
	if ok {
		*m = found.match(start, &salted)
	}
	return ok
}

// shortLabels is the most labels Lookup's fast path handles.
const shortLabels = 16

// splitPlain records where the labels of qname start, for a name without
// escapes of 1 to shortLabels labels of 1 to 63 bytes and at most 253 bytes
// in all; it reports false for any other name (the root included), which
// the general path then decides on.
func splitPlain(qname string, start *[shortLabels]uint16) (int, bool) {
	name := strings.TrimSuffix(qname, ".")
	if name == "" || len(name) > 253 || strings.IndexByte(name, '\\') >= 0 {
		return 0, false
	}
	// One IndexByte a label: it looks at many bytes an instruction, where a
	// loop over the bytes costs several instructions each.
	for n, begin := 0, 0; n < shortLabels; n++ {
		size := strings.IndexByte(name[begin:], '.')
		last := size < 0
		if last {
			size = len(name) - begin
		}
		if size == 0 || size > 63 {
			return 0, false
		}
		start[n] = uint16(begin)
		if last {
			return n + 1, true
		}
		begin += size + 1
	}
	return 0, false
}

// hashPlain sets suffix[i] to the hash of the name from label i on, for a
// name split by splitPlain, as Find does.
func hashPlain(qname string, start []uint16, suffix []hashes) {
	h := hashes{seed1, seed2}
	end := len(qname)
	if qname[end-1] == '.' {
		end--
	}
	for i := len(start) - 1; i >= 0; i-- {
		h = add(h, qname[start[i]:end])
		suffix[i] = h
		end = int(start[i]) - 1
	}
}

// findGeneral is Find for names with escapes, many labels or labels the
// fast path does not vouch for: it decodes the name first.
func (ix *Index) findGeneral(qname string, m *Match) bool {
	var l labels
	if !l.split(qname) || l.n == 0 {
		return false
	}
	var suffix [maxLabels]hashes
	var salted saltedName
	ix.prepare(&l, &suffix, &salted)
	found, ok := ix.decide(suffix[:l.n], &salted)
	if ok {
		*m = found.match(l.start[:l.n], &salted)
	}
	return ok
}

// prepare lays a split name out for the lists of ix: the hashes of its
// suffixes for plain lists, its canonical text for hashed ones; each only
// when ix has such lists.
func (ix *Index) prepare(l *labels, suffix *[maxLabels]hashes, salted *saltedName) {
	if ix.plain {
		h := hashes{seed1, seed2}
		for i := l.n - 1; i >= 0; i-- {
			h = add(h, l.label(i))
			suffix[i] = h
		}
	}
	if ix.salted {
		salted.fill(l)
	}
}

// decide walks the suffixes of a name, most specific first (suffix[i] is the
// hash of the name from label i on), and returns the record that blocks
// it. salted is the name laid out for the digests of hashed lists; nil when
// the index has none. The Match is made only for a hit (hit.match): most
// names are not listed, and a Match is too large to return in registers.
func (ix *Index) decide(suffix []hashes, salted *saltedName) (hit, bool) {
	var ex exceptions
	for i, n := ix.candidate(suffix, 0, 0); i < len(suffix); i, n = ix.candidate(suffix, i, n+1) {
		if h, ok := ex.decide(ix.lists[n], n, i, suffix[i].key(), uint32(suffix[i].h2), salted); ok {
			h.at = i
			return h, true
		}
	}
	return hit{}, false
}

// candidate returns the first suffix i and list n, from suffix i and list
// n on (suffixes most specific first, for each all lists in order), where
// list n may decide suffix i; i is len(suffix) when there is none. Most
// lists are plain, and hold no suffix of most names: a probe of the table
// says so (and the filter of an overlay that does not touch the suffix
// leaves it to the table), in loops without calls. (A call in a loop
// would have the compiler save its variables on the stack and load them
// again on every turn.)
func (ix *Index) candidate(suffix []hashes, i, n int) (int, int) {
	for ; i < len(suffix); i, n = i+1, 0 {
		key := suffix[i].key()
		for ; n < len(ix.lists); n++ {
			if li := ix.lists[n]; li.salt != nil || li.over != nil && li.over.touches(key) || li.mayHold(key) {
				return i, n
			}
		}
	}
	return len(suffix), 0
}

// exceptions are the lists whose exception decided a name already, at a
// more specific suffix: their entries for less specific suffixes do not
// count.
type exceptions struct {
	lists [MaxLists / 64]uint64 // a bit a list, by its number in the index
	any   bool                  // whether lists has a bit set
}

// note marks list n as excepted.
func (ex *exceptions) note(n int) { ex.lists[n/64] |= 1 << (n % 64); ex.any = true }

// decide returns the record of list li, number n in the index, that blocks
// suffix i of a name (hashed to key and check for plain lists), or notes
// the list's exception for it.
func (ex *exceptions) decide(li *ListIndex, n, i int, key uint64, check uint32, salted *saltedName) (hit, bool) {
	if ex.any && ex.lists[n/64]&(1<<(n%64)) != 0 {
		return hit{}, false
	}
	if li.salt != nil {
		var ok bool
		if key, check, ok = li.saltedKey(salted, i); !ok {
			return hit{}, false
		}
	}
	if li.over != nil && li.over.touches(key) {
		h, excepted, ok := li.decideOver(key, check, i == 0)
		if excepted {
			ex.note(n)
		}
		return h, ok && !excepted
	}
	rec, ok := li.pick(key, check, i == 0, nil)
	if !ok {
		return hit{}, false
	}
	if rec.kind().IsException() {
		ex.note(n)
		return hit{}, false
	}
	return hit{list: li, from: li, kindMeta: rec.kindMeta}, true
}

// pick returns, of li's records at key that apply (to the name itself when
// self, else to a name below it) and that a delta did not remove, the one
// that decides: the lowest rank, and of those (one kind: kinds of a rank
// never apply to one query together) the one whose order reference,
// category and answer sort first. A tie goes by content, not by the order
// of the file's lines, which a delta does not carry. Records sort that way
// (sortMetas): the first that applies, past the hidden ones kept skips
// (overlay.kept; nil for records no delta changed).
func (li *ListIndex) pick(key uint64, check uint32, self bool, kept map[int]int) (record, bool) {
	r, found := li.find(key)
	if !found {
		return record{}, false
	}
	for r < len(li.recs) && li.recs[r].key == key {
		rec := li.recs[r]
		if rec.check != check || !applies(rec.kind(), self) {
			r = li.runEnd(r)
			continue
		}
		if k, ok := kept[r]; ok { // the run starts with hidden records
			r = k
			continue
		}
		return rec, true
	}
	return record{}, false
}

// runEnd returns the index after the records of recs[r]'s key, check and
// kind: r+1 for a name listed once, found by binary search for one listed
// many times, so that a lookup passes over the records of a kind that does
// not apply in the time of a search however many there are.
func (li *ListIndex) runEnd(r int) int {
	rec := li.recs[r]
	end := r + 1
	for ; end < len(li.recs) && end <= r+longRun; end++ {
		if !sameRun(li.recs[end], rec) {
			return end
		}
	}
	if end == len(li.recs) {
		return end
	}
	n, _ := slices.BinarySearchFunc(li.recs[end:], rec, func(x, rec record) int {
		if sameRun(x, rec) {
			return -1
		}
		return 1
	})
	return end + n
}

// sameRun reports whether x and y are records of one key, check and kind.
func sameRun(x, y record) bool { return x.key == y.key && x.check == y.check && x.kind() == y.kind() }

// compareRuns orders records as recordLess does, but for their metas: by
// key, check, precedence and kind.
func compareRuns(x, y record) int {
	return cmp.Or(cmp.Compare(x.key, y.key), cmp.Compare(x.check, y.check), cmp.Compare(rank(x.kind()), rank(y.kind())), cmp.Compare(x.kind(), y.kind()))
}

// hit is the record that blocks a name.
type hit struct {
	list     *ListIndex // the list that blocks the name
	from     *ListIndex // whose metas kindMeta indexes: list, or the index of its overlay
	kindMeta uint32
	at       int // the suffix of the name it matched
}

// match returns the Match of h in a name whose suffixes start at start,
// laid out in salted when h.list is hashed.
func (h hit) match(start []uint16, salted *saltedName) Match {
	m := h.from.match(h.kindMeta)
	m.List, m.Start = h.list.list, int(start[h.at])
	if h.list.salt != nil {
		m.Digest = salted.digest(h.list.salt, h.at) // again: a hit is rare, a digest small
	}
	return m
}

// match is the match of a record's kind and meta in li.
func (li *ListIndex) match(kindMeta uint32) Match {
	m := li.metas[kindMeta&(1<<metaBits-1)]
	return Match{List: li.list, Kind: blocklist.Kind(kindMeta >> metaBits), Order: m.order, Category: m.category, Action: m.action, Local: m.local}
}

// mayHold reports whether li may have a record of key: false is certain,
// true is for find to confirm (the table holds 32 bits of each key).
func (li *ListIndex) mayHold(key uint64) bool {
	table, tag := li.table, key>>32
	for s := key >> (li.shift & 63); ; s++ { // & 63: no check for shifts of 64 or more
		if v := table[s]; v == 0 || v>>32 >= tag {
			return v != 0 && v>>32 == tag
		}
	}
}

// find returns the first record of key.
func (li *ListIndex) find(key uint64) (int, bool) {
	table, tag := li.table, key>>32 // in registers, not reloaded each probe
	for s := key >> (li.shift & 63); ; s++ {
		v := table[s]
		if v == 0 || v>>32 > tag {
			return 0, false
		}
		if v>>32 == tag {
			if i := int(uint32(v)) - 1; li.recs[i].key == key {
				return i, true
			}
		}
	}
}

// Lists returns the indexed lists, sorted by name. The caller must not
// modify them.
func (ix *Index) Lists() []*blocklist.List { return ix.names }

// hashName hashes a canonical name as Lookup hashes a query name, and
// counts its labels.
func hashName(name string) (hashes, int, bool) {
	var start [shortLabels]uint16
	if n, ok := splitPlain(name, &start); ok { // most names: as a query's
		var suffix [shortLabels]hashes
		hashPlain(name, start[:n], suffix[:n])
		return suffix[0], n, true
	}
	var l labels
	if !l.split(name) || l.n == 0 {
		return hashes{}, 0, false
	}
	h := hashes{seed1, seed2}
	for i := l.n - 1; i >= 0; i-- {
		h = add(h, l.label(i))
	}
	return h, l.n, true
}
