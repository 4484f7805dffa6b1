package regblock

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// TestReceiptSenderFollowsNoRedirect: a receiver that answers with a
// redirect gets no receipt sent on to where it points (another host, plain
// http): the send fails and is counted, and the resolver tries again.
func TestReceiptSenderFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer other.Close()
	var asked atomic.Int32
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Redirect(w, r, other.URL+"/", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()

	_, key, _ := minisign.GenerateKey(nil)
	failed := testutil.ToFloat64(receiptsSent.WithLabelValues("failed"))
	s := startReceipts(receiptsConfig{url: redirecting.URL + "/", key: key, id: "r1", every: time.Hour}, func() receipt.Receipt { return receipt.Receipt{} })
	deadline := time.Now().Add(10 * time.Second)
	for asked.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.stop() // after the send under way, counted
	if asked.Load() == 0 || testutil.ToFloat64(receiptsSent.WithLabelValues("failed")) <= failed {
		t.Fatalf("the redirecting receiver was asked %d times, failures counted %v (before %v)", asked.Load(), testutil.ToFloat64(receiptsSent.WithLabelValues("failed")), failed)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed: the other server got %d receipts", n)
	}
}
