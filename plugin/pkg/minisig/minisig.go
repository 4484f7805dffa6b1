// Package minisig reads minisign keys and signature files, and verifies
// signatures: a .minisig file may hold several signatures, one after
// another, and a key is its Ed25519 public key, never its key ID alone.
// Lists, trust policies, receipts and releases are all signed this way.
package minisig

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"

	"aead.dev/minisign"
	"filippo.io/edwards25519"

	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// Suffix is appended to a signed file's path to name its detached
// signature.
const Suffix = ".minisig"

// maxKeySize bounds a public key file: its two lines take about 100 bytes.
const maxKeySize = 4 << 10

// MaxSize bounds a signature file; a minisign signature
// with generous comments is well under 1 KiB.
const MaxSize = 64 << 10

// ReadPublicKey reads a minisign public key file, as written by
// "minisign -G" or "regblock keygen".
func ReadPublicKey(path string) (minisign.PublicKey, error) {
	var key minisign.PublicKey
	data, err := regularfile.Read(path, maxKeySize)
	if err != nil {
		return key, fmt.Errorf("public key: %w", err)
	}
	if err := key.UnmarshalText(data); err != nil {
		return key, fmt.Errorf("public key %s: not a minisign public key (%s)", path, strings.TrimPrefix(err.Error(), "minisign: "))
	}
	if err := CheckPublicKey(key); err != nil {
		return key, fmt.Errorf("public key %s: %v", path, err)
	}
	return key, nil
}

// CheckPublicKey refuses an Ed25519 public key that no key pair made: a
// point of small order, for which made-up signatures verify without any
// secret key, or a non-canonical encoding, which would let one key pass
// for two. Neither comes out of minisign -G or regblock keygen.
func CheckPublicKey(k minisign.PublicKey) error {
	b := KeyBytes(k)
	p, err := new(edwards25519.Point).SetBytes(b[:])
	switch {
	case err != nil:
		return fmt.Errorf("key %X is not a point of Ed25519", k.ID())
	case !bytes.Equal(p.Bytes(), b[:]):
		return fmt.Errorf("key %X is not canonically encoded", k.ID())
	case new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1:
		return fmt.Errorf("key %X is a point of small order, under which made-up signatures verify", k.ID())
	}
	return nil
}

// ReadSecretKey reads a minisign secret key file; password is asked only
// for an encrypted key.
func ReadSecretKey(path string, password func() (string, error)) (minisign.PrivateKey, error) {
	var key minisign.PrivateKey
	data, err := regularfile.Read(path, maxKeySize)
	if err != nil {
		return key, err
	}
	if !minisign.IsEncrypted(data) {
		if err := key.UnmarshalText(data); err != nil {
			return key, fmt.Errorf("%s: not a minisign secret key: %v", path, err)
		}
		return key, nil
	}
	pw, err := password()
	if err != nil {
		return key, err
	}
	if key, err = minisign.DecryptKey(pw, data); err != nil {
		return key, fmt.Errorf("%s: wrong password, or not a minisign secret key", path)
	}
	return key, nil
}

// Verify checks that sig, the text of a .minisig file, holds a valid
// minisign signature of data by one of keys, and returns the keys whose
// signatures verify, each public key once. Both prehashed (the minisign
// default) and legacy signatures verify.
func Verify(data, sig []byte, keys []minisign.PublicKey) ([]minisign.PublicKey, error) {
	signed, err := Trusted(sig, keys)
	if err != nil {
		return nil, err
	}
	// Prehashed signatures are checked against one BLAKE2b of data, so that
	// a .minisig full of blocks costs one pass over a large list, not one a
	// block; a legacy signature needs a pass of its own (Ed25519 over the
	// whole message), so only maxLegacy of them are checked.
	var prehash *minisign.Reader
	legacy := 0
	return Verified(signed, func(s Signature) bool {
		if !s.Hashed {
			legacy++
			return legacy <= maxLegacy && minisign.Verify(s.Key, data, s.Text)
		}
		if prehash == nil {
			prehash = minisign.NewReader(bytes.NewReader(data))
			io.Copy(io.Discard, prehash) // reading memory does not fail
		}
		return prehash.Verify(s.Key, s.Text)
	})
}

// maxLegacy bounds the legacy (not prehashed) signatures checked in one
// .minisig file: minisign writes them only when asked (-l), and each costs
// a pass over the whole list.
const maxLegacy = 4

// Signature is one signature of a .minisig file, to be checked under one
// trusted key.
type Signature struct {
	Key    minisign.PublicKey
	Text   []byte // the four lines minisign writes
	Hashed bool   // prehashed (minisign's default), not legacy
}

// Trusted pairs the first signature of sig that carries each
// key ID with every key of keys that carries that ID: a .minisig file may
// hold several signatures one after another (each the four lines stock
// minisign writes; cat joins them). The key ID only finds the candidates:
// which key signed is decided by verifying. Anything else in the file
// (garbage between blocks, a block that does not decode, a signature by
// another key, a second block carrying an ID already seen) counts as
// nothing, so that no file costs more checks than there are trusted keys.
// It is an error when no signature names a trusted key.
func Trusted(sig []byte, keys []minisign.PublicKey) ([]Signature, error) {
	var signed []Signature
	var others []string
	var seen []uint64
	for text, s := range signatureBlocks(sig) {
		if slices.Contains(seen, s.KeyID) {
			continue
		}
		seen = append(seen, s.KeyID)
		found := false
		for _, k := range keys {
			if k.ID() == s.KeyID {
				signed = append(signed, Signature{k, text, s.Algorithm == minisign.HashEdDSA})
				found = true
			}
		}
		if !found {
			others = append(others, fmt.Sprintf("%X", s.KeyID))
		}
	}
	switch {
	case len(signed) > 0:
		return signed, nil
	case len(others) == 1:
		return nil, fmt.Errorf("signed by key %s, which is not a trusted public key", others[0])
	case len(others) > 1:
		return nil, fmt.Errorf("signed by keys %s, none of them a trusted public key", strings.Join(others, ", "))
	}
	return nil, errors.New("not a minisign signature: no signature block in it")
}

// signatureBlocks yields the text and content of each signature block of a
// .minisig file's text, passing over lines that start none.
func signatureBlocks(sig []byte) iter.Seq2[[]byte, minisign.Signature] {
	return func(yield func([]byte, minisign.Signature) bool) {
		lines := strings.Split(string(sig), "\n")
		for i := 0; i < len(lines); i++ {
			if !strings.HasPrefix(lines[i], "untrusted comment: ") || i+3 >= len(lines) {
				continue
			}
			text := []byte(strings.Join(lines[i:i+4], "\n"))
			var s minisign.Signature
			if s.UnmarshalText(text) != nil {
				continue
			}
			if !yield(text, s) {
				return
			}
			i += 3
		}
	}
}

// KeyIDs returns the key IDs of the signatures in a .minisig file's
// text, verified or not, in order.
func KeyIDs(sig []byte) []uint64 {
	var ids []uint64
	for _, s := range signatureBlocks(sig) {
		ids = append(ids, s.KeyID)
	}
	return ids
}

// Verified returns the keys whose signatures ok accepts, each public key
// once however many blocks it signed or under however many IDs it was
// written, or an error when there is none.
func Verified(signed []Signature, ok func(Signature) bool) ([]minisign.PublicKey, error) {
	var keys []minisign.PublicKey
	for _, s := range signed {
		if !slices.ContainsFunc(keys, func(k minisign.PublicKey) bool { return SameKey(k, s.Key) }) && ok(s) {
			keys = append(keys, s.Key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("signature by key %X does not match the file's contents", signed[0].Key.ID())
	}
	return keys, nil
}

// SameKey reports whether a and b are the same public key. A key is its
// Ed25519 public key, never its 8-byte key ID alone: whoever makes a key
// chooses the ID, so two keys may carry one ID, and since the ID is not
// signed, one key written under two IDs verifies the same signatures.
func SameKey(a, b minisign.PublicKey) bool { return KeyBytes(a) == KeyBytes(b) }

// KeyBytes returns the Ed25519 public key of k: what identifies it.
func KeyBytes(k minisign.PublicKey) [ed25519.PublicKeySize]byte {
	var b [ed25519.PublicKeySize]byte
	raw, _ := base64.StdEncoding.DecodeString(k.String()) // 2 algorithm bytes, 8 ID bytes, the key
	copy(b[:], raw[10:])
	return b
}

// CheckKeys refuses a set of trusted keys in which one key ID stands for
// two different public keys, or one public key is written under two IDs:
// either would let a key be taken for another. names[i] says where keys[i]
// came from (a file, a line), for the error, a *KeyClash. The same key
// given twice is fine.
func CheckKeys(keys []minisign.PublicKey, names []string) error {
	byID := map[uint64]int{}
	byKey := map[[ed25519.PublicKeySize]byte]int{}
	for i, k := range keys {
		b := KeyBytes(k)
		if j, ok := byID[k.ID()]; ok && KeyBytes(keys[j]) != b {
			return &KeyClash{j, i, fmt.Sprintf("%s and %s give two different public keys the same key ID %X: a key ID is chosen by whoever makes the key, so one of them may be posing as the other", names[j], names[i], k.ID())}
		}
		if j, ok := byKey[b]; ok && keys[j].ID() != k.ID() {
			return &KeyClash{j, i, fmt.Sprintf("%s and %s give one public key under two key IDs, %X and %X: a key counts once, whatever its ID", names[j], names[i], keys[j].ID(), k.ID())}
		}
		byID[k.ID()], byKey[b] = i, i
	}
	return nil
}

// KeyClash is the error of CheckKeys: keys[Second] would be taken for
// keys[First], or counted as another key.
type KeyClash struct {
	First, Second int
	msg           string
}

func (e *KeyClash) Error() string { return e.msg }

// ErrNoSignature is wrapped by the error Read returns when a file has no
// signature file (yet): a list being published may arrive before its
// signature.
var ErrNoSignature = errors.New("no signature")

// Read reads the signature of the file at path, path+".minisig". A
// missing signature is an error that wraps ErrNoSignature, with result
// bad_signature.
func Read(path string) ([]byte, error) {
	sigPath := path + Suffix
	sig, err := regularfile.Read(sigPath, MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, result.Errorf(result.BadSignature, "%s: %w: %s is missing", path, ErrNoSignature, sigPath)
	}
	return sig, err
}
