package main

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	p.files["example.list"] = []byte(text)
	p.files["example.list.minisig"] = key.Sign([]byte(text))
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
	list := filepath.Join(dir, "example.list")
	args := []string{"sync", "-url", ts.URL + "/lists", "-insecure-http", "-name", "example", "-dir", dir, "-p", pub, "-once", "-retries", "2", "-retry-wait", "10ms"}
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
	if got := p.log(); len(got) != 1 || got[0] != "/lists/example.list (conditional)" {
		t.Errorf("unchanged: requests %v, want one conditional GET of the list", got)
	}

	// A new serial.
	p.publish(key, v2)
	if code, _, stderr := regblock(t, args...); code != 0 || mustRead(t, list) != v2 {
		t.Fatalf("new serial: exit %d, %s", code, stderr)
	}
	good, goodSig := mustRead(t, list), mustRead(t, list+".minisig")
	unchanged := func(what string) {
		t.Helper()
		if mustRead(t, list) != good || mustRead(t, list+".minisig") != goodSig {
			t.Errorf("%s changed the directory", what)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("%s left %s behind", what, e.Name())
			}
		}
	}

	// A bad signature: the list changed after signing.
	p.publish(key, v2)
	p.set("example.list", []byte(strings.Replace(v2, "serial: 2026112802", "serial: 2026112809", 1)), 0)
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
	if code, _, stderr := regblock(t, "sync", "-url", ts.URL, "-name", "example", "-dir", dir, "-p", pub); code != 2 || !strings.Contains(stderr, "plain HTTP") {
		t.Errorf("http without -insecure-http: exit %d, %s", code, stderr)
	}
}

// TestSyncIntoResolver syncs a new version into the directory a running
// regblockd watches, and the new name becomes blocked without a restart.
func TestSyncIntoResolver(t *testing.T) {
	lists := t.TempDir()
	key := blocklisttest.NewKey(t)
	keyPub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	ts := httptest.NewServer(p)
	defer ts.Close()
	args := []string{"sync", "-url", ts.URL + "/lists/", "-insecure-http", "-name", "example", "-dir", lists, "-p", keyPub, "-once"}
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
