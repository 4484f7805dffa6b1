package blockindex

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestLower holds the word-at-a-time case fold to a byte at a time: every
// byte value in every position of a word, among random neighbours.
func TestLower(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for pos := range 8 {
		for b := range 256 {
			w := rng.Uint64()&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
			var want uint64
			for i := range 8 {
				c := byte(w >> (8 * i))
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				want |= uint64(c) << (8 * i)
			}
			if got := lower(w); got != want {
				t.Fatalf("lower(%#016x) = %#016x, want %#016x", w, got, want)
			}
		}
	}
}

// TestAddTellsLabelsApart hashes labels that differ little (one byte, one
// more byte, case, a byte the tail word reads twice) and many names alike
// but for a counter: no two may share a first hash, which one in 2^64 pairs
// of a sound hash would.
func TestAddTellsLabelsApart(t *testing.T) {
	seen := map[uint64]string{}
	note := func(label string) {
		t.Helper()
		h := add(hashes{seed1, seed2}, label)
		if other, ok := seen[h.h1]; ok {
			t.Fatalf("labels %q and %q hash alike", other, label)
		}
		seen[h.h1] = label
		if add(hashes{seed1, seed2}, []byte(label)) != h {
			t.Fatalf("label %q hashes differently as bytes", label)
		}
	}
	letters := "abcdefghijklmnopqrstuvwxyz0123456789-_"
	for n := 1; n <= 63; n++ {
		base := []byte(fmt.Sprintf("%063d", 0)[:n])
		note(string(base))
		for i := range n {
			for _, c := range []byte(letters) {
				l := append([]byte(nil), base...)
				l[i] = c
				if string(l) != string(base) {
					note(string(l))
				}
			}
		}
	}
	for i := range 1_000_000 {
		note(fmt.Sprintf("site%07d", i))
	}
	for _, pair := range [][2]string{{"WWW", "www"}, {"Site0123ABC", "site0123abc"}, {"\xc0\xdb", "\xc0\xdb"}} {
		if add(hashes{seed1, seed2}, pair[0]) != add(hashes{seed1, seed2}, pair[1]) {
			t.Errorf("%q and %q hash differently", pair[0], pair[1])
		}
	}
	if add(hashes{seed1, seed2}, "\xc0") == add(hashes{seed1, seed2}, "\xe0") {
		t.Error("bytes above 0x7f are folded")
	}
}

// TestHashRemembersParent: a word that cancels a hash's state (a label
// spelling its parent's first hash, or the negation of its second) must
// not make the hash forget the parent. Without feeding the state forward,
// names under any two parents ending in such a label and the same bytes
// after it hashed alike: a publisher could list one name and block
// another.
func TestHashRemembersParent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		a, b := hashes{rng.Uint64(), rng.Uint64()}, hashes{rng.Uint64(), rng.Uint64()}
		tail, tweak := rng.Uint64(), rng.Uint64()&0x1fe
		if a.mix(a.h1, 0).mix(tail, tweak).h1 == b.mix(b.h1, 0).mix(tail, tweak).h1 {
			t.Fatalf("states %x and %x: a word spelling the first hash, then the same word: first hashes alike", a, b)
		}
		if a.mix(-a.h2, 0).mix(tail, tweak).h2 == b.mix(-b.h2, 0).mix(tail, tweak).h2 {
			t.Fatalf("states %x and %x: a word cancelling the second hash, then the same word: second hashes alike", a, b)
		}
	}
	// Through add, as a list's entry would: a label whose first eight
	// bytes spell the parent's first hash, under two parents whose first
	// hashes have no upper-case ASCII byte for the fold to change.
	var spelled []hashes
	for i := 0; len(spelled) < 2; i++ {
		p, _, ok := hashName(fmt.Sprintf("parent%d.example", i))
		if !ok {
			t.Fatal(i)
		}
		if lower(p.h1) != p.h1 {
			continue
		}
		label := make([]byte, 8, 32)
		for i := range 8 {
			label[i] = byte(p.h1 >> (8 * i))
		}
		spelled = append(spelled, add(p, append(label, "-same-bytes-after"...)))
	}
	if spelled[0].h1 == spelled[1].h1 {
		t.Error("labels spelling their parents' first hashes hash alike")
	}
}

// TestHashChainsCross: a word moves each hash by the other's state, so
// that names whose first hashes agree part way (cheap to find, 2^32 work)
// drift apart again unless their second hashes agree as well. With two
// chains apart, a publisher could collide the first hash label by label
// and pick two of the 2^k names that makes whose checks agree.
func TestHashChainsCross(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		h1, w, tweak := rng.Uint64(), rng.Uint64(), rng.Uint64()&0x1fe
		a, b := hashes{h1, rng.Uint64()}, hashes{h1, rng.Uint64()}
		if a.mix(w, tweak).h1 == b.mix(w, tweak).h1 {
			t.Fatalf("states %x and %x share a first hash and keep it after the word %x", a, b, w)
		}
		h2 := rng.Uint64()
		a, b = hashes{rng.Uint64(), h2}, hashes{rng.Uint64(), h2}
		if a.mix(w, tweak).h2 == b.mix(w, tweak).h2 {
			t.Fatalf("states %x and %x share a second hash and keep it after the word %x", a, b, w)
		}
	}
}

// TestKeyMixesBothHashes: names whose first hash and check agree but
// whose second hashes differ elsewhere (what a publisher can search for
// offline, holding one hash's difference while the other varies) must
// not share a key: the key mixes all 128 bits under the process's secret.
func TestKeyMixesBothHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 10000 {
		a := hashes{rng.Uint64(), rng.Uint64()}
		b := hashes{a.h1, a.h2 ^ rng.Uint64()<<32}
		if a.h2 == b.h2 {
			continue
		}
		if a.key() == b.key() {
			t.Fatalf("%x and %x: the same first hash and check, the same key", a, b)
		}
	}
	if tableKey == [2]uint64{} {
		t.Error("no secret drawn for the table")
	}
}
