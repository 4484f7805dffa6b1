// Package deploy holds deployment files; its tests check them against the
// real resolver and the real tools.
package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/regblock"
)

// fleetList is a signed list's text that the fleet tests serve.
const fleetList = "#! regblock-list 1\n#! name: example-csam\n#! serial: 2026120401\n" +
	"#! issued: 2026-12-01T00:00:00Z\n#! issuer: Example Communications Commission\n" +
	"abuse.example  ORDER-2026-0012  csam\n"

func init() { dnsserver.Directives = regblock.InsertDirective(dnsserver.Directives) }

func TestAlertRules(t *testing.T) {
	promtool := testenv.Need(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "regblock-alerts.yml"},
		{"test", "rules", "regblock-alerts.test.yml"},
		{"check", "rules", "regblock-receipts-alerts.yml"},
		{"test", "rules", "regblock-receipts-alerts.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// scrapeNames runs regblock in a CoreDNS server with the prometheus plugin,
// blocks one query and passes one, and returns the metric names scraped.
func scrapeNames(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "a.list", "#! regblock-list 1\n#! name: a\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2099-01-01T00:00:00Z\nabuse.example\n")
	// A trust policy, so that its metrics are exported too.
	pubText, _ := key.Public.MarshalText()
	keyLine := strings.TrimSpace(string(pubText[bytes.LastIndexByte(bytes.TrimSpace(pubText), '\n')+1:]))
	policy := key.WriteList(t, t.TempDir(), "regblock.trust",
		"#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2099-01-01T00:00:00Z\nroot 1 "+keyLine+"\nlist * 1 "+keyLine+"\n")
	metrics := "127.0.0.1:" + testenv.FreePort(t)
	i, udp, _, err := test.CoreDNSServerAndPorts(`.:0 {
		bind 127.0.0.1
		regblock {
			lists ` + dir + `
			pubkey ` + key.WritePublic(t, t.TempDir()) + `
			audit ` + dir + `/audit.jsonl
			trust ` + policy + `
			state ` + t.TempDir() + `
		}
		prometheus ` + metrics + `
		template ANY ANY test { rcode NXDOMAIN }
	}`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { i.Stop(); i.ShutdownCallbacks() }()
	for _, name := range []string{"abuse.example.", "pass.test."} {
		if _, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), udp); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(body), -1) {
		names = append(names, m[1])
	}
	return names
}

var metricName = regexp.MustCompile(`coredns_regblock_[a-z_]+`)

// TestMetricsExist checks that every regblock metric the dashboard and the
// alert rules query is one the resolver exports.
func TestMetricsExist(t *testing.T) {
	scraped := scrapeNames(t)
	var dash struct {
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile("grafana/regblock-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	rules, err := os.ReadFile("prometheus/regblock-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{"prometheus/regblock-alerts.yml": string(rules)}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			sources["dashboard panel "+p.Title] += target.Expr + "\n"
		}
	}
	used := map[string]bool{}
	for where, text := range sources {
		for _, name := range metricName.FindAllString(text, -1) {
			used[name] = true
			if !slices.Contains(scraped, name) {
				t.Errorf("%s queries %s, which the resolver does not export", where, name)
			}
		}
	}
	// Every regblock metric is on the dashboard or in an alert.
	for _, name := range scraped {
		if metricName.MatchString(name) && !used[name] {
			t.Errorf("%s is exported but neither the dashboard nor the alerts use it", name)
		}
	}
}
