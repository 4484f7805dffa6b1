package receipts

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// TestStorage checks what a resolver's file keeps: a receipt that says
// something new at once, one that says nothing new only after an hour, and
// a shrinking ledger always (blocked counts that grow are nothing new, a
// restart is); and that a server started again on the files
// keeps the resolver bound to its key.
func TestStorage(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(nil)
	otherPub, otherPriv, _ := minisign.GenerateKey(nil)
	dir := t.TempDir()
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cfg := Config{Dir: dir, Keys: []minisign.PublicKey{pub, otherPub}, Log: log.New(io.Discard, "", 0), Now: func() time.Time { return clock }}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	post := func(srv *Server, r receipt.Receipt, key minisign.PrivateKey) int {
		body, sig, _ := receipt.Sign(r, key)
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	stored := func() int {
		recs, damaged, err := Load(filepath.Join(dir, "r1.jsonl"))
		if err != nil || damaged != 0 {
			t.Fatal(err)
		}
		return len(recs)
	}
	lists := []receipt.List{{Name: "example-csam", Serial: 1}}
	started := clock
	send := func(minutes, events int) int {
		clock = clock.Add(time.Duration(minutes) * time.Minute)
		lists[0].Blocked += 7 // the resolver blocks all along
		return post(srv, receipt.Receipt{Resolver: "r1", Time: clock, Started: started, Lists: lists, Ledger: receipt.Ledger{Head: "h", Events: uint64(events)}}, priv)
	}
	for _, step := range []struct {
		what            string
		minutes, events int
		status, stored  int
	}{
		{"the first receipt", 0, 1, 204, 1},
		{"the same a minute later", 1, 1, 204, 1},
		{"the same half an hour later", 30, 1, 204, 1},
		{"the same an hour after the first was stored", 30, 1, 204, 2},
		{"a new ledger event", 1, 2, 204, 3},
		{"a shrinking ledger", 1, 1, 204, 4},
		{"the same shrunk ledger again", 1, 1, 204, 4},
		{"a restart", -1, 1, 204, 5},
	} {
		if step.minutes < 0 { // the resolver started again a minute later
			step.minutes, started, lists[0].Blocked = 1, clock.Add(time.Second), 0
		}
		if got := send(step.minutes, step.events); got != step.status || stored() != step.stored {
			t.Fatalf("%s: HTTP %d, %d stored; want %d, %d", step.what, got, stored(), step.status, step.stored)
		}
		if got := testutil.ToFloat64(srv.blocked.WithLabelValues("r1", "example-csam")); got != float64(lists[0].Blocked) {
			t.Fatalf("%s: regblock_receipts_list_blocked %v, want %d", step.what, got, lists[0].Blocked)
		}
	}
	again, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	if got := post(again, receipt.Receipt{Resolver: "r1", Time: clock, Lists: lists}, otherPriv); got != http.StatusForbidden {
		t.Errorf("after a restart, r1 by another key: HTTP %d, want 403", got)
	}
	if got := post(again, receipt.Receipt{Resolver: "r1", Time: clock.Add(-2 * time.Minute), Lists: lists}, priv); got != http.StatusConflict {
		t.Errorf("after a restart, a receipt older than the last stored: HTTP %d, want 409", got)
	}
}

// TestBounds checks what one (stolen) key can make the receiver keep: no
// more resolvers than its bound, and no more stored receipts a resolver
// than a burst and then one every few seconds.
func TestBounds(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(nil)
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	srv, err := New(Config{Dir: t.TempDir(), Keys: []minisign.PublicKey{pub}, Log: log.New(io.Discard, "", 0), Now: func() time.Time { return clock }, PerKey: 3})
	if err != nil {
		t.Fatal(err)
	}
	post := func(r receipt.Receipt) int {
		body, sig, _ := receipt.Sign(r, priv)
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	for i, want := range []int{204, 204, 204, http.StatusForbidden} {
		if got := post(receipt.Receipt{Resolver: fmt.Sprintf("r%d", i), Time: clock}); got != want {
			t.Errorf("resolver %d of one key: HTTP %d, want %d", i+1, got, want)
		}
	}
	// r0 floods receipts that each say something new.
	stored := 0
	for i := range storeBurst + 5 {
		if post(receipt.Receipt{Resolver: "r0", Time: clock.Add(time.Duration(i+1) * time.Millisecond), Ledger: receipt.Ledger{Events: uint64(i + 1)}}) == 204 {
			stored++
		}
	}
	if stored != storeBurst-1 { // its first receipt took a token already
		t.Errorf("%d receipts stored in a burst, want %d", stored, storeBurst-1)
	}
	clock = clock.Add(2 * storeEvery)
	if got := post(receipt.Receipt{Resolver: "r0", Time: clock, Ledger: receipt.Ledger{Events: 99}}); got != 204 {
		t.Errorf("after %v: HTTP %d, want 204", 2*storeEvery, got)
	}
}
