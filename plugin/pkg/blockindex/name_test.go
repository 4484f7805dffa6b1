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
