//go:build linux

package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// forLine is a rule's hold time, the one thing TestAlertsFire changes in
// the shipped rule files: a test cannot wait out "for: 10m".
var forLine = regexp.MustCompile(`(?m)^(\s+for: )\S+$`)

// TestAlertsFire runs a small fleet (two resolvers, two notice servers, a
// sync daemon, the receipts receiver) under a real Prometheus server
// loaded with the shipped rule files, their hold times cut to a second and
// nothing else changed. A healthy fleet raises nothing; then each fault
// the newer rules watch is caused, and the alert for it must fire.
func TestAlertsFire(t *testing.T) {
	promBin := testenv.Need(t, "prometheus", "prometheus")
	regblock, regblockd := binaries(t)
	free := func() string { return "127.0.0.1:" + testenv.FreePort(t) }

	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	lists := t.TempDir()
	key.WriteList(t, lists, "example-csam.list", fleetList)
	publisher := httptest.NewServer(http.FileServer(http.Dir(lists)))
	defer publisher.Close()

	// Two resolvers: one with an audit budget of one block event an hour,
	// one whose audit log lives on a disk about to fill up.
	fullDisk := testenv.Tmpfs(t, "1m")
	resolvers := []struct{ dns, metrics, audit string }{
		{free(), free(), filepath.Join(t.TempDir(), "audit.jsonl") + "\n        audit_budget 1"},
		// A budget of more events than the audit file's last page holds,
		// which events lost to the disk must not spend.
		{free(), free(), filepath.Join(fullDisk, "audit.jsonl") + "\n        audit_budget 45"},
	}
	for _, r := range resolvers {
		corefile := fmt.Sprintf(`.:%s {
    bind 127.0.0.1
    regblock {
        lists  %s
        pubkey %s
        notice 192.0.2.80
        state  %s
        audit  %s
    }
    prometheus %s
}
`, strings.TrimPrefix(r.dns, "127.0.0.1:"), lists, pub, t.TempDir(), r.audit, r.metrics)
		testenv.Regblockd(t, regblockd, corefile, t.TempDir(), r.dns, "probe.invalid.")
	}

	// The daemons, each a process the test can end.
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(regblock, args...)
		testenv.Process(t, "regblock "+args[0], cmd)
		return cmd
	}
	notice1, notice2, syncMetrics, receiptsAddr := free(), free(), free(), free()
	notice2Lists := t.TempDir()
	key.WriteList(t, notice2Lists, "example-csam.list", fleetList)
	noticeCmd := start("notice", "-listen", free(), "-metrics", notice1, "-p", pub, lists)
	start("notice", "-listen", free(), "-metrics", notice2, "-p", pub, notice2Lists)
	syncCmd := start("sync", "-url", publisher.URL+"/", "-insecure-http", "-name", "example-csam", "-dir", t.TempDir(),
		"-p", pub, "-every", "1s", "-metrics", syncMetrics)
	receiptsCmd := start("receipts", "-listen", receiptsAddr, "-dir", t.TempDir(), "-p", pub)

	// Prometheus, scraping every second and evaluating every second.
	dir := t.TempDir()
	var rules []string
	for _, file := range []string{"regblock-alerts.yml", "regblock-receipts-alerts.yml"} {
		data, err := os.ReadFile(filepath.Join("prometheus", file))
		if err != nil {
			t.Fatal(err)
		}
		if len(forLine.FindAll(data, -1)) == 0 {
			t.Fatalf("%s: no hold time found to shorten", file)
		}
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, forLine.ReplaceAll(data, []byte("${1}1s")), 0o644); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, path)
	}
	job := func(name string, targets ...string) string {
		return fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", name, strings.Join(targets, ", "))
	}
	config := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" +
		"rule_files: [" + strings.Join(rules, ", ") + "]\nscrape_configs:\n" +
		job("regblock", resolvers[0].metrics, resolvers[1].metrics) +
		job("notice", notice1, notice2) + job("sync", syncMetrics) + job("receipts", receiptsAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := free()
	testenv.Process(t, "prometheus", exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+prom))

	api := func(path string, v any) bool {
		resp, err := http.Get("http://" + prom + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
	}
	type alert struct {
		Labels map[string]string
		State  string
	}
	alerts := func() []alert {
		var body struct{ Data struct{ Alerts []alert } }
		if !api("/api/v1/alerts", &body) {
			t.Fatal("Prometheus does not answer /api/v1/alerts")
		}
		return body.Data.Alerts
	}
	var down []string
	defer func() {
		if t.Failed() {
			t.Logf("targets not up: %v", down)
		}
	}()
	testenv.Eventually(t, 60*time.Second, "Prometheus scrapes all six targets", func() bool {
		var body struct {
			Data struct {
				ActiveTargets []struct{ ScrapeURL, Health, LastError string }
			}
		}
		up := 0
		down = nil
		if api("/api/v1/targets", &body) {
			for _, target := range body.Data.ActiveTargets {
				if target.Health == "up" {
					up++
				} else {
					down = append(down, target.ScrapeURL+": "+target.LastError)
				}
			}
		}
		return up == 6
	})

	// Healthy: a few evaluations after every target is up, nothing pending
	// or firing.
	time.Sleep(5 * time.Second)
	if got := alerts(); len(got) != 0 {
		t.Fatalf("a healthy fleet raises alerts: %+v", got)
	}

	// The faults.
	// A notice server given a list it cannot trust (signed by another key).
	blocklisttest.NewKey(t).WriteList(t, notice2Lists, "other.list",
		strings.Replace(fleetList, "example-csam", "other", 1))
	// Block events beyond the budget on one resolver, on a full disk on
	// the other (more than the audit file's last page still holds).
	defer testenv.Fill(t, fullDisk)()
	for _, r := range resolvers {
		for range 90 {
			if _, err := dns.Exchange(new(dns.Msg).SetQuestion("abuse.example.", dns.TypeA), r.dns); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A notice server, the sync daemon and the receiver stopped.
	for _, cmd := range []*exec.Cmd{noticeCmd, syncCmd, receiptsCmd} {
		cmd.Process.Kill()
	}

	want := []struct{ name, label, value string }{
		{"RegblockNoticeListRefused", "instance", notice2},
		{"RegblockDaemonDown", "instance", notice1},
		{"RegblockDaemonDown", "instance", syncMetrics},
		{"RegblockReceiverDown", "instance", receiptsAddr},
		{"RegblockAuditBudgetSpent", "instance", resolvers[0].metrics},
		{"RegblockAuditDrops", "instance", resolvers[1].metrics},
	}
	firing := func(got []alert, name, label, value string) bool {
		return slices.ContainsFunc(got, func(a alert) bool {
			return a.State == "firing" && a.Labels["alertname"] == name && a.Labels[label] == value
		})
	}
	var got []alert
	var missing []string
	defer func() {
		if t.Failed() {
			t.Logf("not firing: %v\nalerts: %+v", missing, got)
			for _, r := range resolvers {
				if resp, err := http.Get("http://" + r.metrics + "/metrics"); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, line := range strings.Split(string(body), "\n") {
						if strings.HasPrefix(line, "coredns_regblock_audit_") {
							t.Logf("%s: %s", r.metrics, line)
						}
					}
				}
			}
		}
	}()
	testenv.Eventually(t, 60*time.Second, "every alert for the faults fires", func() bool {
		got, missing = alerts(), nil
		for _, w := range want {
			if !firing(got, w.name, w.label, w.value) {
				missing = append(missing, w.name+" "+w.value)
			}
		}
		return len(missing) == 0
	})
	// The budget and a failing disk are told apart.
	if firing(got, "RegblockAuditDrops", "instance", resolvers[0].metrics) || firing(got, "RegblockAuditBudgetSpent", "instance", resolvers[1].metrics) {
		t.Errorf("a spent audit budget and a full disk are not told apart: %+v", got)
	}

	// The refusing notice server is not ready, while its list in force
	// still is.
	resp, err := http.Get("http://" + notice2 + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready of a notice server refusing a list it was given: %d, want 503", resp.StatusCode)
	}
}
