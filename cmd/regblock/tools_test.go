package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

const exampleList = `#! regblock-list 1
#! name: example-csam
#! issuer: Example Communications Commission
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
#! appeal: https://complaints.regulator.example/
abuse.example          ORDER-2026-0012  csam
=cdn7.hosting.example  ORDER-2026-0013  csam
!help.abuse.example    ORDER-2026-0014
*.bulk.example         -                csam
`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loads(t *testing.T, list, pub string) (*blocklist.List, error) {
	t.Helper()
	key, err := minisig.ReadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return blocklist.Load(list, []minisign.PublicKey{key}, 1<<20)
}

func TestKeygenAndSign(t *testing.T) {
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "r.pub"), filepath.Join(dir, "r.key")
	if code, stdout, stderr := regblock(t, "keygen", "-W", "-p", pub, "-s", sec); code != 0 || !strings.Contains(stdout, "public key: "+pub) {
		t.Fatalf("keygen: exit %d\n%s%s", code, stdout, stderr)
	}
	if fi, _ := os.Stat(sec); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %v, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(sec)
	if code, _, stderr := regblock(t, "keygen", "-W", "-p", filepath.Join(dir, "other.pub"), "-s", sec); code != 1 || !strings.Contains(stderr, sec+" already exists") {
		t.Errorf("keygen over an existing key: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(sec); string(after) != string(before) {
		t.Error("keygen overwrote a secret key")
	}

	list := writeFile(t, dir, "example.list", exampleList)
	code, stdout, stderr := regblock(t, "sign", "-s", sec, "-bump", list)
	if code != 0 {
		t.Fatalf("sign: exit %d\n%s", code, stderr)
	}
	l, err := loads(t, list, pub)
	if err != nil {
		t.Fatalf("the signed list does not verify: %v", err)
	}
	if l.Serial != 2026112802 || time.Since(l.Issued) > time.Minute {
		t.Errorf("after -bump: serial %d, issued %v", l.Serial, l.Issued)
	}
	if !strings.Contains(stdout, `list "example-csam" serial 2026112802 (3 blocking entries) signed by key `) {
		t.Errorf("sign output: %q", stdout)
	}
	data, _ := os.ReadFile(list)
	if !strings.Contains(string(data), "abuse.example          ORDER-2026-0012  csam\n") {
		t.Error("-bump changed more than the serial and issued lines")
	}

	// A list with errors is refused, every error named, and not signed.
	bad := writeFile(t, dir, "bad.list", exampleList+"bad$.example\n~x.example\n")
	code, _, stderr = regblock(t, "sign", "-s", sec, bad)
	if code != 1 || !strings.Contains(stderr, "bad.list:11: error:") || !strings.Contains(stderr, "bad.list:12: error:") {
		t.Errorf("signing a bad list: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(bad + ".minisig"); !os.IsNotExist(err) {
		t.Error("a list with errors was signed")
	}
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "absent.key"), list); code != 1 || !strings.Contains(stderr, "absent.key") {
		t.Errorf("missing key: exit %d, %q", code, stderr)
	}
}

// sealed is a key pair keygen made with a password from a file, once for
// the tests that need an encrypted key: each scrypt derivation takes
// seconds.
var sealed struct {
	once             sync.Once
	pub, sec         string
	code             int
	stderr, password string
}

// encryptedKey returns the encrypted key pair, made by keygen on first use,
// with keygen's exit code and stderr.
func encryptedKey(t *testing.T) (pub, sec, password string, code int, stderr string) {
	t.Helper()
	sealed.once.Do(func() {
		dir, err := os.MkdirTemp(filepath.Dir(bin), "sealed") // removed with bin
		if err != nil {
			t.Fatal(err)
		}
		sealed.password = "correct horse"
		sealed.pub, sealed.sec = filepath.Join(dir, "r.pub"), filepath.Join(dir, "r.key")
		pwFile := writeFile(t, dir, "pw", sealed.password+"\n")
		sealed.code, _, sealed.stderr = regblock(t, "keygen", "-p", sealed.pub, "-s", sealed.sec, "-password-file", pwFile)
	})
	return sealed.pub, sealed.sec, sealed.password, sealed.code, sealed.stderr
}

func TestKeygenPassword(t *testing.T) {
	t.Parallel() // scrypt key derivations: seconds each
	dir := t.TempDir()
	pub, sec, password, code, stderr := encryptedKey(t)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(sec)
	if !minisign.IsEncrypted(data) {
		t.Fatal("the secret key is not encrypted")
	}
	list := writeFile(t, dir, "example.list", exampleList)
	// The wrong password and the right one, at once: each derivation takes
	// a core for seconds.
	var wrong []byte
	var wrongErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		cmd := exec.Command(bin, "sign", "-s", sec, list)
		cmd.Env = append(os.Environ(), "REGBLOCK_PASSWORD=wrong")
		wrong, wrongErr = cmd.CombinedOutput()
	})
	cmd := exec.Command(bin, "sign", "-s", sec, list)
	cmd.Env = append(os.Environ(), "REGBLOCK_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	wg.Wait()
	if wrongErr == nil || !strings.Contains(string(wrong), "wrong password") {
		t.Errorf("sign with a wrong password: %v %s", wrongErr, wrong)
	}
	if err != nil {
		t.Fatalf("sign with $REGBLOCK_PASSWORD: %v %s", err, out)
	}
	if _, err := loads(t, list, pub); err != nil {
		t.Error(err)
	}
	// Without a terminal, a password or -W, keygen refuses.
	cmd = exec.Command(bin, "keygen", "-p", filepath.Join(dir, "n.pub"), "-s", filepath.Join(dir, "n.key"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = detachTTY()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no password") {
		t.Errorf("keygen without a password source: %v %s", err, out)
	}
	// An empty password, from a file or the environment, is refused as it
	// is on a terminal: the key would be encrypted with nothing.
	empty := writeFile(t, dir, "empty", "\n")
	if code, _, stderr := regblock(t, "keygen", "-p", filepath.Join(dir, "e.pub"), "-s", filepath.Join(dir, "e.key"), "-password-file", empty); code != 1 || !strings.Contains(stderr, "empty password in "+empty) {
		t.Errorf("keygen with an empty password file: exit %d, %s", code, stderr)
	}
	cmd = exec.Command(bin, "keygen", "-p", filepath.Join(dir, "v.pub"), "-s", filepath.Join(dir, "v.key"))
	cmd.Env = append(os.Environ(), "REGBLOCK_PASSWORD=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "empty password in $REGBLOCK_PASSWORD") {
		t.Errorf("keygen with an empty $REGBLOCK_PASSWORD: %v %s", err, out)
	}
	for _, f := range []string{"e.pub", "e.key", "v.pub", "v.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was written", f)
		}
	}
}

// TestStockMinisignInterop: keys and signatures made by either tool are
// accepted by the other.
func TestStockMinisignInterop(t *testing.T) {
	ms := testenv.Need(t, "minisign", "minisign")
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
	}

	// regblock's key, minisign signs, regblock verifies.
	run(bin, "keygen", "-W", "-p", filepath.Join(dir, "ours.pub"), "-s", filepath.Join(dir, "ours.key"))
	a := writeFile(t, dir, "a.list", exampleList)
	run(ms, "-S", "-s", filepath.Join(dir, "ours.key"), "-m", a)
	if code, stdout, stderr := regblock(t, "verify", "-p", filepath.Join(dir, "ours.pub"), a); code != 0 || !strings.Contains(stdout, "serial:    2026112801") {
		t.Errorf("regblock verify of minisign's signature with regblock's key: exit %d %s%s", code, stdout, stderr)
	}

	// minisign's key, regblock signs, minisign verifies.
	run(ms, "-G", "-W", "-p", filepath.Join(dir, "stock.pub"), "-s", filepath.Join(dir, "stock.key"))
	b := writeFile(t, dir, "b.list", exampleList)
	run(bin, "sign", "-s", filepath.Join(dir, "stock.key"), b)
	run(ms, "-V", "-p", filepath.Join(dir, "stock.pub"), "-m", b)

	// Legacy signatures from minisign -l verify too.
	run(ms, "-S", "-l", "-s", filepath.Join(dir, "stock.key"), "-m", b)
	if code, _, stderr := regblock(t, "verify", "-p", filepath.Join(dir, "stock.pub"), b); code != 0 {
		t.Errorf("legacy signature: exit %d %s", code, stderr)
	}

	// Two signers: stock minisign signs with each key, cat joins the two
	// files (with some garbage between), and either key verifies; both
	// trusted, verify names both.
	c := writeFile(t, dir, "c.list", exampleList)
	run(ms, "-G", "-W", "-p", filepath.Join(dir, "second.pub"), "-s", filepath.Join(dir, "second.key"))
	var joined []byte
	for _, k := range []string{"stock", "second"} {
		run(ms, "-S", "-s", filepath.Join(dir, k+".key"), "-m", c, "-x", c+"."+k)
		joined = append(append(joined, mustRead(t, c+"."+k)...), "not a signature\n"...)
	}
	os.WriteFile(c+".minisig", joined, 0o644)
	for _, k := range []string{"stock", "second"} {
		if code, _, stderr := regblock(t, "verify", "-p", filepath.Join(dir, k+".pub"), c); code != 0 {
			t.Errorf("joined signatures, trusting %s: exit %d %s", k, code, stderr)
		}
	}
	code, stdout, _ := regblock(t, "verify", "-p", filepath.Join(dir, "stock.pub"), "-p", filepath.Join(dir, "second.pub"), c)
	if code != 0 || !strings.Contains(stdout, "signature valid, by key ") || !strings.Contains(stdout, ", ") {
		t.Errorf("joined signatures, both trusted: exit %d %s; want both keys named", code, stdout)
	}
}

// TestSignAppend: sign -append adds a second signer's signature to a list's
// .minisig, refuses the same key twice and -bump with it.
func TestSignAppend(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"regulator", "judge"} {
		regblock(t, "keygen", "-W", "-p", filepath.Join(dir, k+".pub"), "-s", filepath.Join(dir, k+".key"))
	}
	list := writeFile(t, dir, "court.list", exampleList)
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "regulator.key"), list); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "judge.key"), "-append", list); code != 0 {
		t.Fatal(stderr)
	}
	for _, k := range []string{"regulator", "judge"} {
		if code, _, stderr := regblock(t, "verify", "-p", filepath.Join(dir, k+".pub"), list); code != 0 {
			t.Errorf("after -append, the %s's key alone: exit %d %s", k, code, stderr)
		}
	}
	if n := strings.Count(mustRead(t, list+".minisig"), "untrusted comment:"); n != 2 {
		t.Errorf("%d signatures in the file, want 2", n)
	}
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "judge.key"), "-append", list); code != 1 || !strings.Contains(stderr, "already holds a signature by key") {
		t.Errorf("the same key appended again: exit %d %s", code, stderr)
	}
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "judge.key"), "-append", "-bump", list); code != 2 || !strings.Contains(stderr, "-bump and -append exclude each other") {
		t.Errorf("-bump with -append: exit %d %s", code, stderr)
	}
}

func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "r.pub"), filepath.Join(dir, "r.key")
	regblock(t, "keygen", "-W", "-p", pub, "-s", sec)
	other := filepath.Join(dir, "o.pub")
	regblock(t, "keygen", "-W", "-p", other, "-s", filepath.Join(dir, "o.key"))
	list := writeFile(t, dir, "example.list", exampleList)
	regblock(t, "sign", "-s", sec, list)

	if code, stdout, _ := regblock(t, "verify", "-p", other+","+pub, list); code != 0 || !strings.Contains(stdout, "signature valid") || !strings.Contains(stdout, "issuer:    Example Communications Commission") {
		t.Errorf("valid list: exit %d, %q", code, stdout)
	}
	if code, _, stderr := regblock(t, "verify", "-p", other, list); code != 1 || !strings.Contains(stderr, "not a trusted public key") {
		t.Errorf("untrusted key: exit %d, %q", code, stderr)
	}
	os.WriteFile(list, []byte(exampleList+"more.example\n"), 0o644)
	if code, _, stderr := regblock(t, "verify", "-p", pub, list); code != 1 || !strings.Contains(stderr, "does not match") {
		t.Errorf("tampered list: exit %d, %q", code, stderr)
	}
	if code, _, _ := regblock(t, "verify", list); code != 2 {
		t.Errorf("no key: exit %d, want 2", code)
	}
}

func TestLintCommand(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.list", exampleList+"www.abuse.example\n")
	code, stdout, _ := regblock(t, "lint", good)
	if code != 0 || !strings.Contains(stdout, "good.list:11: warning: entry www.abuse.example is already blocked by abuse.example (line 7)") {
		t.Errorf("warnings only: exit %d, %q", code, stdout)
	}
	bad := writeFile(t, dir, "bad.list", strings.Replace(exampleList, "#! issuer:", "#! isuer:", 1)+"bad$.example\n")
	code, stdout, _ = regblock(t, "lint", bad)
	if code != 1 || !strings.Contains(stdout, `bad.list:3: error: unknown header key "isuer"`) || !strings.Contains(stdout, "bad.list:11: error:") {
		t.Errorf("errors: exit %d, %q", code, stdout)
	}

	// Issued in an hour: every resolver would refuse it, so lint says so
	// and sign refuses it; sign -bump sets issued to now.
	ahead := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	early := writeFile(t, dir, "early.list", regexp.MustCompile(`(?m)^#! issued: .*$`).ReplaceAllString(exampleList, "#! issued: "+ahead))
	if code, stdout, _ := regblock(t, "lint", early); code != 1 || !strings.Contains(stdout, "early.list:5: error: issued "+ahead+" is ") || !strings.Contains(stdout, "after this machine's clock") {
		t.Errorf("lint of a list issued in an hour: exit %d, %q", code, stdout)
	}
	regblock(t, "keygen", "-W", "-p", filepath.Join(dir, "k.pub"), "-s", filepath.Join(dir, "k.key"))
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "k.key"), early); code != 1 || !strings.Contains(stderr, "resolvers refuse a version issued more than 5m0s ahead") {
		t.Errorf("sign of a list issued in an hour: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(early + ".minisig"); err == nil {
		t.Error("a list issued in the future was signed")
	}
	if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(dir, "k.key"), "-bump", early); code != 0 {
		t.Errorf("sign -bump: exit %d, %q", code, stderr)
	}
}

func TestInspectAndDiff(t *testing.T) {
	dir := t.TempDir()
	old := writeFile(t, dir, "old.list", exampleList)
	cur := writeFile(t, dir, "new.list", strings.Replace(strings.Replace(exampleList, "2026112801", "2026112802", 1),
		"=cdn7.hosting.example  ORDER-2026-0013  csam\n", "=cdn7.hosting.example  ORDER-2026-0099  csam\nnew.example\n", 1))
	os.WriteFile(cur, []byte(strings.Replace(mustRead(t, cur), "*.bulk.example         -                csam\n", "", 1)), 0o644)

	code, stdout, _ := regblock(t, "inspect", "-json", old)
	var in inspection
	if code != 0 || json.Unmarshal([]byte(stdout), &in) != nil {
		t.Fatalf("inspect -json: exit %d, %q", code, stdout)
	}
	if in.Serial != 2026112801 || in.Blocking != 3 || in.ByKind["!name"] != 1 || in.ByKind["*.name"] != 1 || in.ByCategory["csam"] != 3 || in.Expires != nil {
		t.Errorf("inspect: %+v", in)
	}
	if code, stdout, _ := regblock(t, "inspect", old); code != 0 || !strings.Contains(stdout, "expiry:    none") {
		t.Errorf("inspect: exit %d, %q", code, stdout)
	}

	code, stdout, _ = regblock(t, "diff", old, cur)
	for _, want := range []string{
		"serial 2026112801 -> 2026112802 (+1)",
		"+ new.example -\n",
		"- *.bulk.example - csam\n",
		"~ =cdn7.hosting.example ORDER-2026-0099 csam  (was =cdn7.hosting.example ORDER-2026-0013 csam)",
		"1 added, 1 removed, 1 changed",
	} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("diff: exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
	code, stdout, _ = regblock(t, "diff", "-json", cur, old)
	var r diffReport
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil || len(r.Added) != 1 || r.Added[0].Pattern != "*.bulk.example" || r.NewSerial != 2026112801 {
		t.Errorf("diff -json: exit %d, %+v", code, r)
	}
	if code, _, stderr := regblock(t, "diff", old, filepath.Join(dir, "absent.list")); code != 1 || !strings.Contains(stderr, "absent.list") {
		t.Errorf("diff with a missing file: exit %d, %q", code, stderr)
	}

	// A delta of the same change: inspect counts what it adds and removes
	// (the changed entry is one of each); diff says it is not a list.
	delta := filepath.Join(dir, "example-csam.2026112801.delta")
	if code, _, stderr := regblock(t, "delta", "-o", delta, old, cur); code != 0 {
		t.Fatalf("delta: exit %d, %s", code, stderr)
	}
	code, stdout, _ = regblock(t, "inspect", "-json", delta)
	var din deltaInspection
	if code != 0 || json.Unmarshal([]byte(stdout), &din) != nil {
		t.Fatalf("inspect -json of a delta: exit %d, %q", code, stdout)
	}
	if din.Serial != 2026112802 || din.From.Serial != 2026112801 || din.From.SHA256 != fileSHA256(t, old) || din.SHA256 != fileSHA256(t, cur) ||
		din.Added.Entries != 2 || din.Added.ByKind["name"] != 1 || din.Added.ByKind["=name"] != 1 || din.Added.ByCategory["none"] != 1 ||
		din.Removed.Entries != 2 || din.Removed.ByKind["*.name"] != 1 || din.Removed.ByCategory["csam"] != 2 || len(din.Digest) != 32 {
		t.Errorf("inspect -json of a delta: %+v", din)
	}
	code, stdout, _ = regblock(t, "inspect", delta)
	for _, want := range []string{`delta of list "example-csam" from serial 2026112801 to 2026112802`, "2 added, 2 removed", "by kind added:\n    name       1\n"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("inspect of a delta: exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
	if code, _, stderr := regblock(t, "diff", old, delta); code != 1 || !strings.Contains(stderr, "is a delta, not a list") {
		t.Errorf("diff of a delta: exit %d, %q", code, stderr)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(mustRead(t, path)))
	return hex.EncodeToString(sum[:])
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestTrustToolkit: a regulator writes a trust policy, lints it, signs it
// with two root keys (-append), and verify checks it and judges lists by
// it, naming the line and keys that satisfied each.
func TestTrustToolkit(t *testing.T) {
	dir := t.TempDir()
	line := map[string]string{}
	for _, k := range []string{"root-a", "root-b", "mcmc", "police"} {
		regblock(t, "keygen", "-W", "-p", filepath.Join(dir, k+".pub"), "-s", filepath.Join(dir, k+".key"))
		lines := strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(dir, k+".pub"))), "\n")
		line[k] = lines[len(lines)-1]
	}
	policy := writeFile(t, dir, "regblock.trust", "#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-11-30T00:00:00Z\n"+
		"root 2 "+line["root-a"]+" "+line["root-b"]+"\nlist mcmc-csam 1 "+line["mcmc"]+"\nlist pdrm-* 1 "+line["police"]+"\n")
	if code, stdout, stderr := regblock(t, "lint", policy); code != 0 || !strings.Contains(stdout, "trust policy serial 1 (root 2 of 2 keys, 2 list lines), no errors") {
		t.Errorf("lint: exit %d %s%s", code, stdout, stderr)
	}
	bad := writeFile(t, dir, "bad.trust", "#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-11-30T00:00:00Z\nroot 3 "+line["root-a"]+"\n")
	if code, stdout, _ := regblock(t, "lint", bad); code != 1 || !strings.Contains(stdout, "bad.trust:4: error: root: threshold 3, but only 1 keys") {
		t.Errorf("lint of a policy that locks out its root: exit %d %s", code, stdout)
	}
	// The police's key written under the regulator's key ID: lint names
	// both lines, and -p refuses the two key files.
	police, _ := minisig.ReadPublicKey(filepath.Join(dir, "police.pub"))
	mcmc, _ := minisig.ReadPublicKey(filepath.Join(dir, "mcmc.pub"))
	forged := blocklisttest.WithID(police, mcmc.ID())
	clash := writeFile(t, dir, "clash.trust", "#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-11-30T00:00:00Z\n"+
		"root 2 "+line["root-a"]+" "+line["root-b"]+"\nlist pdrm-* 1 "+forged.String()+"\nlist mcmc-csam 1 "+line["mcmc"]+"\n")
	if code, stdout, _ := regblock(t, "lint", clash); code != 1 || !strings.Contains(stdout, "clash.trust:6: error: line 5 and line 6 give two different public keys the same key ID") {
		t.Errorf("lint of a policy with one key ID for two keys: exit %d %s", code, stdout)
	}
	forgedPub := writeFile(t, dir, "forged.pub", "untrusted comment: minisign public key\n"+forged.String()+"\n")
	if code, _, stderr := regblock(t, "verify", "-p", filepath.Join(dir, "mcmc.pub")+","+forgedPub, clash); code == 0 || !strings.Contains(stderr, "forged.pub give two different public keys the same key ID") {
		t.Errorf("verify -p with two keys of one ID: exit %d %s", code, stderr)
	}

	roots := filepath.Join(dir, "root-a.pub") + "," + filepath.Join(dir, "root-b.pub")
	regblock(t, "sign", "-s", filepath.Join(dir, "root-a.key"), policy)
	if code, _, stderr := regblock(t, "verify", "-p", roots, policy); code != 1 || !strings.Contains(stderr, "threshold") {
		t.Errorf("a policy with one of two root signatures: exit %d %s", code, stderr)
	}
	// One of the two pinned roots signs a first policy of "root 1" with
	// itself: not a majority of the pinned keys.
	evil := writeFile(t, dir, "evil.trust", "#! regblock-trust 1\n#! serial: 99\n#! issued: 2026-11-30T00:00:00Z\n"+
		"root 1 "+line["root-a"]+"\nlist * 1 "+line["police"]+"\n")
	regblock(t, "sign", "-s", filepath.Join(dir, "root-a.key"), evil)
	if code, _, stderr := regblock(t, "verify", "-p", roots, evil); code != 1 || !strings.Contains(stderr, "a majority of the 2 pinned") {
		t.Errorf("a first policy signed by one of two pinned roots: exit %d %s", code, stderr)
	}
	regblock(t, "sign", "-s", filepath.Join(dir, "root-b.key"), "-append", policy)
	if code, stdout, stderr := regblock(t, "verify", "-p", roots, policy); code != 0 || !strings.Contains(stdout, "trust policy serial 1 valid, signed by 2 of its 2 root keys") {
		t.Errorf("verify of the policy: exit %d %s%s", code, stdout, stderr)
	}

	mcmcList := writeFile(t, dir, "mcmc-csam.list", strings.Replace(exampleList, "name: example-csam", "name: mcmc-csam", 1))
	regblock(t, "sign", "-s", filepath.Join(dir, "mcmc.key"), mcmcList)
	code, stdout, stderr := regblock(t, "verify", "-p", roots, "-trust", policy, mcmcList)
	if code != 0 || !strings.Contains(stdout, "1 of 1 needed by line 5 (list mcmc-csam) of trust policy serial 1") {
		t.Errorf("verify -trust: exit %d %s%s", code, stdout, stderr)
	}
	// The same through a history directory holding the policy as 1.trust.
	hist := filepath.Join(dir, "history")
	os.Mkdir(hist, 0o755)
	os.WriteFile(filepath.Join(hist, "1.trust"), []byte(mustRead(t, policy)), 0o644)
	os.WriteFile(filepath.Join(hist, "1.trust.minisig"), []byte(mustRead(t, policy+".minisig")), 0o644)
	if code, stdout, stderr := regblock(t, "verify", "-p", roots, "-trust", hist, mcmcList); code != 0 || !strings.Contains(stdout, "of trust policy serial 1") {
		t.Errorf("verify -trust DIR: exit %d %s%s", code, stdout, stderr)
	}
	regblock(t, "sign", "-s", filepath.Join(dir, "police.key"), mcmcList)
	if code, _, stderr := regblock(t, "verify", "-p", roots, "-trust", policy, mcmcList); code != 1 || !strings.Contains(stderr, "threshold") {
		t.Errorf("verify -trust of the regulator's list signed by the police: exit %d %s", code, stderr)
	}
	if code, stdout, _ := regblock(t, "inspect", policy); code != 0 || !strings.Contains(stdout, "trust policy serial 1") || !strings.Contains(stdout, "list mcmc-csam:") {
		t.Errorf("inspect of the policy: exit %d %s", code, stdout)
	}

	// verify-ledger shows the policy's versions beside the lists'.
	serial, one := uint64(1), uint64(2026112801)
	audit := filepath.Join(dir, "audit.jsonl")
	writeLedger(t, audit, "", []ledger.Event{
		{Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Event: ledger.TrustApplied, Serial: &serial, File: policy},
		{Time: time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC), Event: ledger.ListApplied, List: "mcmc-csam", Serial: &one, File: mcmcList},
	})
	if code, stdout, stderr := regblock(t, "verify-ledger", audit); code != 0 || !strings.Contains(stdout, "(trust policy)       applied   serial 1") || !strings.Contains(stdout, "(trust policy)       serial 1 since") {
		t.Errorf("verify-ledger with a trust policy: exit %d %s%s", code, stdout, stderr)
	}
}

// TestPolicyCommand: policy lines are written from .pub files, printed or
// set in a policy file (created at serial 1, then each edit raising the
// serial), and a line that would not parse leaves the file as it was.
func TestPolicyCommand(t *testing.T) {
	dir := t.TempDir()
	pub := func(name string) string {
		p := filepath.Join(dir, name+".pub")
		regblock(t, "keygen", "-W", "-p", p, "-s", filepath.Join(dir, name+".key"))
		return p
	}
	rootA, rootB, regulator := pub("root-a"), pub("root-b"), pub("regulator")
	keyOf := func(path string) string {
		lines := strings.Split(strings.TrimSpace(mustRead(t, path)), "\n")
		return lines[len(lines)-1]
	}
	if code, stdout, stderr := regblock(t, "policy", "root", "2", rootA, rootB); code != 0 || strings.TrimSpace(stdout) != "root 2 "+keyOf(rootA)+" "+keyOf(rootB) {
		t.Errorf("policy root: exit %d %q %s", code, stdout, stderr)
	}
	file := filepath.Join(dir, "regblock.trust")
	if code, _, stderr := regblock(t, "policy", "-f", file, "root", "2", rootA, rootB); code != 0 {
		t.Fatalf("policy -f (new file): exit %d %s", code, stderr)
	}
	if code, _, stderr := regblock(t, "policy", "-f", file, "-issuer", "Example Communications Commission", "list", "example-csam", "1", regulator); code != 0 {
		t.Fatalf("policy -f list: exit %d %s", code, stderr)
	}
	text := mustRead(t, file)
	if !strings.Contains(text, "#! serial: 2\n") || !strings.Contains(text, `list example-csam 1 `+keyOf(regulator)+` "Example Communications Commission"`) {
		t.Errorf("the policy after two edits:\n%s", text)
	}
	if code, stdout, _ := regblock(t, "lint", file); code != 0 || strings.Contains(stdout, "warning") {
		t.Errorf("lint of the written policy: exit %d %s", code, stdout)
	}
	// The same pattern again replaces its line; a threshold the keys cannot
	// meet is refused and the file stays.
	regblock(t, "policy", "-f", file, "-issuer", "Example Communications Commission", "list", "example-csam", "1", regulator, rootA)
	if got := mustRead(t, file); strings.Count(got, "list example-csam") != 1 || !strings.Contains(got, "#! serial: 3\n") {
		t.Errorf("a second edit of the same line:\n%s", got)
	}
	before := mustRead(t, file)
	if code, _, stderr := regblock(t, "policy", "-f", file, "list", "example-csam", "3", regulator); code != 1 || !strings.Contains(stderr, "could never be met") || mustRead(t, file) != before {
		t.Errorf("an impossible threshold: exit %d %s", code, stderr)
	}
	if code, _, _ := regblock(t, "policy", "root"); code != 2 {
		t.Errorf("policy root without a threshold: exit %d, want 2", code)
	}
}
