//go:build unix

package receipts

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// crInLine returns sig with a carriage return in the middle of its
// signature line.
func crInLine(sig []byte) string {
	lines := strings.Split(string(sig), "\n")
	lines[1] = lines[1][:20] + "\r" + lines[1][20:]
	return strings.Join(lines, "\n")
}

// TestRedTeamReceipts: what a red team sent a receiver, each refused or
// harmless: signature headers stock minisign would not take, keys spelled
// otherwise or twice, a list given twice, no time; a refused first receipt
// binds no name; a file that cannot be read, or repaired, keeps its name.
func TestRedTeamReceipts(t *testing.T) {
	h := newHostile(t, Config{ListSeriesPerKey: 10})
	other, otherPriv, _ := minisign.GenerateKey(nil)
	h.cfg.Keys = append(h.cfg.Keys, other)
	h.restart()
	now := h.clock.Format(time.RFC3339)
	body := fmt.Appendf(nil, `{"resolver":"r1","time":%q}`, now)
	good := minisign.Sign(h.priv, body)
	_, throwaway, _ := minisign.GenerateKey(nil)
	for _, c := range []struct {
		what string
		sig  []byte
	}{
		{"another key's signature first", append(minisign.Sign(throwaway, body), good...)},
		{"a blank line first", append([]byte("\n"), good...)},
		// What Go reads and stock minisign does not: a carriage return in a
		// base64 line, a NUL in a comment, a trusted comment past 8 KiB.
		{"a carriage return in the signature line", []byte(crInLine(good))},
		{"a NUL in the untrusted comment", []byte(strings.Replace(string(good), "untrusted comment: ", "untrusted comment: \x00", 1))},
		{"a trusted comment of 9 000 bytes", minisign.SignWithComments(h.priv, body, strings.Repeat("x", 9000), "signature")},
	} {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, base64.StdEncoding.EncodeToString(c.sig))
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", c.what, rec.Code)
		}
	}
	for _, c := range []struct{ what, body string }{
		{"a key spelled otherwise", fmt.Sprintf(`{"resolver":"r2","RESOLVER":"r1","time":%q}`, now)},
		{"a key given twice", fmt.Sprintf(`{"resolver":"r2","resolver":"r1","time":%q}`, now)},
		{"a list given twice", fmt.Sprintf(`{"resolver":"r1","time":%q,"lists":[{"name":"l1","serial":1},{"name":"l1","serial":2}]}`, now)},
		{"no time", `{"resolver":"r1","time":"0001-01-01T00:00:00Z"}`},
		{"a key of no receipt", fmt.Sprintf(`{"resolver":"r1","time":%q,"ledger":{"head":"00","events":1,"extra":{}}}`, now)},
	} {
		if got := h.postBody([]byte(c.body)); got != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", c.what, got)
		}
	}

	// Another key's first receipt for r1, refused (past its list series),
	// leaves r1 free for its own key.
	lists := make([]receipt.List, 11)
	for i := range lists {
		lists[i] = receipt.List{Name: fmt.Sprintf("l%d", i), Serial: 1}
	}
	b, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r1", Time: h.clock, Lists: lists}, otherPriv)
	req := httptest.NewRequest("POST", "/", bytes.NewReader(b))
	req.Header.Set(receipt.SignatureHeader, sig)
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("another key's receipt past its bound: HTTP %d", rec.Code)
	}
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock}); got != http.StatusNoContent {
		t.Errorf("r1 by its own key after another key's refused receipt: HTTP %d, want 204", got)
	}

	// r1's file is torn and cannot be repaired (its copy aside is in the
	// way); r3's is a FIFO; r4's a link: the receiver starts, r1 keeps its
	// key and its next record starts a line; r3 and r4 keep their names.
	f, _ := os.OpenFile(h.file("r1"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"received":"2026`)
	f.Close()
	os.Mkdir(h.file("r1")+DamagedSuffix+h.clock.UTC().Format("20060102T150405.000000000Z"), 0o750)
	if err := syscall.Mkfifo(h.file("r3"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Symlink(h.file("r1"), h.file("r4"))
	h.restart()
	b, sig, _ = receipt.Sign(receipt.Receipt{Resolver: "r1", Time: h.clock.Add(time.Second)}, otherPriv)
	req = httptest.NewRequest("POST", "/", bytes.NewReader(b))
	req.Header.Set(receipt.SignatureHeader, sig)
	rec = httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("r1 by another key after a failed repair: HTTP %d, want 403", rec.Code)
	}
	if got := h.post(receipt.Receipt{Resolver: "r1", Time: h.clock.Add(time.Second), Ledger: receipt.Ledger{Head: "01", Events: 1}}); got != http.StatusNoContent {
		t.Errorf("r1 by its own key after a failed repair: HTTP %d", got)
	}
	if recs, damaged, err := Load(h.file("r1")); err != nil || len(recs) != 2 || damaged != 1 {
		t.Errorf("r1's file: %d records, %d damaged, %v; want 2 records and the torn line apart", len(recs), damaged, err)
	}
	for _, name := range []string{"r3", "r4"} {
		if got := h.post(receipt.Receipt{Resolver: name, Time: h.clock.Add(time.Second)}); got != http.StatusInternalServerError {
			t.Errorf("%s, whose file is not a regular file: HTTP %d, want 500", name, got)
		}
	}
}
