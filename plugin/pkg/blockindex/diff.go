package blockindex

import (
	"errors"
	"slices"
	"strings"
	"unsafe"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// A whole new version of a list in force mostly repeats it. Compiled
// beside the version answering, it costs a second set of records and
// table (300 MB at 10 M names) and their sort; diffed against the
// version's records (the base) as the parser streams it, it costs a bit
// per base record: each entry found in the base marks its record, the
// others are kept, and the result is the base with an overlay, as if a
// delta of the change had arrived (Apply). Past limit changed entries the
// differ gives up, early when it can: the caller compiles the version.

// ErrTooDifferent is Differ.Finish's error for a version better compiled
// whole: more changed entries than the limit, address entries, another
// salt, or an entry the compiler would refuse (it says why).
var ErrTooDifferent = errors.New("blockindex: the version is better compiled whole than diffed")

// Differ diffs a list's next version, entry by entry, against a compiled
// version of it.
type Differ struct {
	base   *ListIndex
	limit  int
	keys   []metaKey          // each base meta's key, by id
	sums   []uint64           // metaHash of each, by id
	ids    map[metaKey]uint32 // the first of the base's metas with each key
	seen   []uint64           // a bit per base record that the version holds
	next   map[int]int        // markInRun's first record not marked yet, by group
	queue  []queued           // entries waiting for a batch's lookups
	text   []byte             // the queued entries' strings
	sink   uint64             // what a batch's passes load ahead, kept
	added  []blocklist.Entry
	sum    checksum // of the version's entries
	canary string   // the canary compiled into the base records
	failed bool
}

// NewDiffer returns a differ against base's records that gives up past
// limit changed entries (added, and base records removed), or nil when
// base is not one to diff against: it holds address entries, or limit is
// not positive.
func NewDiffer(base *ListIndex, limit int) *Differ {
	if base.ips != nil || limit <= 0 {
		return nil
	}
	n := len(base.metas)
	d := &Differ{base: base, limit: limit, ids: make(map[metaKey]uint32, n), keys: make([]metaKey, n), sums: make([]uint64, n),
		seen: make([]uint64, (len(base.recs)+63)/64), canary: base.list.Canary}
	if base.over != nil {
		d.canary = base.over.canary
	}
	for i, m := range base.metas {
		d.keys[i], d.sums[i] = m.key(), metaHash(m)
		if _, dup := d.ids[d.keys[i]]; !dup {
			d.ids[d.keys[i]] = uint32(i)
		}
	}
	return d
}

// batch is how many entries the differ looks up together. Against a list
// of millions each lookup misses the cache twice (a table slot, then a
// record); loading a batch's slots in one pass, then its records in
// another, lets those misses overlap instead of following each other.
const batch = 64

// queued is an entry waiting for its batch's lookups. Its strings, which
// may be in the stream's buffer, are copies in the batch's text.
type queued struct {
	e     blocklist.Entry
	h     hashes
	rec   record // its key and check; its kind and meta are e's
	local string // the text of e.Local
	r     int    // its key's first record, or -1
}

// Add takes the version's next entry.
func (d *Differ) Add(e blocklist.Entry) {
	if d.failed {
		return
	}
	h, err := nameHashes(e)
	if err != nil || e.Prefix.IsValid() || e.Hashed != (d.base.salt != nil) {
		d.fail()
		return
	}
	// An entry is large: it is copied into its place in the queue once,
	// and the queue is walked by index. (Copies of entries were a tenth of
	// a reload.)
	d.queue = append(d.queue, queued{})
	q := &d.queue[len(d.queue)-1]
	q.e, q.h, q.rec = e, h, record{key: h.key(), check: uint32(h.h2)}
	q.e.Name, q.e.Order, q.e.Category = d.keep(e.Name), d.keep(e.Order), d.keep(e.Category)
	if e.Local != nil {
		q.local = blocklist.LocalText(e.Local)
	}
	if len(d.queue) == batch {
		d.flush()
	}
}

// keep copies s into the batch's text and returns the copy, valid until
// the batch is flushed. (Grown, the text leaves the copies made before in
// the array they point into.)
func (d *Differ) keep(s string) string {
	if s == "" {
		return ""
	}
	start := len(d.text)
	d.text = append(d.text, s...)
	return unsafe.String(&d.text[start], len(s))
}

// add keeps e, added, unless that makes one change too many.
func (d *Differ) add(e blocklist.Entry) {
	if len(d.added) >= d.limit {
		d.fail()
		return
	}
	d.added = append(d.added, e)
}

// flush looks up the queued entries: each marks a base record identical
// to it, or is added.
func (d *Differ) flush() {
	b := d.base
	for i := range d.queue { // the slots, together
		d.sink += b.table[d.queue[i].rec.key>>b.shift]
	}
	for i := range d.queue { // the records, together, and their seen bits
		r, ok := b.find(d.queue[i].rec.key)
		if !ok {
			r = -1
		} else {
			d.sink += d.seen[r/64]
		}
		d.queue[i].r = r
	}
	for i := range d.queue { // the metas of the records, together
		if r := d.queue[i].r; r >= 0 {
			d.sink += uint64(len(d.keys[b.recs[r].kindMeta&(1<<metaBits-1)].order))
		}
	}
	for i := range d.queue {
		q := &d.queue[i]
		if id, ok := d.mark(q); ok {
			d.sum.add(entryValue(q.h, q.e.Kind, d.sums[id]))
			continue
		}
		// Added, or changed: the sum takes its meta's hash, which the
		// base may know already.
		k := metaKey{order: q.e.Order, category: q.e.Category, action: q.e.Action, local: q.local}
		if id, known := d.ids[k]; known {
			d.sum.add(entryValue(q.h, q.e.Kind, d.sums[id]))
		} else {
			m, _ := newMeta(q.e)
			d.sum.add(entryValue(q.h, q.e.Kind, metaHash(m)))
		}
		e := q.e
		e.Name, e.Order, e.Category = strings.Clone(e.Name), strings.Clone(e.Order), strings.Clone(e.Category)
		if d.add(e); d.failed {
			return
		}
	}
	clear(d.queue) // no string of the text outlives the batch
	d.queue, d.text = d.queue[:0], d.text[:0]
}

// mark marks the first base record identical to q's entry (its key,
// check, kind and meta), from q.r on, and not marked yet, and returns
// the record's meta. The meta is compared field by field: the record
// names one, where a map would have to find the entry's among them all
// (a lookup that missed the cache was the differ's largest cost). Most
// names are listed once: their record is the first, and the next one,
// often in another cache line, is not read.
func (d *Differ) mark(q *queued) (uint32, bool) {
	recs := d.base.recs
	for r := q.r; r >= 0 && r < len(recs) && recs[r].key == q.rec.key; r++ {
		if r-q.r == longRun {
			return d.markInRun(q)
		}
		rec := recs[r]
		if rec.check != q.rec.check || rec.kind() != q.e.Kind || d.seen[r/64]&(1<<(r%64)) != 0 {
			continue
		}
		id := rec.kindMeta & (1<<metaBits - 1)
		if k := &d.keys[id]; k.order == q.e.Order && k.category == q.e.Category && k.action == q.e.Action && k.local == q.local {
			d.seen[r/64] |= 1 << (r % 64)
			return id, true
		}
	}
	return 0, false
}

// longRun is how many records of one key mark walks; past them, a name
// listed more often is marked by markInRun.
const longRun = 16

// markInRun is mark for a name listed many times, in the time of a search
// whatever the count, where a walk of its records for each of its entries
// would grow with the square of the count: the entry's meta is looked up,
// its identical records found by binary search among the name's (they are
// sorted), and the group's first record not marked yet kept in next.
func (d *Differ) markInRun(q *queued) (uint32, bool) {
	id, ok := d.ids[metaKey{order: q.e.Order, category: q.e.Category, action: q.e.Action, local: q.local}]
	if !ok {
		return 0, false
	}
	want := record{key: q.rec.key, check: q.rec.check, kindMeta: uint32(q.e.Kind)<<metaBits | id}
	first, found := slices.BinarySearchFunc(d.base.recs[q.r:], want, compareRecords) // sorted by compareRecords
	if !found {
		return 0, false
	}
	first += q.r
	if d.next == nil {
		d.next = map[int]int{}
	}
	for r := max(first, d.next[first]); r < len(d.base.recs) && d.base.recs[r] == want; r++ {
		if d.seen[r/64]&(1<<(r%64)) == 0 {
			d.seen[r/64] |= 1 << (r % 64)
			d.next[first] = r + 1
			return id, true
		}
	}
	return 0, false
}

func (d *Differ) fail() { d.failed, d.added, d.seen, d.queue = true, nil, nil, nil }

// Finish returns the index of version l, whose entries were added: the
// base's records with an overlay of the change. The differ is spent. No
// entry marks the canary's record (its meta is the header's alone):
// publish keeps it or hides it, as the canary of l says.
func (d *Differ) Finish(l *blocklist.List) (*ListIndex, error) {
	defer d.fail()
	if !d.failed {
		d.flush()
	}
	if d.failed || string(l.Salt) != string(d.base.salt) {
		return nil, ErrTooDifferent
	}
	ov := &overlay{added: d.added, hidden: map[record]int32{}, canary: d.canary}
	n := len(d.added)
	recs := d.base.recs
	for w, bits := range d.seen {
		for i := w * 64; bits != ^uint64(0) && i < min(len(recs), w*64+64); i++ {
			if bits&(1<<(i%64)) == 0 {
				if n++; n > d.limit+1 { // +1: the canary's, below
					return nil, ErrTooDifferent
				}
				ov.hidden[recs[i]]++
			}
		}
	}
	// The canary's record, which no entry marks, is not a change when
	// the canary stays (publish keeps it).
	if rec, ok := d.base.canaryRecord(d.canary); ok && d.canary != "" && l.Canary == d.canary && ov.hidden[rec] > 0 {
		n--
	}
	if n > d.limit {
		return nil, ErrTooDifferent
	}
	return d.base.publish(l, d.sum, ov)
}
