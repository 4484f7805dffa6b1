package main

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// publisher is a regulator's web server on loopback: it serves files with
// ETags, answers conditional GETs, and can be told to fail.
type publisher struct {
	mu       sync.Mutex
	files    map[string][]byte
	fail     int // answer 503 to this many more requests
	requests []string
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cond := ""
	if r.Header.Get("If-None-Match") != "" {
		cond = " (conditional)"
	}
	p.requests = append(p.requests, r.URL.Path+cond)
	if p.fail > 0 {
		p.fail--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	data, ok := p.files[strings.TrimPrefix(r.URL.Path, "/lists/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256(data))
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(data)
}

func (p *publisher) publish(key *blocklisttest.Key, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files["example-csam.list"] = []byte(text)
	p.files["example-csam.list.minisig"] = key.Sign([]byte(text))
}

// set serves data as a file, and fails the next n requests.
func (p *publisher) set(file string, data []byte, fail int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if file != "" {
		p.files[file] = data
	}
	p.fail = fail
}

func (p *publisher) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.requests
	p.requests = nil
	return r
}

func TestSync(t *testing.T) {
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	dir := t.TempDir()
	list := filepath.Join(dir, "example-csam.list")
	args := []string{"sync", "-url", ts.URL + "/lists", "-insecure-http", "-name", "example-csam", "-dir", dir, "-p", pub, "-once", "-retries", "2", "-retry-wait", "10ms"}
	v1 := exampleList
	v2 := strings.Replace(exampleList, "2026112801", "2026112802", 1) + "added.example\n"

	// First fetch.
	p.publish(key, v1)
	if code, _, stderr := regblock(t, args...); code != 0 || !strings.Contains(stderr, "serial 2026112801 (3 blocking entries) written") {
		t.Fatalf("first fetch: exit %d, %s", code, stderr)
	}
	if mustRead(t, list) != v1 || !strings.Contains(mustRead(t, list+".minisig"), "untrusted comment") {
		t.Fatal("first fetch did not write the list and its signature")
	}
	p.log()

	// Nothing new: one conditional request, answered 304.
	if code, _, stderr := regblock(t, args...); code != 0 || !strings.Contains(stderr, "not modified") {
		t.Errorf("unchanged: exit %d, %s", code, stderr)
	}
	if got := p.log(); len(got) != 1 || got[0] != "/lists/example-csam.list (conditional)" {
		t.Errorf("unchanged: requests %v, want one conditional GET of the list", got)
	}

	// A new serial.
	p.publish(key, v2)
	if code, _, stderr := regblock(t, args...); code != 0 || mustRead(t, list) != v2 {
		t.Fatalf("new serial: exit %d, %s", code, stderr)
	}
	// The older version put back in the directory by hand: the 304 the
	// saved validators would bring vouches for serial 2 only, so the list
	// is fetched whole and serial 2 written again.
	os.WriteFile(list, []byte(v1), 0o644)
	os.WriteFile(list+".minisig", key.Sign([]byte(v1)), 0o644)
	p.log()
	if code, _, stderr := regblock(t, args...); code != 0 || mustRead(t, list) != v2 || strings.Contains(stderr, "not modified") {
		t.Errorf("an older version put back on disk: exit %d, %s", code, stderr)
	}
	if got := p.log(); len(got) == 0 || strings.Contains(got[0], "(conditional)") {
		t.Errorf("an older version put back on disk: requests %v, want an unconditional GET", got)
	}
	good, goodSig := mustRead(t, list), mustRead(t, list+".minisig")
	unchanged := func(what string) {
		t.Helper()
		if mustRead(t, list) != good || mustRead(t, list+".minisig") != goodSig {
			t.Errorf("%s changed the directory", what)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") || strings.HasPrefix(e.Name(), ".regblock-sync-") {
				t.Errorf("%s left %s behind", what, e.Name())
			}
		}
	}

	// A bad signature: the list changed after signing.
	p.publish(key, v2)
	p.set("example-csam.list", []byte(strings.Replace(v2, "serial: 2026112802", "serial: 2026112809", 1)), 0)
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "does not match") {
		t.Errorf("bad signature: exit %d, %s", code, stderr)
	}
	unchanged("a bad signature")

	// A rollback: a validly signed older serial.
	p.publish(key, v1)
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "refusing a rollback") {
		t.Errorf("rollback: exit %d, %s", code, stderr)
	}
	unchanged("a rollback")

	// The server fails twice, then answers: the retries get through.
	p.publish(key, strings.Replace(v2, "2026112802", "2026112803", 1))
	p.set("", nil, 2)
	p.log()
	if code, _, stderr := regblock(t, args...); code != 0 || strings.Count(stderr, "retrying in") != 2 {
		t.Errorf("two failures, then success: exit %d, %s", code, stderr)
	}
	good, goodSig = mustRead(t, list), mustRead(t, list+".minisig")

	// The server stays down: retries, then a clear error, directory unchanged.
	p.set("", nil, 100)
	p.log()
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "503 Service Unavailable (after 3 attempts)") {
		t.Errorf("server down: exit %d, %s", code, stderr)
	}
	if got := p.log(); len(got) != 3 {
		t.Errorf("server down: %d requests, want 3 (1 + 2 retries)", len(got))
	}
	unchanged("a server down")
	ts.Close()
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "connect") {
		t.Errorf("no server: exit %d, %s", code, stderr)
	}

	// Plain HTTP needs saying so.
	if code, _, stderr := regblock(t, "sync", "-url", ts.URL, "-name", "example-csam", "-dir", dir, "-p", pub); code != 2 || !strings.Contains(stderr, "plain HTTP") {
		t.Errorf("http without -insecure-http: exit %d, %s", code, stderr)
	}
}

// TestSyncIntoResolver syncs a new version into the directory a running
// regblockd watches, and the new name becomes blocked without a restart.
func TestSyncIntoResolver(t *testing.T) {
	t.Parallel()
	lists := t.TempDir()
	key := blocklisttest.NewKey(t)
	keyPub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	args := []string{"sync", "-url", ts.URL + "/lists/", "-insecure-http", "-name", "example-csam", "-dir", lists, "-p", keyPub, "-once"}
	p.publish(key, exampleList)
	if code, _, stderr := regblock(t, args...); code != 0 {
		t.Fatalf("sync: %s", stderr)
	}
	addr := resolver(t, "regblock {\n lists "+lists+"\n pubkey "+keyPub+"\n notice 192.0.2.80\n}")
	blocked := func(name string) bool {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	if !blocked("abuse.example.") || blocked("added.example.") {
		t.Fatal("the first version is not what the resolver enforces")
	}
	p.publish(key, strings.Replace(exampleList, "2026112801", "2026112802", 1)+"added.example\n")
	start := time.Now()
	if code, _, stderr := regblock(t, args...); code != 0 {
		t.Fatalf("sync: %s", stderr)
	}
	testenv.Eventually(t, 10*time.Second, "the synced version is enforced", func() bool { return blocked("added.example.") })
	t.Logf("synced name blocked %v after sync started", time.Since(start).Round(time.Millisecond))
}

// TestSyncRPZ: -name NAME.rpz fetches an RPZ zone and its signature, and
// refuses an older serial as it does for a list.
func TestSyncRPZ(t *testing.T) {
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	dir := t.TempDir()
	zone := func(serial int) []byte {
		return []byte(fmt.Sprintf("$TTL 60\n@ SOA ns.feed.example. hostmaster.feed.example. %d 3600 600 86400 60\nabuse.example CNAME .\n", serial))
	}
	args := []string{"sync", "-url", ts.URL + "/lists", "-insecure-http", "-name", "feed.rpz", "-dir", dir, "-p", pub, "-once", "-retries", "0"}
	p.set("feed.rpz", zone(7), 0)
	p.set("feed.rpz.minisig", key.Sign(zone(7)), 0)
	if code, _, stderr := regblock(t, args...); code != 0 || !strings.Contains(stderr, "feed: serial 7 (1 blocking entries) written to "+filepath.Join(dir, "feed.rpz")) {
		t.Fatalf("first fetch: exit %d, %s", code, stderr)
	}
	if got := mustRead(t, filepath.Join(dir, "feed.rpz")); got != string(zone(7)) {
		t.Errorf("feed.rpz holds %q", got)
	}
	p.set("feed.rpz", zone(6), 0)
	p.set("feed.rpz.minisig", key.Sign(zone(6)), 0)
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "rollback") {
		t.Errorf("older serial: exit %d, %s", code, stderr)
	}
	if got := mustRead(t, filepath.Join(dir, "feed.rpz")); got != string(zone(7)) {
		t.Errorf("after a rollback attempt, feed.rpz holds %q", got)
	}
}

// TestSyncHostilePublisher runs sync against a publisher that redirects
// where it should not, sends too much, answers "not modified" to a
// request that was not conditional, or serves another list under the name
// asked: each is refused with a reason, and nothing is left in the
// directory but what was there.
func TestSyncHostilePublisher(t *testing.T) {
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	signed := exampleList
	var mu sync.Mutex
	handle := map[string]http.HandlerFunc{}
	serve := func(path string, h http.HandlerFunc) { mu.Lock(); handle[path] = h; mu.Unlock() }
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handle[r.URL.Path]
		mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
	bytesOf := func(data []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write(data) }
	}
	publish := func(prefix, text string) {
		serve(prefix+"example-csam.list", bytesOf([]byte(text)))
		serve(prefix+"example-csam.list.minisig", bytesOf(key.Sign([]byte(text))))
	}

	// An HTTPS publisher with a certificate the sync process trusts, and a
	// plain HTTP one.
	cert, certKey, _ := testenv.SelfSigned(t)
	tlsSrv := httptest.NewUnstartedServer(mux)
	pair, err := tls.LoadX509KeyPair(cert, certKey)
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plain := httptest.NewServer(mux)
	defer plain.Close()

	dir := t.TempDir()
	sync := func(base string, extra ...string) (int, string) {
		t.Helper()
		args := append([]string{"sync", "-url", base, "-name", "example-csam", "-dir", dir, "-p", pub, "-once", "-retries", "0"}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+cert)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stderr.String()
	}
	clean := func(what string) {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".regblock-sync-") {
				t.Errorf("%s left %s behind", what, e.Name())
			}
		}
	}
	plainHost := strings.TrimPrefix(plain.URL, "http://")
	_, port, _ := strings.Cut(plainHost, ":")

	for _, tc := range []struct {
		name  string
		setup func()
		base  string
		extra []string
		want  string // in the error; "" for success
	}{
		{"redirect from https to http", func() {
			serve("/a/example-csam.list", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, plain.URL+"/b/example-csam.list", http.StatusFound)
			})
			publish("/b/", signed)
		}, tlsSrv.URL + "/a/", nil, "which is not https"},
		{"redirect to another host", func() {
			for _, f := range []string{"example-csam.list", "example-csam.list.minisig"} {
				serve("/c/"+f, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://localhost:"+port+"/b/"+f, http.StatusFound)
				})
			}
		}, plain.URL + "/c/", []string{"-insecure-http"}, "another host than " + plainHost},
		{"redirect to another host, allowed", nil, plain.URL + "/c/", []string{"-insecure-http", "-allow-redirect-host"}, ""},
		{"a list over the limit", func() {
			serve("/d/example-csam.list", bytesOf([]byte(signed+strings.Repeat("# padding\n", 2000))))
			serve("/d/example-csam.list.minisig", bytesOf(key.Sign([]byte(signed))))
		}, plain.URL + "/d/", []string{"-insecure-http", "-max-size", "4096"}, "larger than 4096"},
		{"a signature over 64 KiB", func() {
			serve("/e/example-csam.list", bytesOf([]byte(strings.Replace(signed, "2026112801", "2026112802", 1))))
			serve("/e/example-csam.list.minisig", bytesOf(make([]byte, 65<<10)))
		}, plain.URL + "/e/", []string{"-insecure-http"}, "larger than 65536"},
		{"not modified, unasked", func() {
			serve("/f/example-csam.list", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
		}, plain.URL + "/f/", []string{"-insecure-http"}, "304 Not Modified"},
		{"another list under the name", func() {
			publish("/g/", strings.Replace(signed, "name: example-csam", "name: other-list", 1))
		}, plain.URL + "/g/", []string{"-insecure-http"}, `holds list "other-list", not "example-csam"`},
	} {
		os.Remove(filepath.Join(dir, "example-csam.list"))
		os.Remove(filepath.Join(dir, "example-csam.list.minisig"))
		os.Remove(filepath.Join(dir, ".example-csam.list.sync.json"))
		if tc.setup != nil {
			tc.setup()
		}
		code, stderr := sync(tc.base, tc.extra...)
		switch {
		case tc.want == "" && code != 0:
			t.Errorf("%s: exit %d, %s", tc.name, code, stderr)
		case tc.want != "" && (code != 1 || !strings.Contains(stderr, tc.want)):
			t.Errorf("%s: exit %d, %s; want exit 1 and %q", tc.name, code, stderr, tc.want)
		case tc.want != "":
			if _, err := os.Stat(filepath.Join(dir, "example-csam.list")); err == nil {
				t.Errorf("%s: a list was written", tc.name)
			}
		}
		clean(tc.name)
	}

	// "Not modified" to a conditional request vouches only for a file that
	// still verifies: one altered on disk is fetched again whole.
	publish("/h/", signed)
	if code, stderr := sync(plain.URL+"/h/", "-insecure-http"); code != 0 {
		t.Fatalf("first fetch: %s", stderr)
	}
	serve("/h/example-csam.list", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte(signed))
	})
	os.WriteFile(filepath.Join(dir, ".example-csam.list.sync.json"), []byte(`{"etag":"\"x\""}`), 0o644)
	os.WriteFile(filepath.Join(dir, "example-csam.list"), []byte(signed+"tampered.example\n"), 0o644)
	if code, stderr := sync(plain.URL+"/h/", "-insecure-http"); code != 0 || strings.Contains(stderr, "not modified") || mustRead(t, filepath.Join(dir, "example-csam.list")) != signed {
		t.Errorf("a tampered file under a 304: exit %d, %s; want it fetched again", code, stderr)
	}
}

// TestSyncDiskFull syncs a list into a directory where writes fail past a
// few kilobytes (a file size limit stands for a full disk): sync fails
// with the write error, leaves no temporary file, and the list already in
// the directory is untouched.
func TestSyncDiskFull(t *testing.T) {
	t.Parallel()
	bash := testenv.Need(t, "bash", "bash")
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	dir := t.TempDir()
	sync := func(limitKB int) (int, string) {
		cmd := exec.Command(bash, "-c", fmt.Sprintf(`ulimit -f %d; exec "$0" "$@"`, limitKB), bin,
			"sync", "-url", ts.URL+"/lists/", "-insecure-http", "-name", "example-csam", "-dir", dir, "-p", pub, "-once")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	}
	p.publish(key, exampleList)
	if code, stderr := sync(1024); code != 0 {
		t.Fatalf("first sync: %s", stderr)
	}
	good := mustRead(t, filepath.Join(dir, "example-csam.list"))
	big := strings.Replace(exampleList, "2026112801", "2026112802", 1)
	for i := range 20000 {
		big += fmt.Sprintf("n%d.big.example\n", i)
	}
	p.publish(key, big)
	code, stderr := sync(64) // 64 KiB, where the list is 400
	if code != 1 || !strings.Contains(stderr, "file too large") || strings.Contains(stderr, "retrying") {
		t.Errorf("sync onto a full disk: exit %d, %s; want exit 1 with the write error, not retried", code, stderr)
	}
	if mustRead(t, filepath.Join(dir, "example-csam.list")) != good {
		t.Error("the list in the directory changed")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".regblock-sync-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

// TestSyncTextfile runs sync as a timer would, once a run, with -textfile:
// the file says when each run ended and whether it succeeded, so that a
// failing oneshot sync alerts.
func TestSyncTextfile(t *testing.T) {
	key := blocklisttest.NewKey(t)
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	textfile := filepath.Join(t.TempDir(), "regblock-sync.prom")
	args := []string{"sync", "-url", ts.URL + "/lists", "-insecure-http", "-name", "example-csam", "-dir", t.TempDir(),
		"-p", key.WritePublic(t, t.TempDir()), "-once", "-retries", "1", "-retry-wait", "10ms", "-textfile", textfile}
	metrics := func() map[string]string {
		m := map[string]string{}
		for line := range strings.Lines(mustRead(t, textfile)) {
			if name, value, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(name, "#") {
				m[name] = value
			}
		}
		return m
	}
	const ok = `regblock_sync_last_run_success{list="example-csam"}`
	const ran = `regblock_sync_last_run_timestamp_seconds{list="example-csam"}`

	p.publish(key, exampleList)
	if code, _, stderr := regblock(t, args...); code != 0 {
		t.Fatalf("sync: exit %d, %s", code, stderr)
	}
	if m := metrics(); m[ok] != "1" || m[ran] == "" || m[`regblock_sync_serial{list="example-csam"}`] != "2.026112801e+09" {
		t.Errorf("after a good run: %v", m)
	}
	p.set("", nil, 100) // the publisher is down
	if code, _, _ := regblock(t, args...); code != 1 {
		t.Fatalf("sync against a publisher that is down: exit %d, want 1", code)
	}
	if m := metrics(); m[ok] != "0" || m[`regblock_sync_failures_total{list="example-csam",reason="fetch"}`] != "2" {
		t.Errorf("after a failed run: %v", m)
	}
}

// TestSyncPolicy: sync -name NAME.trust fetches a trust policy into the
// directory when the resolver would take it (signed from the pinned roots,
// then by the roots of the policy already there), and refuses one signed
// by a retired root, a rollback, or an unsigned one, leaving the policy in
// the directory as it was.
func TestSyncPolicy(t *testing.T) {
	a, b := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	pinned := a.WritePublic(t, t.TempDir())
	mcmc := blocklisttest.NewKey(t)
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	dir := t.TempDir()
	args := []string{"sync", "-url", ts.URL + "/lists", "-insecure-http", "-name", "regblock.trust", "-dir", dir, "-p", pinned, "-once", "-retries", "0"}
	keyLine := func(k *blocklisttest.Key) string { return k.Public.String() }
	version := func(serial int, root *blocklisttest.Key, signers ...*blocklisttest.Key) {
		text := fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\nlist mcmc-csam 1 %s\n", serial, keyLine(root), keyLine(mcmc))
		var sig []byte
		for _, k := range signers {
			sig = append(sig, k.Sign([]byte(text))...)
		}
		p.set("regblock.trust", []byte(text), 0)
		p.set("regblock.trust.minisig", sig, 0)
	}
	inDir := func() string { return mustRead(t, filepath.Join(dir, "regblock.trust")) }

	version(1, a, a)
	if code, _, stderr := regblock(t, args...); code != 0 || !strings.Contains(stderr, "trust policy serial 1 written") || !strings.Contains(inDir(), "serial: 1") {
		t.Fatalf("the first policy: exit %d, %s", code, stderr)
	}
	version(2, b, a, b) // the root rotated to b, signed by the root in force and its own
	if code, _, stderr := regblock(t, args...); code != 0 || !strings.Contains(inDir(), "serial: 2") {
		t.Fatalf("a rotated root: exit %d, %s", code, stderr)
	}
	version(3, a, a) // signed by the retired root
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "threshold") || !strings.Contains(inDir(), "serial: 2") {
		t.Errorf("a policy by a retired root: exit %d, %s", code, stderr)
	}
	version(1, a, a)
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "rollback") || !strings.Contains(inDir(), "serial: 2") {
		t.Errorf("a rollback: exit %d, %s", code, stderr)
	}
	if code, _, stderr := regblock(t, append(args, "-trust", filepath.Join(dir, "regblock.trust"))...); code != 2 || !strings.Contains(stderr, "-trust judges lists") {
		t.Errorf("-trust with a policy: exit %d, %s", code, stderr)
	}
	// A history's N.trust must hold serial N.
	p.set("7.trust", []byte(mustRead(t, filepath.Join(dir, "regblock.trust"))), 0)
	p.set("7.trust.minisig", []byte(mustRead(t, filepath.Join(dir, "regblock.trust.minisig"))), 0)
	hist := t.TempDir()
	if code, _, stderr := regblock(t, "sync", "-url", ts.URL+"/lists", "-insecure-http", "-name", "7.trust", "-dir", hist, "-p", pinned, "-once", "-retries", "0"); code != 1 || !strings.Contains(stderr, "not 7") {
		t.Errorf("7.trust holding serial 2: exit %d, %s", code, stderr)
	}

	// A policy in the directory that the pinned key did not sign (the
	// roots rotated twice since): nothing is judged against the pinned key
	// alone, nothing is written.
	c := blocklisttest.NewKey(t)
	inPlace := fmt.Sprintf("#! regblock-trust 1\n#! serial: 9\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\n", keyLine(c))
	os.WriteFile(filepath.Join(dir, "regblock.trust"), []byte(inPlace), 0o644)
	os.WriteFile(filepath.Join(dir, "regblock.trust.minisig"), c.Sign([]byte(inPlace)), 0o644)
	version(10, a, a)
	if code, _, stderr := regblock(t, args...); code != 1 || !strings.Contains(stderr, "not accepted from the pinned keys") || inDir() != inPlace {
		t.Errorf("a policy in the directory not traced to the pinned key: exit %d, %s", code, stderr)
	}
}

// TestSyncHistory mirrors a published policy history as TUF clients fetch
// root versions: from an empty directory pinned to the first root it
// fetches every version, through two root rotations, until the publisher
// has no next one; pinned to today's root it passes by the versions the
// earlier roots signed; a version by a retired root, or holding another
// serial than its name's, stops the run and is not written; and what it
// wrote is what verify -trust DIR walks to the newest policy.
func TestSyncHistory(t *testing.T) {
	a, b, c := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	mcmc := blocklisttest.NewKey(t)
	pinnedA, pinnedC := a.WritePublic(t, t.TempDir()), c.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	version := func(name string, serial int, root *blocklisttest.Key, signers ...*blocklisttest.Key) {
		text := fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\nlist mcmc-csam 1 %s\n", serial, root.Public.String(), mcmc.Public.String())
		var sig []byte
		for _, k := range signers {
			sig = append(sig, k.Sign([]byte(text))...)
		}
		p.set(name, []byte(text), 0)
		p.set(name+".minisig", sig, 0)
	}
	sync := func(dir, pinned string) (int, string) {
		code, _, stderr := regblock(t, "sync", "-url", ts.URL+"/lists", "-insecure-http", "-history", "-dir", dir, "-p", pinned, "-once", "-retries", "0")
		return code, stderr
	}
	versions := func(dir string) []string {
		names, _ := filepath.Glob(filepath.Join(dir, "*.trust"))
		for i := range names {
			names[i] = filepath.Base(names[i])
		}
		return names
	}

	empty := t.TempDir()
	if code, stderr := sync(empty, pinnedA); code != 1 || !strings.Contains(stderr, "no trust policy history published") {
		t.Errorf("nothing published: exit %d, %s", code, stderr)
	}
	version("1.trust", 1, a, a)
	version("2.trust", 2, b, a, b) // the root rotated to b
	version("3.trust", 3, c, b, c) // and to c
	dir := t.TempDir()
	if code, stderr := sync(dir, pinnedA); code != 0 || !slices.Equal(versions(dir), []string{"1.trust", "2.trust", "3.trust"}) {
		t.Fatalf("a history from the first root: exit %d, %v, %s", code, versions(dir), stderr)
	}
	if code, stderr := sync(dir, pinnedA); code != 0 || !strings.Contains(stderr, "serial 3 is the newest") {
		t.Errorf("again: exit %d, %s", code, stderr)
	}
	list := writeFile(t, t.TempDir(), "mcmc-csam.list", strings.Replace(exampleList, "name: example-csam", "name: mcmc-csam", 1))
	os.WriteFile(list+".minisig", mcmc.Sign([]byte(mustRead(t, list))), 0o644)
	if code, stdout, stderr := regblock(t, "verify", "-p", pinnedA, "-trust", dir, list); code != 0 || !strings.Contains(stdout, "trust policy serial 3") {
		t.Errorf("verify -trust of the mirrored history: exit %d %s%s", code, stdout, stderr)
	}

	today := t.TempDir()
	if code, stderr := sync(today, pinnedC); code != 0 || !slices.Equal(versions(today), []string{"3.trust"}) {
		t.Errorf("pinned to today's root: exit %d, %v, %s", code, versions(today), stderr)
	}

	version("4.trust", 4, a, a) // by a retired root
	if code, stderr := sync(dir, pinnedA); code != 1 || !strings.Contains(stderr, "threshold") || slices.Contains(versions(dir), "4.trust") {
		t.Errorf("a version by a retired root: exit %d, %v, %s", code, versions(dir), stderr)
	}
	version("4.trust", 5, c, c)
	if code, stderr := sync(dir, pinnedA); code != 1 || !strings.Contains(stderr, "not 4") || slices.Contains(versions(dir), "4.trust") {
		t.Errorf("4.trust holding serial 5: exit %d, %v, %s", code, versions(dir), stderr)
	}
	version("4.trust", 4, c, c)
	if code, stderr := sync(dir, pinnedA); code != 0 || !slices.Contains(versions(dir), "4.trust") {
		t.Errorf("the next version: exit %d, %v, %s", code, versions(dir), stderr)
	}
	// A damaged next version in the directory (a copy cut short): the
	// toolkit judges by the versions before it, as the resolver does, and
	// the next run writes the publisher's version over it.
	os.WriteFile(filepath.Join(dir, "5.trust"), []byte("#! regblock-trust 1\n#! ser"), 0o644)
	if code, stdout, stderr := regblock(t, "verify", "-p", pinnedA, "-trust", dir, list); code != 0 || !strings.Contains(stdout, "trust policy serial 4") || !strings.Contains(stderr, "warning") {
		t.Errorf("verify -trust with a damaged 5.trust: exit %d %s%s", code, stdout, stderr)
	}
	version("5.trust", 5, c, c)
	if code, stderr := sync(dir, pinnedA); code != 0 || !strings.Contains(mustRead(t, filepath.Join(dir, "5.trust")), "serial: 5") {
		t.Errorf("sync over a damaged 5.trust: exit %d, %s", code, stderr)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".regblock-sync-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left in the directory: %v", leftovers)
	}
}
