package blockindex

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// A hashed list keys its records by the digests of its names
// (blocklist.HashName), so a lookup in it hashes each suffix of the query
// name with the list's salt: one SHA-256 a suffix, where a plain list
// costs a few multiplications.

// digestHashes keys a record by a digest, as hashName keys a plain name.
func digestHashes(d blocklist.Digest) hashes {
	return hashes{binary.BigEndian.Uint64(d[:8]), binary.BigEndian.Uint64(d[8:])}
}

// saltedName is a query name laid out for digests: its canonical text
// (labels in lower case, joined by dots) after room for a salt, so that
// salt ‖ suffix is one slice for every suffix.
type saltedName struct {
	buf  [blocklist.SaltSize + 255 + maxLabels]byte
	from [maxLabels]uint16 // where suffix i starts in buf
	end  int
	// hashable is the first suffix made only of labels a list can name
	// (letters, digits, '-' and '_'): a label holding a dot, a blank or any
	// other byte is in no list, nor are the names that end with it.
	hashable int
}

func (s *saltedName) fill(l *labels) {
	pos := blocklist.SaltSize
	s.hashable = 0
	for i := 0; i < l.n; i++ {
		pos = putLabel(s, i, pos, l.label(i))
	}
	s.end = pos - 1
}

// fillPlain fills s from a name without escapes whose labels start at
// start (see splitPlain).
func (s *saltedName) fillPlain(name string, start []uint16) {
	pos := blocklist.SaltSize
	s.hashable = 0
	for i := range start {
		end := len(name)
		if i+1 < len(start) {
			end = int(start[i+1]) - 1
		}
		pos = putLabel(s, i, pos, strings.TrimSuffix(name[start[i]:end], "."))
	}
	s.end = pos - 1
}

// putLabel writes label i, in lower case, at pos, and a dot after it; it
// returns where the next label goes.
func putLabel[T ~string | ~[]byte](s *saltedName, i, pos int, label T) int {
	s.from[i] = uint16(pos)
	for j := 0; j < len(label); j++ {
		c := label[j]
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			s.hashable = i + 1
		}
		s.buf[pos] = c
		pos++
	}
	s.buf[pos] = '.'
	return pos + 1
}

// digest returns the digest of suffix i under salt. It writes the salt over
// the labels before the suffix, so it must be asked for suffixes in
// ascending order (any number of salts for each).
func (s *saltedName) digest(salt []byte, i int) blocklist.Digest {
	at := int(s.from[i]) - blocklist.SaltSize
	copy(s.buf[at:], salt)
	sum := sha256.Sum256(s.buf[at:s.end])
	return blocklist.Digest(sum[:16])
}

// saltedKey returns the record key and check a hashed list li keys suffix
// i of a query name by. ok is false when li cannot list the suffix.
func (li *ListIndex) saltedKey(salted *saltedName, i int) (key uint64, check uint32, ok bool) {
	if i < salted.hashable {
		return 0, 0, false
	}
	h := digestHashes(salted.digest(li.salt, i))
	return h.key(), uint32(h.h2), true
}
