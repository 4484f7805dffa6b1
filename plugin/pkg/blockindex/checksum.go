package blockindex

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// The checksum of a list version's entries, a delta's "digest": the sum,
// modulo 2^128, of one 128-bit value per entry. A sum can be updated entry
// by entry (add the values of the entries a delta adds, subtract those it
// removes), so a resolver checks the result of a delta in proportion to the
// change, and the compiler gets it almost free from the hashes it computes
// anyway. It detects a resolver whose state differs from the issuer's
// version (a wrong base, a bug, a damaged copy); it is not a signature: the
// delta that carries it is signed. The canary is part of the header, not
// an entry, and is left out.
//
// An entry's value mixes the two 64-bit hashes of its name (as a lookup
// computes them; for a hashed entry, the two halves of its digest; for an
// address entry, of its prefix's text), its kind, and a hash of its order
// reference, category and answer.

// checksum is a running sum.
type checksum struct{ lo, hi uint64 }

func (c *checksum) add(v checksum) {
	var carry uint64
	c.lo, carry = bits.Add64(c.lo, v.lo, 0)
	c.hi, _ = bits.Add64(c.hi, v.hi, carry)
}

func (c *checksum) sub(v checksum) {
	var borrow uint64
	c.lo, borrow = bits.Sub64(c.lo, v.lo, 0)
	c.hi, _ = bits.Sub64(c.hi, v.hi, borrow)
}

func (c checksum) bytes() blocklist.Checksum {
	var b blocklist.Checksum
	binary.BigEndian.PutUint64(b[:8], c.hi)
	binary.BigEndian.PutUint64(b[8:], c.lo)
	return b
}

// entryValue is an entry's term of the sum: h the hashes of its name, m
// the hash of its meta.
func entryValue(h hashes, kind blocklist.Kind, m uint64) checksum {
	a := fmix(h.h1 ^ uint64(kind)<<56 ^ m)
	b := fmix(h.h2 ^ bits.RotateLeft64(m, 32) + a)
	return checksum{lo: a, hi: fmix(b ^ uint64(kind))}
}

// metaHash hashes what an entry says besides its name.
func metaHash(m meta) uint64 {
	h := uint64(seed1)
	for _, s := range []string{m.order, m.category} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime1
		}
		h = (h ^ 0xff) * prime1 // no byte of the text: the end of the field
	}
	return fmix(h ^ uint64(m.action))
}

// fmix is MurmurHash3's 64-bit finalizer.
func fmix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// nameHashes returns the hashes an entry's name is indexed by.
func nameHashes(e blocklist.Entry) (hashes, error) {
	switch {
	case e.Prefix.IsValid():
		return add(hashes{seed1, seed2}, blocklist.IPPrefix+e.Prefix.String()), nil
	case e.Hashed:
		return digestHashes(e.Digest), nil
	}
	h, _, ok := hashName(e.Name)
	if !ok {
		return hashes{}, fmt.Errorf("blockindex: invalid name %q", e.Name)
	}
	return h, nil
}

// valueOf is e's term of the sum.
func valueOf(e blocklist.Entry) (checksum, error) {
	h, err := nameHashes(e)
	if err != nil {
		return checksum{}, err
	}
	m, _ := newMeta(e)
	return entryValue(h, e.Kind, metaHash(m)), nil
}

// ChecksumOf returns the checksum of a list version's entries: what a
// delta's "digest" header holds, and what a resolver's index of that
// version computes (ListIndex.Checksum).
func ChecksumOf(entries []blocklist.Entry) (blocklist.Checksum, error) {
	var sum checksum
	for _, e := range entries {
		v, err := valueOf(e)
		if err != nil {
			return blocklist.Checksum{}, err
		}
		sum.add(v)
	}
	return sum.bytes(), nil
}

// Checksum returns the checksum of the entries of the version li holds.
func (li *ListIndex) Checksum() blocklist.Checksum { return li.sum.bytes() }

// Sum is a running checksum of a version's entries, for whoever follows
// a list's deltas without indexing it (regblock sync): add a version's
// entries, then each delta's additions, subtract its removals, and
// compare with its digest.
type Sum struct{ c checksum }

// Add adds entry e to the sum.
func (s *Sum) Add(e blocklist.Entry) error {
	v, err := valueOf(e)
	s.c.add(v)
	return err
}

// Sub takes entry e from the sum.
func (s *Sum) Sub(e blocklist.Entry) error {
	v, err := valueOf(e)
	s.c.sub(v)
	return err
}

// Checksum returns the checksum of the entries summed.
func (s Sum) Checksum() blocklist.Checksum { return s.c.bytes() }

// Apply applies delta d to the sum, and reports whether the result is the
// checksum d says (its digest): what a resolver checks before it answers
// from a delta. It does not know whether d's removals were summed.
func (s *Sum) Apply(d *blocklist.Delta) bool {
	for _, e := range d.Removed {
		if s.Sub(e) != nil {
			return false
		}
	}
	for _, e := range d.Added {
		if s.Add(e) != nil {
			return false
		}
	}
	return s.Checksum() == d.Checksum
}
