//go:build unix

package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// TestServerBlocksShareLists runs regblockd with three server blocks, Do53,
// DNS over TLS and DNS over HTTPS, that name the same lists, and checks
// that they share them: every transport blocks, each version is applied
// (logged, counted, written to the ledger) once, not once a block, and a
// Corefile reload that leaves the lists alone does not read them again,
// while one that changes them does.
func TestServerBlocksShareLists(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, key, pub := signedList(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	metricsPort := testenv.FreePort(t)
	blocks := newServerBlocks(t, 3)
	dnsPort, dotPort, dohPort, pool := blocks.ports[0], blocks.ports[1], blocks.ports[2], blocks.pool
	corefile := func(extra string) string {
		return blocks.corefile(`
    regblock {
        lists ` + dir + `
        pubkey ` + pub + `
        notice 192.0.2.80
        audit ` + audit + `
        ` + extra + `
    }
    prometheus 127.0.0.1:` + metricsPort)
	}
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(corefile("")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	logs := testenv.Process(t, "regblockd", cmd)
	addr := "127.0.0.1:" + dnsPort
	testenv.Eventually(t, 20*time.Second, "regblockd answers on "+addr, func() bool {
		_, err := query(addr, "abuse.example.", dns.TypeA)
		return err == nil
	})

	tlsConfig := &tls.Config{RootCAs: pool}
	transports := map[string]func(m *dns.Msg) (*dns.Msg, error){
		"Do53": func(m *dns.Msg) (*dns.Msg, error) {
			r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
			return r, err
		},
		"DoT": func(m *dns.Msg) (*dns.Msg, error) {
			c := &dns.Client{Net: "tcp-tls", TLSConfig: tlsConfig, Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, "127.0.0.1:"+dotPort)
			return r, err
		},
		"DoH": func(m *dns.Msg) (*dns.Msg, error) {
			wire, _ := m.Pack()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
			resp, err := client.Post("https://127.0.0.1:"+dohPort+"/dns-query", "application/dns-message", bytes.NewReader(wire))
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			r := new(dns.Msg)
			return r, r.Unpack(body)
		},
	}
	blockedEverywhere := func(name string) bool {
		for transport, exchange := range transports {
			r, err := exchange(new(dns.Msg).SetQuestion(name, dns.TypeA))
			if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
				t.Logf("%s over %s: %v %v", name, transport, r, err)
				return false
			}
		}
		return true
	}
	ledgerEvents := func() map[string]int {
		f, err := os.Open(audit)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		events, _, err := ledger.Check(f, audit, "")
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, e := range events {
			count[e.Event+" "+e.List]++
		}
		return count
	}
	applied := func() float64 {
		return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))[`coredns_regblock_reloads_total{list="e2e",result="applied"}`]
	}
	appliedLogs := func() int { return strings.Count(logs.String(), " applied from ") }

	if !blockedEverywhere("abuse.example.") {
		t.Fatal("abuse.example is not blocked over every transport")
	}
	if got := ledgerEvents()["list_applied e2e"]; got != 1 {
		t.Errorf("%d list_applied events for the first version, want 1", got)
	}
	if got := applied(); got != 1 {
		t.Errorf("reloads_total applied = %v for the first version, want 1", got)
	}

	// A new version, renamed into place.
	next := strings.Replace(list, "serial: 3", "serial: 4", 1) + "added.example ORDER-2026-0015 csam\n"
	staged := t.TempDir()
	key.WriteList(t, staged, "e2e.list", next)
	for _, f := range []string{"e2e.list.minisig", "e2e.list"} {
		if err := os.Rename(filepath.Join(staged, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "added.example is blocked over every transport", func() bool {
		return blockedEverywhere("added.example.")
	})
	if got := ledgerEvents()["list_applied e2e"]; got != 2 {
		t.Errorf("%d list_applied events after the second version, want 2", got)
	}
	if got := applied(); got != 2 {
		t.Errorf("reloads_total applied = %v after the second version, want 2", got)
	}
	if got := appliedLogs(); got != 2 {
		t.Errorf("the log reports %d applied versions, want 2:\n%s", got, logs)
	}

	// A Corefile reload that changes nothing the lists depend on keeps them.
	reload := func() { t.Helper(); reloadCorefile(t, cmd, logs, "Reloading complete") }
	reload()
	if !blockedEverywhere("added.example.") {
		t.Error("added.example is not blocked after a Corefile reload")
	}
	if got := ledgerEvents()["list_applied e2e"]; got != 2 {
		t.Errorf("%d list_applied events after a Corefile reload that kept the lists, want still 2", got)
	}

	// One that changes them (a size limit) reads them again, once.
	if err := os.WriteFile(conf, []byte(corefile("max_size 10M")), 0o644); err != nil {
		t.Fatal(err)
	}
	reload()
	if !blockedEverywhere("added.example.") {
		t.Error("added.example is not blocked after a Corefile reload that changed the lists configuration")
	}
	if got := ledgerEvents()["list_applied e2e"]; got != 3 {
		t.Errorf("%d list_applied events after a Corefile reload that changed the lists, want 3", got)
	}
	if got := appliedLogs(); got != 3 {
		t.Errorf("the log reports %d applied versions, want 3:\n%s", got, logs)
	}
}

// TestListGaugesAcrossConfigurations: two server blocks with lists of
// their own (per-client views) each enforce a list named e2e. The list
// gauges, labelled by name alone, show a version in force while either
// enforces it: removing one block's list leaves the other's, and a
// Corefile reload that drops both takes the gauges down.
func TestListGaugesAcrossConfigurations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dirA, key, pub := signedList(t)
	dirB := t.TempDir()
	key.WriteList(t, dirB, "e2e.list", strings.Replace(list, "serial: 3", "serial: 4", 1)+"b.example ORDER-2026-0020 csam\n")
	metricsPort, portA, portB := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	block := func(port, dir string) string {
		return ".:" + port + " {\n  bind 127.0.0.1\n  regblock {\n    lists " + dir + "\n    pubkey " + pub +
			"\n    notice 192.0.2.80\n  }\n  prometheus 127.0.0.1:" + metricsPort + "\n}\n"
	}
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(block(portA, dirA)+block(portB, dirB)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	logs := testenv.Process(t, "regblockd", cmd)
	blocks := func(port, name string) bool {
		r, err := query("127.0.0.1:"+port, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	testenv.Eventually(t, 20*time.Second, "both blocks enforce their e2e", func() bool { return blocks(portA, "abuse.example.") && blocks(portB, "b.example.") })
	// gauges returns the serial gauge of e2e (0 when absent) and its
	// list_info series.
	gauges := func() (serial float64, infos []string) {
		m := metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))
		for series := range m {
			if strings.HasPrefix(series, `coredns_regblock_list_info{list="e2e",`) {
				infos = append(infos, series)
			}
		}
		return m[`coredns_regblock_list_serial{list="e2e"}`], infos
	}
	shaA := fmt.Sprintf("%x", sha256.Sum256([]byte(list)))
	if serial, infos := gauges(); serial != 3 && serial != 4 || len(infos) != 1 {
		t.Errorf("with both in force: serial %v, list_info %q; want 3 or 4, and one series", serial, infos)
	}

	os.Remove(filepath.Join(dirB, "e2e.list"))
	testenv.Eventually(t, 20*time.Second, "block B no longer enforces e2e", func() bool { return !blocks(portB, "b.example.") })
	want := `coredns_regblock_list_info{list="e2e",sha256="` + shaA + `"}`
	testenv.Eventually(t, 10*time.Second, "the gauges show block A's version", func() bool {
		serial, infos := gauges()
		return serial == 3 && len(infos) == 1 && infos[0] == want
	})

	if err := os.WriteFile(conf, []byte(block(portA, t.TempDir())), 0o644); err != nil {
		t.Fatal(err)
	}
	reloadCorefile(t, cmd, logs, "Reloading complete")
	testenv.Eventually(t, 10*time.Second, "the gauges of e2e, in force nowhere now, are gone", func() bool {
		serial, infos := gauges()
		return serial == 0 && len(infos) == 0
	})
}

// TestFailedReloadReleasesLists: a Corefile without regblock is running,
// and a reload to one with regblock fails, in setup (an unknown argument)
// or once its lists are loaded (its port is taken). Either way the failed
// Corefile's lists are let go: nothing reports a list that no server
// answers from, then or after later reloads.
func TestFailedReloadReleasesLists(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, _, pub := signedList(t)
	metricsPort, port, taken := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	plain := ".:" + port + " {\n  bind 127.0.0.1\n  prometheus 127.0.0.1:" + metricsPort + "\n  whoami\n}\n"
	withLists := func(port, extra string) string {
		return ".:" + port + " {\n  bind 127.0.0.1\n  regblock {\n    lists " + dir + "\n    pubkey " + pub + "\n    notice 192.0.2.80\n  }\n  whoami" + extra + "\n}\n"
	}
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	logs := testenv.Process(t, "regblockd", cmd)
	testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool {
		_, err := query("127.0.0.1:"+port, "a.example.", dns.TypeA)
		return err == nil
	})
	reload := func(corefile, outcome string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
			t.Fatal(err)
		}
		reloadCorefile(t, cmd, logs, outcome)
	}
	serial := func() float64 {
		return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))[`coredns_regblock_list_serial{list="e2e"}`]
	}

	// Its port taken: the lists were loaded, then the servers failed.
	ln, err := net.Listen("tcp", "127.0.0.1:"+taken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reload(plain+withLists(taken, ""), "Restart failed")
	testenv.Eventually(t, 10*time.Second, "the failed Corefile's lists are let go", func() bool { return serial() == 0 })

	// Refused in setup, then a good reload to the lists and one away.
	reload(withLists(port, " bogus"), "Restart failed")
	reload(strings.Replace(withLists(port, ""), "  whoami", "  prometheus 127.0.0.1:"+metricsPort+"\n  whoami", 1), "Reloading complete")
	if got := serial(); got != 3 {
		t.Errorf("list_serial %v with the lists in the Corefile, want 3", got)
	}
	reload(plain, "Reloading complete")
	testenv.Eventually(t, 10*time.Second, "the lists are let go with the Corefile that held them", func() bool { return serial() == 0 })
}

// reloadCorefile sends regblockd SIGUSR1 and waits, at most 20 s, until
// its log says outcome once more: "Reloading complete" or "Restart
// failed".
func reloadCorefile(t *testing.T, cmd *exec.Cmd, logs *testenv.Output, outcome string) {
	t.Helper()
	before := strings.Count(logs.String(), outcome)
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the reload logs "+outcome, func() bool { return strings.Count(logs.String(), outcome) > before })
}

// serverBlocks are up to three server blocks on loopback: Do53, DNS over
// TLS and DNS over HTTPS, in that order, each on a port of its own.
type serverBlocks struct {
	schemes   []string
	ports     []string
	cert, key string
	pool      *x509.CertPool
}

func newServerBlocks(t testing.TB, n int) serverBlocks {
	b := serverBlocks{schemes: []string{"dns", "tls", "https"}[:n]}
	b.cert, b.key, b.pool = testenv.SelfSigned(t)
	for range n {
		b.ports = append(b.ports, testenv.FreePort(t))
	}
	return b
}

// corefile returns a Corefile of the server blocks, each holding plugins.
func (b serverBlocks) corefile(plugins string) string {
	var sb strings.Builder
	for i, scheme := range b.schemes {
		fmt.Fprintf(&sb, "%s://.:%s {\n    bind 127.0.0.1\n    tls %s %s\n%s\n}\n", scheme, b.ports[i], b.cert, b.key, plugins)
	}
	return sb.String()
}

// BenchmarkServerBlocksMemory runs regblockd on a signed list of 1 M
// entries with one server block, then with three (Do53, DoT, DoH) naming
// the same lists, and reports the resident memory of each once the list is
// enforced, and their ratio: the three blocks share one index.
func BenchmarkServerBlocksMemory(b *testing.B) {
	const entries = 1_000_000
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("#! regblock-list 1\n#! name: e2e\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\nabuse.example\n")
	for i := range entries - 1 {
		fmt.Fprintf(&sb, "s%07d.host%03d.example ORDER-2026-%05d csam\n", i, i%997, i%20000)
	}
	key := blocklisttest.NewKey(b)
	key.WriteList(b, dir, "e2e.list", sb.String())
	pub := key.WritePublic(b, b.TempDir())

	resident := func(n int) float64 {
		blocks := newServerBlocks(b, n)
		conf := filepath.Join(b.TempDir(), "Corefile")
		os.WriteFile(conf, []byte(blocks.corefile("    regblock {\n        lists "+dir+"\n        pubkey "+pub+"\n        notice 192.0.2.80\n    }")), 0o644)
		cmd := exec.Command(bin, "-conf", conf)
		testenv.Process(b, "regblockd", cmd)
		addr := "127.0.0.1:" + blocks.ports[0]
		testenv.Eventually(b, time.Minute, "regblockd blocks abuse.example", func() bool {
			r, err := query(addr, "abuse.example.", dns.TypeA)
			return err == nil && len(r.Answer) == 1
		})
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			b.Skipf("no /proc: %v", err)
		}
		var kb float64
		for line := range strings.Lines(string(status)) {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				fmt.Sscan(rest, &kb)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		return kb / 1024
	}
	var one, three float64
	for range b.N {
		one, three = resident(1), resident(3)
	}
	b.ReportMetric(one, "MB-1-block")
	b.ReportMetric(three, "MB-3-blocks")
	b.ReportMetric(three/one, "3-blocks/1")
}
