package blocklist

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// TestOpenStream: reading a list as a stream gives what reading it whole
// gives, entries, digest, errors and their reasons alike, for prehashed and
// legacy signatures; a forged list is a bad signature even when it does
// not parse either.
func TestOpenStream(t *testing.T) {
	key, other := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	keys := []minisign.PublicKey{key.Public}
	dir := t.TempDir()
	long := strings.Repeat("a", 70<<10) // longer than the stream's buffer
	for _, tc := range []struct {
		name, text string
		sign       func([]byte) []byte
		reason     result.Result // "" for a valid list
	}{
		{"valid", header + "abuse.example ORDER-1 csam\n=x.example\n!y.abuse.example\n*.b.example - csam\nip:192.0.2.0/24\n", key.Sign, ""},
		{"crlf and bom", "\uFEFF" + strings.ReplaceAll(header+"a.example\n", "\n", "\r\n"), key.Sign, ""},
		{"no final newline", header + "a.example", key.Sign, ""},
		{"legacy", header + "a.example\n", key.SignLegacy, ""},
		{"parse error", header + "bad..example\n", key.Sign, result.ParseError},
		{"long line", header + long + "\nb.example\n", key.Sign, result.ParseError},
		{"not a list", "hello\n" + long, key.Sign, result.ParseError},
		{"untrusted key", header + "a.example\n", other.Sign, result.BadSignature},
		{"forged and unparsable", header + "bad..example\n", func([]byte) []byte { return key.Sign([]byte("other")) }, result.BadSignature},
		{"too large", header + strings.Repeat("a.example\n", 200), key.Sign, result.TooLarge},
	} {
		path := filepath.Join(dir, "l.list")
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		sig := tc.sign([]byte(tc.text))
		var whole, streamed []Entry
		wl, werr := openFunc(path, []byte(tc.text), sig, keys, func(e Entry) { whole = append(whole, e) })
		limit := int64(1 << 20)
		if tc.reason == result.TooLarge {
			limit = 1500
		}
		sl, serr := OpenStream(path, limit, sig, keys, func(e Entry) { streamed = append(streamed, e) })
		var le *result.Error
		switch {
		case tc.reason == "" && serr != nil:
			t.Errorf("%s: %v", tc.name, serr)
		case tc.reason != "" && (!errors.As(serr, &le) || le.Result != tc.reason):
			t.Errorf("%s: error %v, want reason %s", tc.name, serr, tc.reason)
		case tc.reason == result.TooLarge:
		case (werr == nil) != (serr == nil) || werr != nil && werr.Error() != serr.Error():
			t.Errorf("%s: whole: %v, streamed: %v", tc.name, werr, serr)
		case serr == nil && (!reflect.DeepEqual(whole, streamed) || wl.SHA256 != sl.SHA256 || wl.Header.Name != sl.Header.Name || sl.Blocking() != wl.Blocking()):
			t.Errorf("%s: whole %+v %x, streamed %+v %x", tc.name, whole, wl.SHA256, streamed, sl.SHA256)
		}
	}
}
