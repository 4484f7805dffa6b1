package receipts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// hostile is a server with one key, a clock the test moves, and a way to
// post any body signed by that key.
type hostile struct {
	t     *testing.T
	dir   string
	pub   minisign.PublicKey
	priv  minisign.PrivateKey
	clock time.Time
	cfg   Config
	srv   *Server
}

func newHostile(t *testing.T, cfg Config) *hostile {
	h := &hostile{t: t, dir: t.TempDir(), clock: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	h.pub, h.priv, _ = minisign.GenerateKey(nil)
	cfg.Dir, cfg.Keys, cfg.Log, cfg.Now = h.dir, []minisign.PublicKey{h.pub}, log.New(io.Discard, "", 0), func() time.Time { return h.clock }
	h.cfg = cfg
	h.restart()
	return h
}

func (h *hostile) restart() {
	h.t.Helper()
	srv, err := New(h.cfg)
	if err != nil {
		h.t.Fatalf("the receiver does not start: %v", err)
	}
	h.srv = srv
}

// postBody posts body exactly as given, signed.
func (h *hostile) postBody(body []byte) int {
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.Header.Set(receipt.SignatureHeader, base64.StdEncoding.EncodeToString(minisign.Sign(h.priv, body)))
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec.Code
}

func (h *hostile) post(r receipt.Receipt) int {
	body, _, _ := receipt.Sign(r, h.priv)
	return h.postBody(body)
}

func (h *hostile) file(resolver string) string { return filepath.Join(h.dir, resolver+".jsonl") }

// TestExactBytes: what the receiver keeps is the body as signed, whatever
// its spacing or characters JSON would escape, so that the signature stored
// beside it verifies.
func TestExactBytes(t *testing.T) {
	h := newHostile(t, Config{})
	body := []byte(`{ "resolver": "r1",  "time": "2026-12-01T10:00:00Z", "lists": [{"name": "example-csam", "serial": 1, "sha256": "<script>&amp;"}],` + "\n" + `"ledger": {"head": "<&>", "events": 1} }`)
	if got := h.postBody(body); got != http.StatusNoContent {
		t.Fatalf("HTTP %d", got)
	}
	recs, damaged, err := Load(h.file("r1"))
	if err != nil || damaged != 0 || len(recs) != 1 {
		t.Fatalf("%d records, %d damaged, %v", len(recs), damaged, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(recs[0].Signature)
	if !bytes.Equal(recs[0].Bytes(), body) || !minisign.Verify(h.pub, recs[0].Bytes(), sig) {
		t.Errorf("stored %q, want %q verifying", recs[0].Bytes(), body)
	}
}

// TestFutureReceipt: a receipt dated more than MaxAhead after the
// receiver's clock is refused, so that it cannot make every later receipt
// a replay; one stored before this rule does not either.
func TestFutureReceipt(t *testing.T) {
	h := newHostile(t, Config{})
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock.AddDate(10, 0, 0)}); got != http.StatusBadRequest {
		t.Errorf("a receipt dated 10 years ahead: HTTP %d, want 400", got)
	}
	if got := testutil.ToFloat64(h.srv.total.WithLabelValues(unknown, Future)); got != 1 {
		t.Errorf("future receipts counted %v", got)
	}
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock.Add(MaxAhead - time.Second)}); got != http.StatusNoContent {
		t.Errorf("a receipt within the clock skew allowed: HTTP %d", got)
	}

	// A far-future receipt stored by an earlier receiver.
	body, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r2", Time: h.clock.AddDate(10, 0, 0)}, h.priv)
	line, _ := json.Marshal(Record{Received: h.clock, Key: fmt.Sprintf("%016X", h.pub.ID()), Result: Accepted, Body: body, Signature: sig})
	os.WriteFile(h.file("r2"), append(line, '\n'), 0o640)
	h.restart()
	h.clock = h.clock.Add(time.Minute)
	if got := h.post(receipt.Receipt{Resolver: "r2", Time: h.clock}); got != http.StatusNoContent {
		t.Errorf("after a stored far-future receipt: HTTP %d, want 204", got)
	}
}

// TestRestoreDamaged: the receiver starts whatever a resolver's file holds
// (a torn last line, a line of megabytes, garbage, a record of no receipt),
// counts the damaged lines, keeps the file as it was beside it, restores
// the resolver from its last good record, and appends the next receipt on
// a line of its own.
func TestRestoreDamaged(t *testing.T) {
	h := newHostile(t, Config{})
	for i := range 3 {
		h.clock = h.clock.Add(time.Minute)
		if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock, Ledger: receipt.Ledger{Head: "h", Events: uint64(i + 1)}}); got != http.StatusNoContent {
			t.Fatalf("HTTP %d", got)
		}
	}
	good, _ := os.ReadFile(h.file("r1"))
	lines := strings.SplitAfter(string(good), "\n")
	damaged := lines[0] + "not json\n" + strings.Repeat("<", 3<<20) + "\n" + lines[1] + "null\n" + lines[2] + `{"received":"2026-12-01T10:00:00Z","body":"e30=`
	os.WriteFile(h.file("r1"), []byte(damaged), 0o640)
	h.restart()

	if got := testutil.ToFloat64(h.srv.damaged); got != 4 {
		t.Errorf("%v damaged lines counted, want 4", got)
	}
	if got, _ := os.ReadFile(h.file("r1")); string(got) != string(good) {
		t.Errorf("the repaired file is not the good lines, byte for byte:\n%.300s", got)
	}
	aside, _ := filepath.Glob(h.file("r1") + DamagedSuffix + "*")
	if len(aside) != 1 {
		t.Fatalf("files set aside: %v", aside)
	}
	if got, _ := os.ReadFile(aside[0]); string(got) != damaged {
		t.Error("the file set aside is not the file as it was")
	}
	if got := testutil.ToFloat64(h.srv.events.WithLabelValues("r1")); got != 3 {
		t.Errorf("restored ledger events %v, want 3 (the last good record)", got)
	}
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock, Ledger: receipt.Ledger{Head: "h", Events: 3}}); got != http.StatusConflict {
		t.Errorf("a replay of the last good record after the restart: HTTP %d, want 409", got)
	}
	h.clock = h.clock.Add(time.Minute)
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock, Ledger: receipt.Ledger{Head: "h", Events: 4}}); got != http.StatusNoContent {
		t.Fatalf("HTTP %d", got)
	}
	recs, bad, err := Load(h.file("r1"))
	if err != nil || bad != 0 || len(recs) != 4 {
		t.Errorf("after the next receipt: %d records, %d damaged, %v", len(recs), bad, err)
	}
	// A second start finds nothing to set aside.
	h.restart()
	if aside, _ := filepath.Glob(h.file("r1") + DamagedSuffix + "*"); len(aside) != 1 || testutil.ToFloat64(h.srv.damaged) != 0 {
		t.Errorf("a clean file was set aside again: %v", aside)
	}
}

// TestAppendAfterFailedWrite: a write cut short is cut off, so the next
// record starts on a line of its own.
func TestAppendAfterFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r1.jsonl")
	os.WriteFile(path, []byte("{\"a\":1}\n"), 0o640)
	if err := appendLine(path, []byte(`{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("%q", got)
	}
}

// TestHostileKeyBounds: one key at its bounds. Lists per receipt are
// bounded by what a resolver holds, list series and bytes on disk by the
// key's and resolver's bounds, each counted by bound when hit.
func TestHostileKeyBounds(t *testing.T) {
	h := newHostile(t, Config{PerKey: 50, ListSeriesPerKey: 600, BytesPerResolver: 64 << 10, BytesPerKey: 256 << 10})
	lists := func(n int) []receipt.List {
		l := make([]receipt.List, n)
		for i := range l {
			l[i] = receipt.List{Name: fmt.Sprintf("list-%03d", i), Serial: 1, SHA256: strings.Repeat("ab", 32)}
		}
		return l
	}
	if got := h.post(receipt.Receipt{Resolver: "r0", Time: h.clock, Lists: lists(receipt.MaxLists + 1)}); got != http.StatusBadRequest {
		t.Errorf("a receipt with more lists than a resolver holds: HTTP %d, want 400", got)
	}
	// Resolvers of 250 lists each: the third would pass 600 list series.
	for i, want := range []int{204, 204, 403} {
		if got := h.post(receipt.Receipt{Resolver: fmt.Sprintf("r%d", i), Time: h.clock, Lists: lists(250)}); got != want {
			t.Errorf("resolver %d with 250 lists: HTTP %d, want %d", i, got, want)
		}
	}
	// Each resolver may hold 64 KiB; the key 256 KiB.
	var written int64
	for i := range 500 {
		h.clock = h.clock.Add(storeEvery)
		resolver := "r0" // first one resolver to its bound, then many to the key's
		if i >= 100 {
			resolver = fmt.Sprintf("r%d", 1+i%40)
		}
		if h.post(receipt.Receipt{Resolver: resolver, Time: h.clock, Ledger: receipt.Ledger{Head: strings.Repeat("f", 64), Events: uint64(i)}}) == http.StatusNoContent {
			written++
		}
	}
	var total int64
	files, _ := storeFiles(h.dir)
	for _, f := range files {
		fi, _ := os.Stat(f)
		if fi.Size() > h.cfg.BytesPerResolver {
			t.Errorf("%s holds %d bytes, more than its bound", f, fi.Size())
		}
		total += fi.Size()
	}
	if total > h.cfg.BytesPerKey || written == 0 {
		t.Errorf("the key's files hold %d bytes (%d receipts stored), bound %d", total, written, h.cfg.BytesPerKey)
	}
	for _, bound := range []string{boundListSeriesPerKey, boundResolverBytes, boundKeyBytes} {
		if testutil.ToFloat64(h.srv.bounds.WithLabelValues(bound)) == 0 {
			t.Errorf("bound %s never counted", bound)
		}
	}
	// A restart finds the same bytes on disk, and keeps to the bounds.
	h.restart()
	h.clock = h.clock.Add(time.Hour)
	if got := h.post(receipt.Receipt{Resolver: "r45", Time: h.clock}); got != http.StatusInsufficientStorage {
		t.Errorf("after a restart, a new resolver of a key at its bytes: HTTP %d, want 507", got)
	}
}

// FuzzRestore: whatever a resolver's file holds, the receiver starts,
// and the next receipt of a resolver is stored on a line of its own.
func FuzzRestore(f *testing.F) {
	pub, priv, _ := minisign.GenerateKey(nil)
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	body, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r1", Time: clock}, priv)
	good, _ := json.Marshal(Record{Received: clock, Key: fmt.Sprintf("%016X", pub.ID()), Result: Accepted, Body: body, Signature: sig})
	f.Add(append(good, '\n'))
	f.Add(good)
	f.Add([]byte("{\"receipt\":{\"resolver\":\"r1\"},\"key\":\"zz\"}\n\n\n"))
	f.Add(append(append(good, "\n{\"body\":\"e30="...), good...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "r1.jsonl"), data, 0o640)
		now := clock.Add(time.Hour)
		srv, err := New(Config{Dir: dir, Keys: []minisign.PublicKey{pub}, Log: log.New(io.Discard, "", 0), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("does not start on %q: %v", data, err)
		}
		body, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r1", Time: now, Ledger: receipt.Ledger{Events: 1}}, priv)
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent && rec.Code != http.StatusConflict && rec.Code != http.StatusForbidden {
			t.Fatalf("HTTP %d after starting on %q", rec.Code, data)
		}
		if _, damaged, err := Load(filepath.Join(dir, "r1.jsonl")); err != nil || damaged != 0 {
			t.Fatalf("after starting on %q: %d damaged lines, %v", data, damaged, err)
		}
	})
}

// TestConcurrentResolvers: many new resolvers of one key at once, past its
// bound (run with -race): exactly the bound are taken.
func TestConcurrentResolvers(t *testing.T) {
	h := newHostile(t, Config{PerKey: 5})
	var wg sync.WaitGroup
	var taken atomic.Int32
	for i := range 40 {
		wg.Go(func() {
			if h.post(receipt.Receipt{Resolver: fmt.Sprintf("r%d", i), Time: h.clock}) == http.StatusNoContent {
				taken.Add(1)
			}
		})
	}
	wg.Wait()
	if taken.Load() != 5 {
		t.Errorf("%d resolvers taken, want 5", taken.Load())
	}
}

// TestReadRecordFastPath: a line as the receiver writes it reads the same
// through the fast path as through encoding/json, and a line written
// otherwise (escapes, another order, a field more, an old record) is read
// by encoding/json, or refused as it refuses it.
func TestReadRecordFastPath(t *testing.T) {
	when := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	rec := Record{Received: when, Key: "00000000000000AA", Result: Accepted, Body: []byte(`{"resolver":"r1"}`), Signature: "c2ln"}
	line, _ := json.Marshal(rec)
	line = append(line, '\n')
	got, ok := readWritten(line)
	if !ok || !got.Received.Equal(when) || got.Key != rec.Key || got.Result != rec.Result || string(got.Body) != string(rec.Body) || got.Signature != rec.Signature {
		t.Fatalf("fast path: %+v, %v", got, ok)
	}
	for _, c := range []struct {
		what string
		line string
		ok   bool
	}{
		{"an escape in a string", strings.Replace(string(line), `"result":"accepted"`, `"result":"acc\u0065pted"`, 1), true},
		{"another order", `{"key":"00","received":"2026-12-01T10:00:00Z","result":"accepted","body":"e30=","signature":"c2ln"}` + "\n", true},
		{"a field more", strings.Replace(string(line), `}`, `,"x":1}`, 1), true},
		{"an old record", `{"received":"2026-12-01T10:00:00Z","key":"00","result":"accepted","receipt":{"resolver":"r1"}}` + "\n", true},
		{"a body that is not base64", strings.Replace(string(line), `"body":"`, `"body":"%`, 1), false},
		{"a control byte in the key", strings.Replace(string(line), `"key":"00`, "\"key\":\"\x01", 1), false},
		{"a carriage return in the body", strings.Replace(string(line), `"body":"`, "\"body\":\"\r", 1), false},
		{"no body", `{"received":"2026-12-01T10:00:00Z","key":"00","result":"accepted","signature":"c2ln"}` + "\n", false},
	} {
		var want Record
		wantOK := json.Unmarshal([]byte(c.line), &want) == nil && want.Bytes() != nil
		got, ok := readRecord([]byte(c.line))
		if ok != c.ok || ok != wantOK || ok && (!got.Received.Equal(want.Received) || got.Result != want.Result || string(got.Bytes()) != string(want.Bytes())) {
			t.Errorf("%s: %+v, %v; encoding/json: %+v, %v", c.what, got, ok, want, wantOK)
		}
		if _, fast := readWritten([]byte(c.line)); fast {
			t.Errorf("%s: took the fast path", c.what)
		}
	}
}
