// Package blocklisttest makes signed lists on disk for tests.
package blocklisttest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// Key is a minisign key pair made for one test.
type Key struct {
	Public  minisign.PublicKey
	Private minisign.PrivateKey
}

// NewKey makes a key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{pub, priv}
}

// Sign returns a prehashed signature of data, as minisign makes by default.
func (k *Key) Sign(data []byte) []byte {
	r := minisign.NewReader(bytes.NewReader(data))
	if _, err := io.Copy(io.Discard, r); err != nil {
		panic(err) // reading from memory does not fail
	}
	return r.Sign(k.Private)
}

// SignLegacy returns a legacy (not prehashed) signature of data.
func (k *Key) SignLegacy(data []byte) []byte {
	return minisign.Sign(k.Private, data)
}

// WritePublic writes the public key file into dir and returns its path.
func (k *Key) WritePublic(t testing.TB, dir string) string {
	t.Helper()
	text, err := k.Public.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test.pub")
	if err := os.WriteFile(path, append(text, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteList writes text to dir/file and its prehashed signature beside it,
// and returns the list's path.
func (k *Key) WriteList(t testing.TB, dir, file, text string) string {
	t.Helper()
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".minisig", k.Sign([]byte(text)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// WithID returns pub written under another key ID, as whoever makes a key
// may write it: the ID is not signed, so the key verifies the same
// signatures once they carry that ID (ReID).
func WithID(pub minisign.PublicKey, id uint64) minisign.PublicKey {
	raw, _ := base64.StdEncoding.DecodeString(pub.String()) // 2 algorithm bytes, the ID, the key
	binary.LittleEndian.PutUint64(raw[2:10], id)
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(base64.StdEncoding.EncodeToString(raw))); err != nil {
		panic(err) // the same key, re-encoded
	}
	return k
}

// ReID returns the text of a .minisig file with every signature carrying
// the key ID id, as whoever holds the file can rewrite it.
func ReID(sig []byte, id uint64) []byte {
	lines := strings.Split(string(sig), "\n")
	for i := 1; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i-1], "untrusted comment: ") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(lines[i])
		if err != nil || len(raw) < 10 {
			continue
		}
		binary.LittleEndian.PutUint64(raw[2:10], id)
		lines[i] = base64.StdEncoding.EncodeToString(raw)
	}
	return []byte(strings.Join(lines, "\n"))
}

// NestingName returns a name of 1 to max labels drawn from a, b, c and
// example: random names over so few labels nest in and clash with each
// other, which is what randomized tests of the matching rules need.
func NestingName(rng *mathrand.Rand, max int) string {
	labels := []string{"a", "b", "c", "example"}
	parts := make([]string, 1+rng.IntN(max))
	for i := range parts {
		parts[i] = labels[rng.IntN(len(labels))]
	}
	return strings.Join(parts, ".")
}
