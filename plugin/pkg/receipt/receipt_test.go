package receipt

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

func TestSignVerify(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(nil)
	otherPub, otherPriv, _ := minisign.GenerateKey(nil)
	r := Receipt{Resolver: "r1", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Lists:  []List{{Name: "example-csam", Serial: 7, SHA256: "00", Applied: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}},
		Ledger: Ledger{Head: "ab", Events: 3}}
	body, sig, err := Sign(r, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, id, err := Verify(body, sig, []minisign.PublicKey{otherPub, pub})
	if err != nil || id != pub.ID() || got.Resolver != "r1" || got.Ledger.Events != 3 || got.Lists[0].Serial != 7 {
		t.Fatalf("Verify = %+v, %X, %v", got, id, err)
	}
	_, otherSig, _ := Sign(r, otherPriv)
	bad := Receipt{Resolver: "../r1", Time: r.Time}
	badBody, badSig, _ := Sign(bad, priv)
	for _, c := range []struct {
		what       string
		body       []byte
		sig        string
		keys       []minisign.PublicKey
		want       error
		wantInText string
	}{
		{"altered body", []byte(strings.Replace(string(body), `"events":3`, `"events":4`, 1)), sig, []minisign.PublicKey{pub}, ErrBadSignature, ""},
		{"unknown key", body, otherSig, []minisign.PublicKey{pub}, ErrUnknownKey, ""},
		{"no signature", body, "", []minisign.PublicKey{pub}, ErrMalformed, ""},
		{"not base64", body, "%%%", []minisign.PublicKey{pub}, ErrMalformed, ""},
		{"base64 of garbage", body, base64.StdEncoding.EncodeToString([]byte("garbage\n")), []minisign.PublicKey{pub}, ErrMalformed, ""},
		{"a path for a name", badBody, badSig, []minisign.PublicKey{pub}, ErrMalformed, "resolver name"},
	} {
		if _, _, err := Verify(c.body, c.sig, c.keys); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.wantInText) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
}

// FuzzVerify: no body or header makes Verify panic, and what it accepts
// is signed by the key and names a valid resolver.
func FuzzVerify(f *testing.F) {
	pub, priv, _ := minisign.GenerateKey(nil)
	body, sig, _ := Sign(Receipt{Resolver: "r1"}, priv)
	f.Add(body, sig)
	f.Add([]byte(`{"resolver":"r1"}`), sig)
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		r, id, err := Verify(body, sig, []minisign.PublicKey{pub})
		if err != nil {
			return
		}
		if id != pub.ID() || r.Resolver == "" {
			t.Fatalf("accepted %+v by %X", r, id)
		}
	})
}

// TestStartedAndBlocked: a receipt carries its process's start and each
// list's blocked count; one from an older resolver, without them, still
// verifies (with zeros), and a count spelled otherwise is refused.
func TestStartedAndBlocked(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(nil)
	keys := []minisign.PublicKey{pub}
	started := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	body, sig, _ := Sign(Receipt{Resolver: "r1", Time: started.Add(time.Hour), Started: started,
		Lists: []List{{Name: "example-csam", Serial: 7, Blocked: 42}}}, priv)
	got, _, err := Verify(body, sig, keys)
	if err != nil || !got.Started.Equal(started) || got.Lists[0].Blocked != 42 {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if !strings.Contains(string(body), `"started":"2026-12-01T08:00:00Z"`) || !strings.Contains(string(body), `"blocked":42`) {
		t.Errorf("body %s", body)
	}
	old := []byte(`{"resolver":"r1","time":"2026-12-01T09:00:00Z","lists":[{"name":"example-csam","serial":7,"sha256":"00","applied":"2026-12-01T08:00:00Z"}],"ledger":{"head":"","events":0}}`)
	got, _, err = Verify(old, base64.StdEncoding.EncodeToString(minisign.Sign(priv, old)), keys)
	if err != nil || !got.Started.IsZero() || got.Lists[0].Blocked != 0 {
		t.Errorf("an older resolver's receipt: %+v, %v", got, err)
	}
	spelled := []byte(strings.Replace(string(body), `"blocked"`, `"Blocked"`, 1))
	if _, _, err := Verify(spelled, base64.StdEncoding.EncodeToString(minisign.Sign(priv, spelled)), keys); !errors.Is(err, ErrMalformed) {
		t.Errorf(`"Blocked": %v, want malformed`, err)
	}
}
