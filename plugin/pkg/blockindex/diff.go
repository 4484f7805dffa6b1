package blockindex

import (
	"errors"
	"strings"

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
	base  *ListIndex
	limit int
	// byOrder holds the first of the base's metas with each order, and
	// next the one after it with the same order: a lookup hashes and
	// compares one string where a map of whole metas took three.
	byOrder map[string]uint32
	next    []uint32
	keys    []metaKey // each base meta's key, by id
	sums    []uint64  // metaHash of each, by id
	// last is the meta of the last entry found in the base: most entries
	// share one, and a map lookup per entry was a fifth of a compile.
	last   metaKey
	lastID uint32
	plain  uint32   // the id of the meta of an entry that says nothing besides its name
	seen   []uint64 // a bit per base record that the version holds
	queue  []queued // entries waiting for a batch's lookups
	text   []byte   // the queued entries' strings
	sink   uint64   // what the batch's first pass loads, kept
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
	d := &Differ{base: base, limit: limit, byOrder: make(map[string]uint32, n),
		next: make([]uint32, n), keys: make([]metaKey, n), sums: make([]uint64, n),
		seen: make([]uint64, (len(base.recs)+63)/64), canary: base.list.Canary, lastID: noMeta, plain: noMeta}
	if base.over != nil {
		d.canary = base.over.canary
	}
	for i := n - 1; i >= 0; i-- { // from the last, so that each chain runs first to last
		m := base.metas[i]
		d.keys[i], d.sums[i] = m.key(), metaHash(m)
		if d.keys[i] == (metaKey{}) {
			d.plain = uint32(i)
		}
		d.next[i] = noMeta
		if first, ok := d.byOrder[m.order]; ok {
			d.next[i] = first
		}
		d.byOrder[m.order] = uint32(i)
	}
	return d
}

// noMeta is the id of no meta.
const noMeta = ^uint32(0)

// batch is how many entries the differ looks up together. Against a list
// of millions each lookup misses the cache twice (a table slot, then a
// record); loading a batch's slots in one pass, then its records in
// another, lets those misses overlap instead of following each other.
const batch = 64

// queued is an entry waiting for its batch's lookups: its strings, which
// may be in the stream's buffer, are copied into the batch's text.
type queued struct {
	e    blocklist.Entry
	rec  record
	ends [3]int // where its name, order and category end in the text
	r    int    // its key's first record, or -1
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
	id, known := d.metaID(metaKey{order: e.Order, category: e.Category, action: e.Action, local: blocklist.LocalText(e.Local)})
	if !known { // not in the base: added
		m, _ := newMeta(e)
		d.sum.add(entryValue(h, e.Kind, metaHash(m)))
		e.Name, e.Order, e.Category = strings.Clone(e.Name), strings.Clone(e.Order), strings.Clone(e.Category)
		d.add(e)
		return
	}
	d.sum.add(entryValue(h, e.Kind, d.sums[id]))
	// An entry is large: it is copied into its place in the queue once,
	// and the queue is walked by index. (Copies of entries were a tenth of
	// a reload.)
	d.queue = append(d.queue, queued{})
	q := &d.queue[len(d.queue)-1]
	q.e, q.rec = e, record{key: h.key(), check: uint32(h.h2), kindMeta: uint32(e.Kind)<<metaBits | id}
	for i, s := range [3]string{e.Name, e.Order, e.Category} {
		d.text = append(d.text, s...)
		q.ends[i] = len(d.text)
	}
	if len(d.queue) == batch {
		d.flush()
	}
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
// to its own, or is added.
func (d *Differ) flush() {
	b := d.base
	for i := range d.queue { // the slots, together
		d.sink += b.table[d.queue[i].rec.key&b.mask]
	}
	for i := range d.queue { // the records, together
		r, ok := b.find(d.queue[i].rec.key)
		if !ok {
			r = -1
		}
		d.queue[i].r = r
	}
	start := 0
	for i := range d.queue {
		q := &d.queue[i]
		if !d.mark(q.rec, q.r) {
			e := q.e
			e.Name = string(d.text[start:q.ends[0]])
			e.Order = string(d.text[q.ends[0]:q.ends[1]])
			e.Category = string(d.text[q.ends[1]:q.ends[2]])
			if d.add(e); d.failed {
				return
			}
		}
		start = q.ends[2]
	}
	d.queue, d.text = d.queue[:0], d.text[:0]
}

func (d *Differ) fail() { d.failed, d.added, d.seen, d.queue = true, nil, nil, nil }

// metaID returns the id of the base's meta k, if it has one.
func (d *Differ) metaID(k metaKey) (uint32, bool) {
	switch {
	case k == metaKey{}: // no order, category or answer: the most common
		return d.plain, d.plain != noMeta
	case d.lastID != noMeta && k == d.last:
		return d.lastID, true
	}
	id, ok := d.byOrder[k.order]
	for ; ok && id != noMeta; id = d.next[id] {
		if d.keys[id] == k {
			d.last, d.lastID = d.keys[id], id // k's strings may be the stream's
			return id, true
		}
	}
	return 0, false
}

// mark marks the first base record identical to rec, from r (its key's
// first record, or -1), and not marked yet, and reports whether there was
// one.
func (d *Differ) mark(rec record, r int) bool {
	recs := d.base.recs
	for ; r >= 0 && r < len(recs) && recs[r].key == rec.key; r++ {
		if recs[r] == rec && d.seen[r/64]&(1<<(r%64)) == 0 {
			d.seen[r/64] |= 1 << (r % 64)
			return true
		}
	}
	return false
}

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
