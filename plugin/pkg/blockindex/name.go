package blockindex

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// maxLabels is the most labels a DNS name can have (255 octets on the wire).
const maxLabels = 127

// labels is a name split into its labels, decoded from presentation format
// (escapes such as \065 and \. resolved) and folded to lower case. It lives
// on the stack of a lookup: nothing in it escapes to the heap.
type labels struct {
	buf   [255]byte         // the label bytes, one after the other
	end   [maxLabels]uint8  // end of label i in buf
	start [maxLabels]uint16 // where label i starts in the original name
	n     int
}

// split fills l from a name in presentation format, with or without the
// trailing dot. It reports false for a name that is not a valid DNS name:
// such a name is in no list.
func (l *labels) split(name string) bool {
	l.n = 0
	pos := 0   // next free byte in buf
	begin := 0 // start of the current label in name
	labelLen := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if labelLen == 0 {
				return name == "." // the root: no labels; else an empty label
			}
			if l.n == maxLabels {
				return false
			}
			l.end[l.n], l.start[l.n] = uint8(pos), uint16(begin)
			l.n++
			begin, labelLen = i+1, 0
			continue
		case c == '\\':
			if i+1 >= len(name) {
				return false
			}
			if d := name[i+1]; d >= '0' && d <= '9' {
				if i+3 >= len(name) {
					return false
				}
				v := int(d-'0')*100 + int(name[i+2]-'0')*10 + int(name[i+3]-'0')
				if !isDigit(name[i+2]) || !isDigit(name[i+3]) || v > 255 {
					return false
				}
				c = byte(v)
				i += 3
			} else {
				c = d
				i++
			}
		}
		if pos == len(l.buf) || labelLen == 63 {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l.buf[pos] = c
		pos++
		labelLen++
	}
	if labelLen > 0 {
		if l.n == maxLabels {
			return false
		}
		l.end[l.n], l.start[l.n] = uint8(pos), uint16(begin)
		l.n++
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// label returns the bytes of label i.
func (l *labels) label(i int) []byte {
	from := 0
	if i > 0 {
		from = int(l.end[i-1])
	}
	return l.buf[from:l.end[i]]
}

// Two 64-bit hashes of a name, computed from the root down so
// that the hash of every suffix of a query name comes out of one pass. The
// first places the name in the table, the second tells names apart whose
// first hash collides; the table knows a name by both, mixed under a
// secret (see key).
//
// A label goes in eight bytes at a time: a query's hashes are most of what
// a lookup costs, and a word costs the instructions a byte did.
const (
	seed1  = 14695981039346656037 // FNV-1a offset basis
	prime1 = 0xc2b2ae3d27d4eb4f   // xxHash's second 64-bit prime
	seed2  = 0x9e3779b97f4a7c15
	prime2 = 0xff51afd7ed558ccd
)

type hashes struct{ h1, h2 uint64 }

// add extends the hash of a name with one more label to its left, folding
// ASCII upper case. The label's last word goes in with multipliers that
// depend on the label's length, so that label boundaries are part of the
// hash.
func add[T ~string | ~[]byte](h hashes, label T) hashes {
	n := uint64(len(label))
	for len(label) > 8 {
		h = h.mix(lower(uint64(label[0])|uint64(label[1])<<8|uint64(label[2])<<16|uint64(label[3])<<24|
			uint64(label[4])<<32|uint64(label[5])<<40|uint64(label[6])<<48|uint64(label[7])<<56), 0)
		label = label[8:]
	}
	// The last 1 to 8 bytes, as one word. Every byte is in it and the
	// length goes in with it, so two labels give the same words only if
	// they are the same label.
	var w uint64
	switch k := len(label); {
	case k >= 4:
		w = uint64(label[0]) | uint64(label[1])<<8 | uint64(label[2])<<16 | uint64(label[3])<<24 |
			(uint64(label[k-4])|uint64(label[k-3])<<8|uint64(label[k-2])<<16|uint64(label[k-1])<<24)<<32
	case k > 0:
		w = uint64(label[0]) | uint64(label[k/2])<<8 | uint64(label[k-1])<<16
	}
	return h.mix(lower(w), n<<1)
}

// mix adds one word to both hashes. Each hash's state, the word folded
// in, is multiplied by a constant, and both halves of the 128-bit product
// are kept, folded: every bit of the input moves about half the bits of
// the result, where a 64-bit product would leave its low bits to the low
// bits alone. Each product then goes into the other hash, whose state is
// kept (fed forward):
//
//   - Fed forward, because a product is 0 whatever the state when the word
//     cancels it (w == h1, or w == -h2), and anyone can compute the state
//     of a name: a label spelling its parent's state would otherwise make
//     the hash forget the parent, and names under two parents could be
//     made to collide at will.
//   - Crossed, so that neither hash is a chain of its own: two names whose
//     first hashes agree part way differ again after the next word unless
//     their second hashes agree too (chains apart let the first be
//     collided label by label, 2^32 work a label). A difference can still
//     be held in one hash while the other varies, which is why the table
//     does not use the hashes as they are (see key).
//
// An even tweak changes the constants and keeps them odd: the last word of
// a label goes in with its length.
func (h hashes) mix(w, tweak uint64) hashes {
	hi, lo := bits.Mul64(h.h1^w, prime1^tweak)
	x1 := hi ^ lo
	hi, lo = bits.Mul64(h.h2+w, prime2^tweak)
	x2 := hi ^ lo
	return hashes{h.h1 ^ x2, h.h2 ^ x1}
}

// lower folds the ASCII upper-case letters among the eight bytes of w to
// lower case, all at once; other bytes, those above 0x7f included, are
// left alone.
func lower(w uint64) uint64 {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	x := w &^ high                // each byte below 0x80: the sums below never carry
	ge := x + ones*(0x80-'A')     // a byte's high bit set: it is 'A' or above
	gt := x + ones*(0x80-'Z'-1)   // a byte's high bit set: it is above 'Z'
	upper := ge &^ gt &^ w & high // 'A' to 'Z', high bit of w clear
	return w | upper>>2           // 0x80>>2 is 'a'-'A'
}

// key is what the table knows a name by: its low bits pick a slot, its
// high 32 bits are the tag a slot keeps, and a record holds it with 32
// bits of h2 (the check). It mixes all 128 bits of the hashes under
// tableKey, a secret of the process: the hashes are the same everywhere
// (the delta checksum is made of them), so a list's publisher can search
// for names whose first hash and check agree offline (about 2^36 work,
// holding one hash's difference while the other varies, a red team
// found); under the secret, two names share a key and check only if all
// 128 bits of their hashes agree, or by the chance of 2^-96. 0 marks an
// empty slot.
func (h hashes) key() uint64 {
	hi, lo := bits.Mul64(h.h1^tableKey[0], h.h2^tableKey[1])
	if k := hi ^ lo; k != 0 {
		return k
	}
	return 1
}

// tableKey is the secret key mixes the hashes under, drawn when the
// process starts: the tables of one process agree, and nothing outside it
// knows which names share a key.
var tableKey = func() (k [2]uint64) {
	var b [16]byte
	rand.Read(b[:]) // never fails (it crashes the program instead)
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}()
