package blocklist

import (
	"os"
	"reflect"
	"testing"
	"time"

	"aead.dev/minisign"
)

// FuzzParse: no input makes the parser panic; an accepted list holds only
// canonical names, and linting it does not panic either.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../../blocklists/example.list"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(header + "abuse.example ORDER-1 csam\n=x.example\n!y.abuse.example\n*.bulk.example - csam\n"))
	f.Add([]byte(header + "#! canary: canary.test\nbücher.example\nxn--bcher-kva.example\n\\065.example\n"))
	f.Add([]byte("#! regblock-list 1\r\n#! name: x\r\n#! serial: 1\r\n#! issued: 2026-11-28T06:00:00Z\r\na.example\x00\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("fuzz.list", data)
		var streamed []Entry
		sl, serr := ParseFunc("fuzz.list", data, func(e Entry) { streamed = append(streamed, e) })
		if (err == nil) != (serr == nil) {
			t.Fatalf("Parse: %v, ParseFunc: %v", err, serr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(streamed, l.Entries) || sl.Blocking() != l.Blocking() || sl.Entries != nil {
			t.Fatalf("ParseFunc handed %d entries (%d blocking), Parse kept %d (%d blocking)", len(streamed), sl.Blocking(), len(l.Entries), l.Blocking())
		}
		for _, e := range l.Entries {
			if e.Prefix.IsValid() {
				if e.Name != "" || e.Prefix != e.Prefix.Masked() {
					t.Fatalf("address entry %+v is not canonical", e)
				}
				continue
			}
			if c, err := CanonicalName(e.Name); err != nil || c != e.Name {
				t.Fatalf("entry %q is not canonical: %q %v", e.Name, c, err)
			}
		}
		Lint(l, time.Now())
	})
}

// FuzzVerify: no signature text makes verification panic, and nothing but
// the real signature verifies.
func FuzzVerify(f *testing.F) {
	pub, priv, _ := minisign.GenerateKey(nil)
	data := []byte(header + "abuse.example\n")
	good := minisign.Sign(priv, data)
	f.Add(good)
	f.Add([]byte("untrusted comment: x\nRWQ\ntrusted comment: y\nAAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sig []byte) {
		err := Verify(data, sig, []minisign.PublicKey{pub})
		if err == nil && string(sig) != string(good) {
			// Another encoding of the same signature (comments, line
			// endings) may verify; what matters is that it is one.
			var s minisign.Signature
			if s.UnmarshalText(sig) != nil {
				t.Fatalf("an unparsable signature verified: %q", sig)
			}
		}
	})
}
