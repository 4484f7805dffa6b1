package blockindex

import (
	"crypto/sha256"
	"encoding/binary"

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
		s.from[i] = uint16(pos)
		label := l.label(i)
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				s.hashable = i + 1
			}
		}
		pos += copy(s.buf[pos:], label)
		s.buf[pos] = '.'
		pos++
	}
	s.end = pos - 1
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
