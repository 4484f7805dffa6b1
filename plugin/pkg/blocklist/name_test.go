package blocklist

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
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

// TestPrintable checks the parser's fast path for a line: printable must
// hold only where the line is valid UTF-8 without control characters.
func TestPrintable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 300_000 {
		b := make([]byte, rng.IntN(6))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if n%2 == 0 {
				b[i] = byte(0x10 + rng.IntN(0x80)) // mostly ASCII, near its edges
			}
		}
		line := string(b)
		clean := utf8.ValidString(line) && strings.IndexFunc(line, isControl) < 0
		if printable(line) && !clean {
			t.Fatalf("printable(%q) = true for a line the parser must refuse", line)
		}
		if !printable(line) && clean && isASCII(line) {
			t.Fatalf("printable(%q) = false for a clean ASCII line", line)
		}
	}
}

// TestUpperCasePunycode checks that punycode in upper case is checked as
// in lower case: a label that does not decode is refused either way.
func TestUpperCasePunycode(t *testing.T) {
	for _, name := range []string{"xn--zz.example", "XN--ZZ.example", "Xn--zz.example", "a.xN--zz.example"} {
		if got, err := CanonicalName(name); err == nil {
			t.Errorf("CanonicalName(%q) = %q, want an error: the label is not valid punycode", name, got)
		}
	}
	for name, want := range map[string]string{"XN--BCHER-KVA.example": "xn--bcher-kva.example", "Bücher.Example": "xn--bcher-kva.example"} {
		if got, err := CanonicalName(name); err != nil || got != want {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}
