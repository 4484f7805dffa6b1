package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

var receiptMetric = regexp.MustCompile(`regblock_receipts_[a-z_]+`)

// TestReceiptsDashboardAndRules checks that every metric the regulator's
// dashboard and alert rules query is one the receiver exports, once it has
// taken a receipt, and that every receiver metric is used.
func TestReceiptsDashboardAndRules(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(nil)
	srv, err := receipts.New(receipts.Config{Dir: t.TempDir(), Keys: []minisign.PublicKey{pub}, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	body, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r1", Time: time.Now(), Lists: []receipt.List{{Name: "a", Serial: 1, Applied: time.Now()}}}, priv)
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.Header.Set(receipt.SignatureHeader, sig)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("receipt: %d %s", rec.Code, rec.Body)
	}
	scrape := httptest.NewRecorder()
	srv.Metrics().ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	exported := map[string]bool{}
	for _, name := range receiptMetric.FindAllString(scrape.Body.String(), -1) {
		exported[name] = true
	}

	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	data, err := os.ReadFile("grafana/regblock-receipts-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the receipts dashboard is not valid JSON: %v", err)
	}
	rules, err := os.ReadFile("prometheus/regblock-receipts-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(rules)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			text += target.Expr + "\n"
		}
	}
	used := receiptMetric.FindAllString(text, -1)
	for _, name := range used {
		if !exported[name] {
			t.Errorf("the receipts dashboard or rules query %s, which the receiver does not export", name)
		}
	}
	for name := range exported {
		if !slices.Contains(used, name) && !strings.HasSuffix(name, "_created") {
			t.Errorf("%s is exported but neither on the receipts dashboard nor in its rules", name)
		}
	}
}
