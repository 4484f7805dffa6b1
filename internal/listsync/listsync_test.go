package listsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

func listText(name, serial string) string {
	return "#! regblock-list 1\n#! name: " + name + "\n#! serial: " + serial + "\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2027-11-28T06:00:00Z\n#! authority: Test Authority\n#! appeal: https://appeal.example/\nabuse.example\n"
}

// publisher serves files from memory, with an ETag, and counts requests
// by path.
type publisher struct {
	mu       sync.Mutex
	files    map[string][]byte
	gets     map[string]int
	noRanges bool // answer a range request with the whole file
	// intercept, when set, may answer a request in the publisher's place
	// (a hostile cache in between), and reports whether it did.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func (p *publisher) put(name string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[name] = data
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gets[r.URL.Path]++
	if p.intercept != nil && p.intercept(w, r) {
		return
	}
	data, ok := p.files[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	if r.Header.Get("Range") != "" && p.noRanges {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data)) // conditional and range requests
}

func setup(t *testing.T) (*publisher, *blocklisttest.Key, *Syncer, string) {
	t.Helper()
	key := blocklisttest.NewKey(t)
	pub := &publisher{files: map[string][]byte{}, gets: map[string]int{}}
	srv := httptest.NewServer(pub)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL + "/")
	dir := t.TempDir()
	s := New(Config{Base: base, Name: "test-csam", Dir: dir, Keys: []minisign.PublicKey{key.Public}, MaxSize: 1 << 20,
		Insecure: true, Log: log.New(io.Discard, "", 0)})
	return pub, key, s, dir
}

func (p *publisher) publish(key *blocklisttest.Key, name, text string) {
	p.put(name, []byte(text))
	p.put(name+".minisig", key.Sign([]byte(text)))
}

func failures(s *Syncer, reason string) float64 {
	return testutil.ToFloat64(s.failures.WithLabelValues(s.name, reason))
}

func TestSyncOnce(t *testing.T) {
	pub, key, s, dir := setup(t)
	ctx := context.Background()
	pub.publish(key, "test-csam.list", listText("test-csam", "2"))
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "test-csam.list"))
	if string(got) != listText("test-csam", "2") || testutil.ToFloat64(s.serial.WithLabelValues("test-csam")) != 2 {
		t.Fatalf("synced %q, serial metric %v", got, testutil.ToFloat64(s.serial.WithLabelValues("test-csam")))
	}
	// Nothing new: a conditional GET, answered 304, and the signature not
	// fetched again.
	sigs := pub.gets["/test-csam.list.minisig"]
	if err := s.Run(ctx); err != nil || pub.gets["/test-csam.list.minisig"] != sigs {
		t.Errorf("an unchanged list: %v, signature fetched %d times (was %d)", err, pub.gets["/test-csam.list.minisig"], sigs)
	}

	// What the resolver would refuse never reaches the directory.
	for _, tc := range []struct {
		name, text, reason string
		sign               func([]byte) []byte
	}{
		{"an older serial", listText("test-csam", "1"), "rollback", key.Sign},
		{"another list", listText("other-list", "3"), "wrong_name", key.Sign},
		{"another key", listText("test-csam", "3"), "bad_signature", blocklisttest.NewKey(t).Sign},
		{"not a list", "#! regblock-list 1\n#! name: test-csam\nbad..example\n", "parse_error", key.Sign},
	} {
		pub.put("test-csam.list", []byte(tc.text))
		pub.put("test-csam.list.minisig", tc.sign([]byte(tc.text)))
		before := failures(s, tc.reason)
		if err := s.Run(ctx); err == nil || failures(s, tc.reason) != before+1 {
			t.Errorf("%s: %v; failures{reason=%q} %v, was %v", tc.name, err, tc.reason, failures(s, tc.reason), before)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "test-csam.list")); string(got) != listText("test-csam", "2") {
			t.Errorf("%s replaced the list in the directory: %q", tc.name, got)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 { // the list, its signature, the validators
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the directory holds %v", names)
	}
}
