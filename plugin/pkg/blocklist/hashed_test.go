package blocklist

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// vectorSalt is the salt of the test vectors in docs/list-format.md:
// the bytes 0x00 to 0x1f.
const vectorSalt = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// TestHashNameVectors checks HashName against digests computed outside Go
// (printf SALT | xxd -r -p; printf NAME) | sha256sum | cut -c1-32), the
// vectors docs/list-format.md gives another implementation.
func TestHashNameVectors(t *testing.T) {
	salt, _ := hex.DecodeString(vectorSalt)
	for name, want := range map[string]string{
		"abuse.example":                 "2fab027504c360eeda1416ada192b061",
		"cdn7.hosting.example":          "31a299cd82742ffcb6635ee2021ee697",
		"xn--bcher-kva.example":         "ecc32e4727f6af650849684e1757552b",
		"canary.worst-of.regblock.test": "d7d746f3c1fd859b09201b32a6bbb8b8",
	} {
		if got := HashName(salt, name).String(); got != want {
			t.Errorf("HashName(%s) = %s, want %s", name, got, want)
		}
	}
}

// TestHashRoundTrip hashes a plain list, writes it, reads it back: the
// same header (with the salt) and the entries' digests, kinds, order
// references and categories, address entries left plain.
func TestHashRoundTrip(t *testing.T) {
	plain, err := Parse("plain.list", []byte(header+`#! canary: canary.test-list.regblock.test
#! appeal: https://appeal.regulator.example/
abuse.example          ORDER-1  csam
=cdn7.hosting.example  ORDER-2
!help.abuse.example    -        csam
*.bulk.example
!=x.bulk.example
!*.y.bulk.example      ORDER-3
Bücher.example
ip:203.0.113.0/24      ORDER-4  csam
`))
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := hex.DecodeString(vectorSalt)
	hashed, err := Hash(plain, salt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, hashed); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, name := range []string{"abuse", "cdn7", "help", "bulk", "bcher"} {
		if strings.Contains(text, name) {
			t.Errorf("the hashed list holds %q:\n%s", name, text)
		}
	}
	if !strings.Contains(text, "#! hashed: sha256 "+vectorSalt+"\n") || !strings.Contains(text, "\nh:2fab027504c360eeda1416ada192b061  ORDER-1  csam\n") {
		t.Errorf("hashed list lacks its salt or the digest of abuse.example:\n%s", text)
	}
	back, err := Parse("hashed.list", buf.Bytes())
	if err != nil {
		t.Fatalf("the written hashed list does not parse: %v\n%s", err, text)
	}
	if !reflect.DeepEqual(back.Header, hashed.Header) {
		t.Errorf("header read back %+v, want %+v", back.Header, hashed.Header)
	}
	if len(back.Entries) != len(plain.Entries) {
		t.Fatalf("%d entries read back, want %d", len(back.Entries), len(plain.Entries))
	}
	for i, e := range back.Entries {
		p := plain.Entries[i]
		want := HashName(salt, p.Name)
		if p.Prefix.IsValid() {
			if e.Prefix != p.Prefix || e.Hashed {
				t.Errorf("entry %d: %s, want the address entry %s left plain", i, e.Pattern(), p.Pattern())
			}
			continue
		}
		if !e.Hashed || e.Digest != want || e.Kind != p.Kind || e.Order != p.Order || e.Category != p.Category || e.Name != "" {
			t.Errorf("entry %d: %+v, want the hash of %+v", i, e, p)
		}
	}
}

func TestParseHashedErrors(t *testing.T) {
	const hashedHeader = header + "#! hashed: sha256 " + vectorSalt + "\n"
	for _, c := range []struct{ text, want string }{
		{header + "#! hashed: sha256 0011\n", "the salt must be 32 bytes"},
		{header + "#! hashed: md5 " + vectorSalt + "\n", `the only digest is "sha256"`},
		{header + "#! hashed: sha256 " + strings.Repeat("zz", 32) + "\n", "the salt must be 32 bytes"},
		{header + "h:2fab027504c360eeda1416ada192b061\n", `hashed entry "h:2fab027504c360eeda1416ada192b061" in a list without a "hashed: sha256 SALT" header`},
		{hashedHeader + "h:2fab027504c360eeda1416ada192b0\n", "a digest is 32 hex digits, not 30"},
		{hashedHeader + "=h:2fab027504c360eeda1416ada192b0612\n", "a digest is 32 hex digits, not 33"},
		{hashedHeader + "!h:2fab027504c360eeda1416ada192b06x\n", "is not hexadecimal"},
		{hashedHeader + "secret.example ORDER-1\n", "a plain name in a hashed list (not shown here)"},
		// Malformed entries of a hashed list name their line, never their
		// text: it may be the name the list hides.
		{hashedHeader + "h:secretsite.example\n", "entry (not shown: the list is hashed): a digest is 32 hex digits"},
		{hashedHeader + "=h:secretsite.example.0123456789abcdef\n", "not shown"},
		{hashedHeader + "!h:secret0123456789abcdef0123456789\n", "the digest is not hexadecimal"},
		{hashedHeader + "ip:secret.example\n", "entry (not shown: the list is hashed): not an address prefix"},
		{hashedHeader + "?secret.example\n", "unknown entry prefix in (not shown: the list is hashed)"},
	} {
		_, err := Parse("x.list", []byte(c.text))
		var errs ErrorList
		if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want one error with %q", c.text, err, c.want)
			continue
		}
		if line := strings.Count(c.text, "\n"); errs[0].Line != line {
			t.Errorf("Parse(%q): error at line %d, want %d", c.text, errs[0].Line, line)
		}
		if strings.Contains(errs[0].Error(), "secret") {
			t.Errorf("the error %q shows the plain name of a hashed list", errs[0])
		}
	}
	// Upper-case digits are the same digest; address entries stay plain.
	l, err := Parse("x.list", []byte(hashedHeader+"*.h:2FAB027504C360EEDA1416ADA192B061 - csam\nip:203.0.113.7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Entries[0].Pattern(); got != "*.h:2fab027504c360eeda1416ada192b061" {
		t.Errorf("pattern %q", got)
	}
}
