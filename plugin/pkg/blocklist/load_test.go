package blocklist_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
)

const list = `#! regblock-list 1
#! name: test-list
#! serial: 7
#! issued: 2026-11-28T06:00:00Z
abuse.example ORDER-1 csam
`

// join concatenates signature files, as cat does.
func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestVerify(t *testing.T) {
	key, other := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	third, fourth := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	data := []byte(list)
	trusted := []minisign.PublicKey{other.Public, key.Public}

	tests := []struct {
		name string
		data []byte
		sig  []byte
		keys []minisign.PublicKey
		err  string
	}{
		{"prehashed", data, key.Sign(data), trusted, ""},
		{"legacy", data, key.SignLegacy(data), trusted, ""},
		{"one byte changed", []byte(strings.Replace(list, "serial: 7", "serial: 8", 1)), key.Sign(data), trusted, "does not match"},
		{"one byte changed, legacy", append(data[:len(data)-1:len(data)-1], ' '), key.SignLegacy(data), trusted, "does not match"},
		{"untrusted key", data, key.Sign(data), []minisign.PublicKey{other.Public}, "not a trusted public key"},
		{"no trusted keys", data, key.Sign(data), nil, "not a trusted public key"},
		{"garbage", data, []byte("untrusted comment: x\nnot base64\n"), trusted, "not a minisign signature"},
		{"two signatures, the trusted one second", data, join(third.Sign(data), key.Sign(data)), trusted, ""},
		{"garbage around and between", data, join([]byte("junk\n"), third.Sign(data), []byte("untrusted comment: half a block\n"), key.SignLegacy(data), []byte("more junk")), trusted, ""},
		{"two untrusted keys", data, join(third.Sign(data), fourth.Sign(data)), trusted, "none of them a trusted public key"},
		{"a trusted key's signature of other data", data, join(third.Sign(data), key.Sign([]byte("other"))), trusted, "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signers, err := minisig.Verify(tc.data, tc.sig, tc.keys)
			if tc.err == "" && (err != nil || len(signers) != 1 || !minisig.SameKey(signers[0], key.Public)) {
				t.Fatalf("Verify: %v, %v; want signed by %X alone", signers, err, key.Public.ID())
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Verify = %v, want an error with %q", err, tc.err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	key := blocklisttest.NewKey(t)
	keys := []minisign.PublicKey{key.Public}
	dir := t.TempDir()

	good := key.WriteList(t, dir, "good.list", list)
	l, err := blocklist.Load(good, keys, 1<<20)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if l.Name != "test-list" || l.Serial != 7 || len(l.Entries) != 1 || l.File != good {
		t.Errorf("loaded %+v", l)
	}

	unsigned := filepath.Join(dir, "unsigned.list")
	os.WriteFile(unsigned, []byte(list), 0o644)
	tampered := key.WriteList(t, dir, "tampered.list", list)
	os.WriteFile(tampered, []byte(list+"more.example\n"), 0o644)
	unparsable := key.WriteList(t, dir, "unparsable.list", list+"bad$.example\n")
	hugeSig := key.WriteList(t, dir, "hugesig.list", list)
	os.WriteFile(hugeSig+".minisig", make([]byte, 1<<20), 0o644)
	garbageSig := key.WriteList(t, dir, "garbagesig.list", list)
	os.WriteFile(garbageSig+".minisig", []byte("\x00\xff garbage\n"), 0o644)

	tests := []struct {
		name    string
		path    string
		maxSize int64
		reason  result.Result
		msg     string
	}{
		{"missing signature", unsigned, 1 << 20, result.BadSignature, "no signature: " + unsigned + ".minisig is missing"},
		{"tampered", tampered, 1 << 20, result.BadSignature, "does not match"},
		{"parse error", unparsable, 1 << 20, result.ParseError, "unparsable.list:6:"},
		{"signature file of a megabyte", hugeSig, 1 << 20, result.TooLarge, "hugesig.list.minisig: larger than the size limit of 65536 bytes"},
		{"garbage signature", garbageSig, 1 << 20, result.BadSignature, "not a minisign signature"},
		{"too large", good, int64(len(list) - 1), result.TooLarge, "size limit"},
		{"missing file", filepath.Join(dir, "absent.list"), 1 << 20, result.IOError, "absent.list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := blocklist.Load(tc.path, keys, tc.maxSize)
			var le *result.Error
			if !errors.As(err, &le) {
				t.Fatalf("Load = %+v, %v; want a result.Error", l, err)
			}
			if le.Result != tc.reason || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %s: %v; want %s with %q", le.Result, err, tc.reason, tc.msg)
			}
		})
	}
	if _, err := blocklist.Load(unsigned, keys, 1<<20); !errors.Is(err, minisig.ErrNoSignature) {
		t.Errorf("a list without signature: %v, want ErrNoSignature", err)
	}
	if _, err := blocklist.Load(tampered, keys, 1<<20); errors.Is(err, minisig.ErrNoSignature) {
		t.Errorf("a tampered list is reported as unsigned: %v", err)
	}
	if _, err := blocklist.Load(good, keys, int64(len(list))); err != nil {
		t.Errorf("a list exactly at the size limit was refused: %v", err)
	}
}

// TestStockMinisign checks that lists signed by the minisign CLI, with a key
// it made, load: prehashed (its default) and legacy (-l).
func TestStockMinisign(t *testing.T) {
	bin := testenv.Need(t, "minisign", "minisign")
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "stock.pub"), filepath.Join(dir, "stock.key")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("-G", "-W", "-p", pub, "-s", sec)
	key, err := minisig.ReadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}

	for _, legacy := range []bool{false, true} {
		path := filepath.Join(dir, "stock.list")
		if err := os.WriteFile(path, []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-S", "-s", sec, "-m", path}
		if legacy {
			args = append(args, "-l")
		}
		run(args...)
		if _, err := blocklist.Load(path, []minisign.PublicKey{key}, 1<<20); err != nil {
			t.Errorf("legacy=%v: list signed by minisign rejected: %v", legacy, err)
		}
		// One byte more and the same signature must no longer verify.
		os.WriteFile(path, []byte(list+"\n"), 0o644)
		if _, err := blocklist.Load(path, []minisign.PublicKey{key}, 1<<20); err == nil {
			t.Errorf("legacy=%v: a list changed after minisign signed it was accepted", legacy)
		}
	}
}

func TestReadPublicKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := minisig.ReadPublicKey(filepath.Join(dir, "absent.pub")); err == nil || !strings.Contains(err.Error(), "absent.pub") {
		t.Errorf("missing key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)
	if _, err := minisig.ReadPublicKey(bad); err == nil || !strings.Contains(err.Error(), "not a minisign public key") {
		t.Errorf("bad key file: %v", err)
	}
	key := blocklisttest.NewKey(t)
	got, err := minisig.ReadPublicKey(key.WritePublic(t, dir))
	if err != nil || !got.Equal(key.Public) {
		t.Errorf("ReadPublicKey = %v, %v; want the written key", got, err)
	}
}

// TestOpenStreamIntoIndex: entries streamed from a file much larger than
// the stream's buffer go into an index with their own order references and
// categories, though the buffer they were read from is reused all along.
func TestOpenStreamIntoIndex(t *testing.T) {
	key := blocklisttest.NewKey(t)
	var b strings.Builder
	b.WriteString("#! regblock-list 1\n#! name: big\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n")
	const n = 20000 // about 800 KB
	for i := range n {
		fmt.Fprintf(&b, "site%05d.example ORDER-%05d cat%d\n", i, i%7000, i%3)
	}
	path := key.WriteList(t, t.TempDir(), "big.list", b.String())
	sig, err := minisig.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	c := blockindex.NewCompiler(n)
	l, err := blocklist.OpenStream(path, 1<<30, sig, []minisign.PublicKey{key.Public}, c.Add)
	if err != nil {
		t.Fatal(err)
	}
	li, err := c.Finish(l)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := blockindex.New([]*blockindex.ListIndex{li})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, ok := ix.Lookup(fmt.Sprintf("www.site%05d.example.", i))
		if want := fmt.Sprintf("ORDER-%05d", i%7000); !ok || m.Order != want || m.Category != fmt.Sprintf("cat%d", i%3) {
			t.Fatalf("site%05d.example: %v %q %q, want %s cat%d", i, ok, m.Order, m.Category, want, i%3)
		}
	}
}

// TestVerifySigners: every trusted key whose signature verifies is named,
// each once however often it signed, in the order of the file.
func TestVerifySigners(t *testing.T) {
	a, b, c := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	data := []byte(list)
	trusted := []minisign.PublicKey{a.Public, b.Public}
	signers, err := minisig.Verify(data, join(b.Sign(data), c.Sign(data), a.SignLegacy(data), b.Sign(data), a.Sign(data)), trusted)
	if err != nil || len(signers) != 2 || !minisig.SameKey(signers[0], b.Public) || !minisig.SameKey(signers[1], a.Public) {
		t.Errorf("signers %v, %v; want %X then %X", signers, err, b.Public.ID(), a.Public.ID())
	}
	// The same through OpenStream, which hashes the file once for both.
	dir := t.TempDir()
	path := a.WriteList(t, dir, "x.list", list)
	os.WriteFile(path+".minisig", join(a.Sign(data), b.Sign(data)), 0o644)
	sig, _ := minisig.Read(path)
	l, err := blocklist.OpenStream(path, 1<<20, sig, trusted, func(blocklist.Entry) {})
	if err != nil || len(l.Signers) != 2 {
		t.Errorf("OpenStream: signers %v, %v; want both keys", l, err)
	}
}

// TestKeyIdentity: a key is its public key, not its ID. A set that gives
// one ID to two keys, or one key two IDs, is refused; a signature counts
// for the key that verifies it, once, whatever ID its block carries.
func TestKeyIdentity(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	impostor := blocklisttest.WithID(b.Public, a.Public.ID()) // b's key under a's ID
	alias := blocklisttest.WithID(a.Public, b.Public.ID())    // a's key under b's ID
	for _, tc := range []struct {
		keys []minisign.PublicKey
		err  string
	}{
		{[]minisign.PublicKey{a.Public, b.Public, a.Public}, ""},
		{[]minisign.PublicKey{a.Public, impostor}, "k0 and k1 give two different public keys the same key ID"},
		{[]minisign.PublicKey{a.Public, alias}, "k0 and k1 give one public key under two key IDs"},
	} {
		names := make([]string, len(tc.keys))
		for i := range names {
			names[i] = fmt.Sprintf("k%d", i)
		}
		if err := minisig.CheckKeys(tc.keys, names); (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckKeys: %v, want %q", err, tc.err)
		}
	}

	data := []byte(list)
	// b's signature rewritten to carry a's ID verifies under neither a nor
	// b: the ID finds a, whose key does not verify it.
	if signers, err := minisig.Verify(data, blocklisttest.ReID(b.Sign(data), a.Public.ID()), []minisign.PublicKey{a.Public, b.Public}); err == nil {
		t.Errorf("a signature re-IDed to another trusted key verified: %v", signers)
	}
	// Given a set with a's key under two IDs (which CheckKeys refuses), a's
	// signature and its copy under the other ID still count once.
	signers, err := minisig.Verify(data, join(a.Sign(data), blocklisttest.ReID(a.Sign(data), b.Public.ID())), []minisign.PublicKey{a.Public, alias})
	if err != nil || len(signers) != 1 || !minisig.SameKey(signers[0], a.Public) {
		t.Errorf("one key under two IDs: signers %v, %v; want a once", signers, err)
	}
}

// TestSmallOrderKeys: keys no key pair made (the identity point, in its
// canonical encoding and with the sign bit set; a point of order 8) are
// refused, for a made-up signature verifies under them for any message.
func TestSmallOrderKeys(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	signBit := bytes.Clone(identity)
	signBit[31] |= 0x80
	order8, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	want := []string{"small order", "not canonically encoded", "small order"}
	dir := t.TempDir()
	for i, point := range [][]byte{identity, signBit, order8} {
		raw := append([]byte{'E', 'd', 1, 2, 3, 4, 5, 6, 7, byte(i)}, point...)
		path := filepath.Join(dir, fmt.Sprintf("k%d.pub", i))
		os.WriteFile(path, []byte("untrusted comment: minisign public key\n"+base64.StdEncoding.EncodeToString(raw)+"\n"), 0o644)
		if _, err := minisig.ReadPublicKey(path); err == nil || !strings.Contains(err.Error(), want[i]) {
			t.Errorf("key %d (%x): %v, want %q", i, point, err, want[i])
		}
	}
	if err := minisig.CheckPublicKey(blocklisttest.NewKey(t).Public); err != nil {
		t.Errorf("a real key: %v", err)
	}
}
