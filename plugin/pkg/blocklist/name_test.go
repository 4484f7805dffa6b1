package blocklist

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIsCanonical checks CanonicalName's fast path against its full one:
// isCanonical must hold exactly for the names that the full path returns
// unchanged and that hold no punycode (which only the full path checks).
func TestIsCanonical(t *testing.T) {
	check := func(name string) {
		t.Helper()
		got, err := canonical(name)
		want := err == nil && got == name && !strings.Contains(name, "xn--")
		if isCanonical(name) != want {
			t.Fatalf("isCanonical(%q) = %v, but canonical returns %q, %v", name, !want, got, err)
		}
	}
	for _, name := range []string{
		"", ".", "a", "a.", ".a", "a..b", "abuse.example", "Abuse.example", "a_b.test", "a b.test",
		"xn--bcher-kva.example", "fooxn--bar.test", "xn-.test", "x.n--a", "axn-", "xn--",
		strings.Repeat("a", 63) + ".test", strings.Repeat("a", 64) + ".test",
		strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "ab", "é.test", "a\x00.test", "a\x7f.test",
	} {
		check(name)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "axn-.A_9é\t"
	for range 200_000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
}
