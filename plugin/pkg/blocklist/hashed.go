package blocklist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A hashed (confidential) list names its entries by digest, so that no
// copy of it on a resolver holds a listed name: see "Confidential lists"
// in docs/list-format.md.

const (
	// HashPrefix starts the pattern of a hashed entry: "h:" and its digest.
	HashPrefix = "h:"
	// SaltSize is the length in bytes of a hashed list's salt.
	SaltSize = 32
	// hashAlgorithm is the only digest the "hashed" header names.
	hashAlgorithm = "sha256"
)

// Digest is the digest of a name in a hashed list: the first 128 bits of
// SHA-256(salt ‖ name).
type Digest [16]byte

// String returns d in lowercase hex, as a hashed list writes it.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// HashName returns the digest of name, which must be canonical (see
// CanonicalName), under salt.
func HashName(salt []byte, name string) Digest {
	buf := make([]byte, 0, len(salt)+len(name))
	sum := sha256.Sum256(append(append(buf, salt...), name...))
	return Digest(sum[:16])
}

// Hashed reports whether the header is a hashed list's: one with a salt.
func (h Header) Hashed() bool { return h.Salt != nil }

// parseSalt parses the value of a "hashed" header: "sha256 SALT".
func parseSalt(value string) ([]byte, error) {
	alg, salt, _ := strings.Cut(value, " ")
	if alg != hashAlgorithm {
		return nil, fmt.Errorf("hashed %s: the only digest is %q: write \"hashed: sha256 SALT\"", quote(value), hashAlgorithm)
	}
	salt = strings.TrimSpace(salt)
	b, err := hex.DecodeString(salt)
	if err != nil || len(b) != SaltSize {
		return nil, fmt.Errorf("hashed: the salt must be %d bytes in hex (%d hex digits), not %s", SaltSize, 2*SaltSize, quote(salt))
	}
	return b, nil
}

// parseDigest parses the hex digest of an "h:" pattern.
func parseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("a digest is %d hex digits, not %d", 2*len(d), len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, errors.New("the digest is not hexadecimal")
	}
	return d, nil
}

// Hash returns the hashed form of l, a plain list in regblock's format,
// under salt: the same header with a "hashed" line, and each name entry
// replaced by the digest of its name (address entries stay as they are).
// The entries' order references and categories stay, and their order.
func Hash(l *List, salt []byte) (*List, error) {
	if l.Hashed() {
		return nil, fmt.Errorf("%s is hashed already", l.File)
	}
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("the salt must be %d bytes, not %d", SaltSize, len(salt))
	}
	for _, e := range l.Entries {
		if e.Action != Notice {
			return nil, fmt.Errorf("%s:%d: a hashed list holds only entries that block with the notice answer", l.File, e.Line)
		}
	}
	h := *l
	h.Salt = append([]byte(nil), salt...)
	h.Entries = make([]Entry, len(l.Entries))
	for i, e := range l.Entries {
		if !e.Prefix.IsValid() {
			e.Hashed, e.Digest, e.Name = true, HashName(salt, e.Name), ""
		}
		h.Entries[i] = e
	}
	return &h, nil
}
