package blockindex

import (
	"encoding/binary"
	"maps"
	"math/bits"
	"net/netip"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// prefixes are a list's address entries. For each prefix length in use, a
// map from the masked address to the entry's kind and meta: a lookup probes
// one map entry per length in use, longest first, so it costs the same with
// ten prefixes or a million, and lists use a few lengths (/24 and /32 above
// all).
type prefixes struct {
	v4    map[uint64]uint32 // length<<32 | address
	v6    map[key6]uint32
	lens4 uint64    // bit n set: a /n IPv4 prefix is listed
	lens6 [3]uint64 // bit n%64 of word n/64 set: a /n IPv6 prefix is listed
}

type key6 struct {
	hi, lo uint64
	bits   uint8
}

func (p *prefixes) len() int { return len(p.v4) + len(p.v6) }

// renumbered returns p with its metas numbered by remap, p unchanged.
func (p prefixes) renumbered(remap []uint32) prefixes {
	p.v4, p.v6 = maps.Clone(p.v4), maps.Clone(p.v6)
	for k, v := range p.v4 {
		p.v4[k] = renumber(v, remap)
	}
	for k, v := range p.v6 {
		p.v6[k] = renumber(v, remap)
	}
	return p
}

// add adds a masked prefix. Of two entries for one prefix, an exception
// wins, as it does for names; else the one whose claim sorts first, as
// first says (whatever the order of the lines, as for names).
func (p *prefixes) add(prefix netip.Prefix, kindMeta uint32, first func(a, b uint32) bool) {
	n := prefix.Bits()
	if prefix.Addr().Is4() {
		if p.v4 == nil {
			p.v4 = map[uint64]uint32{}
		}
		p.lens4 |= 1 << n
		put(p.v4, uint64(n)<<32|uint64(binary.BigEndian.Uint32(prefix.Addr().AsSlice())), kindMeta, first)
		return
	}
	if p.v6 == nil {
		p.v6 = map[key6]uint32{}
	}
	p.lens6[n/64] |= 1 << (n % 64)
	a := prefix.Addr().As16()
	put(p.v6, key6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(n)}, kindMeta, first)
}

func put[K comparable](m map[K]uint32, k K, kindMeta uint32, first func(a, b uint32) bool) {
	old, ok := m[k]
	oldEx, newEx := blocklist.Kind(old>>metaBits).IsException(), blocklist.Kind(kindMeta>>metaBits).IsException()
	if !ok || !oldEx && newEx || oldEx == newEx && first(kindMeta, old) {
		m[k] = kindMeta
	}
}

// lookup returns the kind and meta of the longest listed prefix that holds
// addr (an unmapped address), and that prefix's length.
func (p *prefixes) lookup(addr netip.Addr) (kindMeta uint32, n int, ok bool) {
	if addr.Is4() {
		a := binary.BigEndian.Uint32(addr.AsSlice())
		for lens := p.lens4; lens != 0; lens &^= 1 << n {
			n = 63 - bits.LeadingZeros64(lens)
			mask := ^uint32(0) << (32 - n) // 0 for n = 0: a shift of 32 clears
			if kindMeta, ok = p.v4[uint64(n)<<32|uint64(a&mask)]; ok {
				return kindMeta, n, true
			}
		}
		return 0, 0, false
	}
	a := addr.As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	for w := 2; w >= 0; w-- {
		for lens := p.lens6[w]; lens != 0; {
			b := 63 - bits.LeadingZeros64(lens)
			lens &^= 1 << b
			n = w*64 + b
			k := key6{hi, lo, uint8(n)}
			if n < 64 {
				k.hi, k.lo = hi&^(^uint64(0)>>n), 0
			} else {
				k.lo = lo &^ (^uint64(0) >> (n - 64))
			}
			if kindMeta, ok = p.v6[k]; ok {
				return kindMeta, n, true
			}
		}
	}
	return 0, 0, false
}

// HasAddrs reports whether any list of ix has address entries.
func (ix *Index) HasAddrs() bool { return ix.ips }

// LookupAddr returns the address entry that blocks an upstream answer to a
// query for qname that holds addr: of the lists whose longest prefix holding
// addr blocks, the one with the longest prefix, ties going to the list whose
// name sorts first. A list whose name entries except qname does not block
// it by address: in RPZ too, a QNAME trigger goes before an IP trigger.
// For the many addresses of one answer, AddrsOf works qname out once.
func (ix *Index) LookupAddr(qname string, addr netip.Addr) (Match, bool) {
	a := ix.AddrsOf(qname)
	return a.Lookup(addr)
}

// Addrs looks up the addresses of answers for one name, as LookupAddr
// does: the lists that except the name are worked out once, at the first
// address a list holds, however many addresses follow (an answer of
// thousands, each checked against a name of a hundred labels, cost
// milliseconds).
type Addrs struct {
	ix       *Index
	qname    string
	excepted [MaxLists / 64]uint64
	known    bool // excepted is worked out
}

// AddrsOf returns the address lookups of answers for qname.
func (ix *Index) AddrsOf(qname string) Addrs { return Addrs{ix: ix, qname: qname} }

// Lookup is LookupAddr(qname, addr).
func (a *Addrs) Lookup(addr netip.Addr) (Match, bool) {
	if !a.ix.ips {
		return Match{}, false
	}
	addr = addr.Unmap()
	var best Match
	longest := -1
	for i, li := range a.ix.lists {
		if li.ips == nil {
			continue
		}
		kindMeta, n, ok := li.ips.lookup(addr)
		if !ok || n <= longest || blocklist.Kind(kindMeta>>metaBits).IsException() {
			continue
		}
		if !a.known {
			a.excepted, a.known = a.ix.exceptions(a.qname), true
		}
		if a.excepted[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		best, longest = li.match(kindMeta), n
		best.Prefix = netip.PrefixFrom(addr, n).Masked()
	}
	return best, longest >= 0
}

// exceptions returns the lists (bit i for ix.lists[i]) whose most specific
// entry for qname is an exception.
func (ix *Index) exceptions(qname string) (excepted [MaxLists / 64]uint64) {
	var l labels
	if !l.split(qname) || l.n == 0 {
		return excepted
	}
	var suffix [maxLabels]hashes
	var salted saltedName
	ix.prepare(&l, &suffix, &salted)
	var decided [MaxLists / 64]uint64
	for i := 0; i < l.n; i++ {
		plainKey, plainCheck := suffix[i].key(), uint32(suffix[i].h2)
		for n, li := range ix.lists {
			word, bit := n/64, uint64(1)<<(n%64)
			if decided[word]&bit != 0 {
				continue
			}
			key, check := plainKey, plainCheck
			if li.salt != nil {
				var ok bool
				if key, check, ok = li.saltedKey(&salted, i); !ok {
					continue
				}
			}
			if li.over != nil && li.over.touches(key) { // what deltas changed decides as in a name lookup
				if _, except, ok := li.decideOver(key, check, i == 0); ok {
					decided[word] |= bit
					if except {
						excepted[word] |= bit
					}
				}
				continue
			}
			if rec, ok := li.pick(key, check, i == 0, nil); ok {
				decided[word] |= bit
				if rec.kind().IsException() {
					excepted[word] |= bit
				}
			}
		}
	}
	return excepted
}
