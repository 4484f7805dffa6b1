package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

const testSalt = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// TestHashedToolkit walks a regulator's confidential list through the
// toolkit: hash, lint, inspect, sign, verify, verify-hashed (and what it
// catches), diff, export (refused), sync, audit with the plain list of a
// resolver enforcing the hashed one, and the notice page.
func TestHashedToolkit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "r.pub"), filepath.Join(dir, "r.key")
	regblock(t, "keygen", "-W", "-p", pub, "-s", sec)
	plainText := strings.Replace(exampleList, "#! appeal:", "#! canary: canary.example-csam.regblock.test\n#! appeal:", 1) + "# a comment that names secret.example\n"
	plain := writeFile(t, dir, "plain.list", plainText)
	lists := filepath.Join(dir, "lists")
	os.Mkdir(lists, 0o755)
	hashed := filepath.Join(lists, "example-csam.list")

	// hash: a fresh salt each time unless -salt; never over the plain list.
	if code, stdout, stderr := regblock(t, "hash", "-o", hashed, plain); code != 0 || !strings.Contains(stdout, `list "example-csam" serial 2026112801 hashed: 3 blocking entries`) {
		t.Fatalf("hash: exit %d\n%s%s", code, stdout, stderr)
	}
	first := mustRead(t, hashed)
	regblock(t, "hash", "-o", hashed, plain)
	if mustRead(t, hashed) == first {
		t.Error("two runs of hash drew the same salt")
	}
	if code, stdout, stderr := regblock(t, "hash", "-salt", testSalt, "-o", hashed, plain); code != 0 {
		t.Fatalf("hash -salt: exit %d\n%s%s", code, stdout, stderr)
	}
	text := mustRead(t, hashed)
	for _, name := range []string{"abuse", "cdn7", "help", "bulk", "secret"} {
		if strings.Contains(text, name) {
			t.Errorf("the hashed list names %q:\n%s", name, text)
		}
	}
	if !strings.Contains(text, "#! hashed: sha256 "+testSalt+"\n") || !strings.Contains(text, "\nh:2fab027504c360eeda1416ada192b061  ORDER-2026-0012  csam\n") {
		t.Errorf("the hashed list lacks its salt or the documented digest of abuse.example:\n%s", text)
	}
	if code, _, stderr := regblock(t, "hash", "-o", plain, plain); code != 2 || !strings.Contains(stderr, "is the plain list itself") || mustRead(t, plain) != plainText {
		t.Errorf("hash over its input: exit %d, %s", code, stderr)
	}
	if code, _, stderr := regblock(t, "hash", "-salt", "00ff", "-o", filepath.Join(dir, "x.list"), plain); code != 2 || !strings.Contains(stderr, "-salt") {
		t.Errorf("a short salt: exit %d, %s", code, stderr)
	}

	// lint, inspect, sign, verify.
	if code, stdout, _ := regblock(t, "lint", hashed); code != 0 || !strings.Contains(stdout, "3 blocking entries, 0 warnings") {
		t.Errorf("lint: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := regblock(t, "inspect", hashed); code != 0 || !strings.Contains(stdout, "hashed:") || !strings.Contains(stdout, "=h:digest  1") {
		t.Errorf("inspect: exit %d\n%s", code, stdout)
	}
	_, stdout, _ := regblock(t, "inspect", "-json", hashed)
	var in inspection
	if err := json.Unmarshal([]byte(stdout), &in); err != nil || !in.Hashed || in.ByKind["*.h:digest"] != 1 {
		t.Errorf("inspect -json: %v %+v", err, in)
	}
	if code, _, stderr := regblock(t, "sign", "-s", sec, hashed); code != 0 {
		t.Fatalf("sign: %s", stderr)
	}
	if code, stdout, _ := regblock(t, "verify", "-p", pub, hashed); code != 0 || !strings.Contains(stdout, "hashed:") {
		t.Errorf("verify: exit %d\n%s", code, stdout)
	}

	// verify-hashed: exit 0 for the hash, 1 with each difference, 2 misuse.
	if code, stdout, stderr := regblock(t, "verify-hashed", plain, hashed); code != 0 || !strings.Contains(stdout, "is the hash of") {
		t.Errorf("verify-hashed: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, c := range []struct{ what, old, new, want string }{
		{"an entry left out", "=h:31a299cd82742ffcb6635ee2021ee697  ORDER-2026-0013  csam\n", "", "plain.list:9: entry missing"},
		{"another order", "ORDER-2026-0013", "ORDER-2026-9999", "stands for no entry of"},
		{"another serial", "serial: 2026112801", "serial: 2026112802", `header serial: "2026112802", the plain list has "2026112801"`},
		{"an extra digest", "#! appeal", "", ""}, // replaced below
	} {
		tampered := strings.Replace(text, c.old, c.new, 1)
		if c.what == "an extra digest" {
			tampered, c.want = text+"h:00000000000000000000000000000000\n", "entry h:00000000000000000000000000000000 stands for no entry"
		}
		path := writeFile(t, dir, "tampered.list", tampered)
		if code, stdout, _ := regblock(t, "verify-hashed", plain, path); code != 1 || !strings.Contains(stdout, c.want) {
			t.Errorf("verify-hashed, %s: exit %d, want 1 and %q\n%s", c.what, code, c.want, stdout)
		}
	}
	if code, _, stderr := regblock(t, "verify-hashed", hashed, plain); code != 2 || !strings.Contains(stderr, "PLAIN must be the plain list") {
		t.Errorf("verify-hashed, arguments swapped: exit %d, %s", code, stderr)
	}

	// diff between two hashed versions; export refuses.
	v2 := writeFile(t, dir, "v2.plain.list", strings.Replace(plainText, "2026112801", "2026112802", 1)+"added.example ORDER-9\n")
	hashedV2 := filepath.Join(dir, "v2.list")
	regblock(t, "hash", "-salt", testSalt, "-o", hashedV2, v2)
	if code, stdout, _ := regblock(t, "diff", hashed, hashedV2); code != 0 || !strings.Contains(stdout, "+ h:") || strings.Count(stdout, "h:") != 1 {
		t.Errorf("diff: exit %d\n%s", code, stdout)
	}
	// delta: under one salt, as the docs say; another salt, or a plain
	// version, is refused with what to do.
	if code, _, stderr := regblock(t, "delta", "-o", filepath.Join(dir, "v.1.delta"), hashed, hashedV2); code != 0 {
		t.Errorf("delta under one salt: exit %d, %s", code, stderr)
	}
	resalted := filepath.Join(dir, "v2.resalted.list")
	regblock(t, "hash", "-o", resalted, v2)
	for _, c := range []struct{ next, want string }{
		{resalted, "hashed under different salts: publish the whole list, or hash the next version with regblock hash -salt " + testSalt},
		{v2, hashed + " is hashed and " + v2 + " is not"},
	} {
		if code, _, stderr := regblock(t, "delta", "-o", filepath.Join(dir, "x.1.delta"), hashed, c.next); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("delta to %s: exit %d, %s; want 1 and %q", c.next, code, stderr, c.want)
		}
	}
	if code, stdout, stderr := regblock(t, "export", "-format", "rpz", hashed); code != 1 || stdout != "" || !strings.Contains(stderr, "is a hashed list") {
		t.Errorf("export: exit %d\n%s%s", code, stdout, stderr)
	}

	// sync fetches and checks a hashed list as any other.
	key := blocklisttest.NewKey(t)
	p := &publisher{files: map[string][]byte{}}
	p.publish(key, text)
	ts := httptest.NewServer(p)
	defer ts.Close()
	synced := t.TempDir()
	if code, _, stderr := regblock(t, "sync", "-url", ts.URL+"/lists", "-insecure-http", "-name", "example-csam", "-dir", synced,
		"-p", key.WritePublic(t, t.TempDir()), "-once"); code != 0 || mustRead(t, filepath.Join(synced, "example-csam.list")) != text {
		t.Errorf("sync: exit %d, %s", code, stderr)
	}

	if testing.Short() {
		return
	}
	// audit: a resolver enforcing the hashed list, audited with the plain
	// one (signed by the regulator for its auditors).
	regblock(t, "sign", "-s", sec, plain)
	server := resolver(t, "regblock {\n lists "+lists+"\n pubkey "+pub+"\n notice 192.0.2.80\n}")
	base := []string{"audit", "-server", server, "-p", pub, "-notice", "192.0.2.80", "-rate", "1000", "-timeout", "500ms"}
	if code, stdout, stderr := regblock(t, append(base, plain)...); code != 0 || !strings.Contains(stdout, "COMPLIANT") {
		t.Errorf("audit with the plain list: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := regblock(t, append(base, hashed)...); code != 2 || !strings.Contains(stderr, "audit with the plain list") {
		t.Errorf("audit with the hashed list: exit %d, %s", code, stderr)
	}
	if code, stdout, stderr := regblock(t, append(base, "-canary", hashed)...); code != 0 {
		t.Errorf("audit -canary with the hashed list: exit %d\n%s%s", code, stdout, stderr)
	}

	// The notice page for a host whose digest is listed.
	addr := "127.0.0.1:" + testenv.FreePort(t)
	logs := testenv.Process(t, "regblock notice", exec.Command(bin, "notice", "-listen", addr, "-p", pub, lists))
	get := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 10*time.Second, "the notice server answers", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	testenv.Eventually(t, 10*time.Second, "the notice page of a listed host", func() bool { return get("WWW.Abuse.example") == 451 })
	for host, want := range map[string]int{"cdn7.hosting.example": 451, "x.bulk.example": 451, "help.abuse.example": 404, "bulk.example": 404} {
		if got := get(host); got != want {
			t.Errorf("notice page of %s: %d, want %d", host, got, want)
		}
	}
	if strings.Contains(logs.String(), "abuse") {
		t.Errorf("the notice server's log names a listed host:\n%s", logs)
	}
}
