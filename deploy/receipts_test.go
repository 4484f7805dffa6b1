package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
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
	body, sig, _ := receipt.Sign(receipt.Receipt{Resolver: "r1", Time: time.Now(), Started: time.Now(), Lists: []receipt.List{{Name: "a", Serial: 1, Applied: time.Now(), Blocked: 3}}}, priv)
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

// TestKubernetesReceipts checks the receipts component: its Corefile is
// base's with the receipts line and nothing else, its overlay mounts the
// key's Secret into regblockd, and regblockd run on that Corefile (its
// paths and ports moved to the test's) sends a receipt that a real
// receiver stores.
func TestKubernetesReceipts(t *testing.T) {
	kubectl := testenv.Need(t, "kubectl", "kubectl")
	base, err := os.ReadFile("kubernetes/base/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	withReceipts, err := os.ReadFile("kubernetes/components/receipts/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	// Drop comments and blank lines: what is left must differ by the
	// receipts line only.
	directives := func(text []byte) []string {
		var out []string
		for _, line := range strings.Split(string(text), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		return out
	}
	got := slices.DeleteFunc(directives(withReceipts), func(line string) bool { return strings.HasPrefix(line, "receipts ") })
	if !slices.Equal(got, directives(base)) || len(got) == len(directives(withReceipts)) {
		t.Fatalf("components/receipts/Corefile is not base's Corefile with a receipts line:\n%s", withReceipts)
	}

	out := string(kustomize(t, kubectl, "kubernetes/receipts"))
	checkManifests(t, []byte(out), true, false)
	for _, want := range []string{"receipts https://", "secretName: regblock-receipts-key", "mountPath: /var/lib/regblock/receipts",
		"value: isp-example.cluster-1.$(POD_NAME)", "fieldPath: metadata.name"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubernetes/receipts has no %q", want)
		}
	}

	// The Corefile, run.
	_, regblockd := binaries(t)
	isp := blocklisttest.NewKey(t)
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "resolver.key")
	secret, err := isp.Private.MarshalText() // unencrypted, as regblock keygen -W writes it
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	regulator := blocklisttest.NewKey(t)
	lists := t.TempDir()
	regulator.WriteList(t, lists, "example-csam.list", fleetList)
	stored := t.TempDir()
	srv, err := receipts.New(receipts.Config{Dir: stored, Keys: []minisign.PublicKey{isp.Public}, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewServer(srv)
	defer receiver.Close()
	dns := testenv.FreePort(t)
	corefile := strings.NewReplacer(
		".:1053", ".:"+dns,
		"{$POD_IP}:8080", "127.0.0.1:"+testenv.FreePort(t),
		"{$POD_IP}:8181", "127.0.0.1:"+testenv.FreePort(t),
		"{$POD_IP}:9153", "127.0.0.1:"+testenv.FreePort(t),
		"/var/lib/regblock/lists", lists,
		"/etc/regblock/regulator.pub", regulator.WritePublic(t, t.TempDir()),
		"/var/lib/regblock/state", t.TempDir(),
		"/var/log/regblock", t.TempDir(),
		"https://receipts.regulator.example/", receiver.URL+"/",
		"/var/lib/regblock/receipts/resolver.key", keyFile,
		"forward . /etc/resolv.conf", "",
	).Replace(string(withReceipts))
	// What resolver.yaml sets for the first pod.
	const id = "isp-example.cluster-1.regblockd-0"
	testenv.RegblockdEnv(t, regblockd, corefile, t.TempDir(), "127.0.0.1:"+dns, "abuse.example.", []string{"RESOLVER_ID=" + id})
	testenv.Eventually(t, 20*time.Second, "the receiver takes a receipt naming the list in force", func() bool {
		scrape := httptest.NewRecorder()
		srv.Metrics().ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
		return strings.Contains(scrape.Body.String(), `regblock_receipts_list_serial{list="example-csam",resolver="`+id+`"}`)
	})
	if files, _ := filepath.Glob(filepath.Join(stored, "*.jsonl")); len(files) != 1 {
		t.Errorf("receipts stored in %v, want one file", files)
	}
}
