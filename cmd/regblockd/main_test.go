package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

const list = `#! regblock-list 1
#! name: e2e
#! issuer: Example Communications Commission
#! serial: 3
#! issued: 2026-11-28T06:00:00Z
#! appeal: https://complaints.regulator.example/
abuse.example ORDER-2026-0012 csam
`

// bin is the regblockd binary TestMain builds.
var bin string

func TestMain(m *testing.M) { testenv.Main(m, ".", "regblockd", &bin) }

// startRegblockd runs regblockd with corefile in the working directory wd
// until the test ends, and returns once it answers DNS on addr (at most 20 s).
// It probes with abuse.example, which every test Corefile blocks, so that no
// probe depends on an upstream.
func startRegblockd(t *testing.T, corefile, wd, addr string) {
	t.Helper()
	testenv.Regblockd(t, bin, corefile, wd, addr, "abuse.example.")
}

// signedList writes the test list, signed, as e2e.list in a new directory,
// and its key's public half in another, and returns the directory, the key
// and the public key file.
func signedList(t *testing.T) (dir string, key *blocklisttest.Key, pub string) {
	t.Helper()
	dir, key = t.TempDir(), blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	return dir, key, key.WritePublic(t, t.TempDir())
}

func query(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// TestRegblockd builds regblockd, runs it on a loopback port with a Corefile
// that forwards to a test upstream, and checks with a DNS client, and dig
// when it is installed, that a listed name is blocked and others resolve.
func TestRegblockd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}

	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil || !slices.Contains(strings.Fields(string(out)), "regblock") {
		t.Errorf("regblockd -plugins: %v, does not list regblock:\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-version").CombinedOutput(); err != nil || !strings.Contains(string(out), "CoreDNS-") || !strings.HasPrefix(string(out), "regblockd ") || strings.Contains(string(out), ", \n") {
		t.Errorf("regblockd -version: %v\n%s", err, out)
	}

	dir, _, pub := signedList(t)
	up := upstreamtest.Start(t)
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	startRegblockd(t, `.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80 2001:db8::80
    }
    cache
    forward . `+up.Addr+`
}
`, ".", addr)

	r, err := query(addr, "abuse.example.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
		t.Errorf("abuse.example A: %v, want the notice address", r.Answer)
	}
	if e := ede(r); e == nil || e.InfoCode != dns.ExtendedErrorCodeCensored || !strings.Contains(e.ExtraText, "ORDER-2026-0012") {
		t.Errorf("abuse.example: EDE %v, want Censored naming the order", e)
	}
	if r, err := query(addr, "www.abuse.example.", dns.TypeAAAA); err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::80" {
		t.Errorf("www.abuse.example AAAA: %v %v, want the notice address", r, err)
	}
	r, err = query(addr, "unlisted.test.", dns.TypeA)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != upstreamtest.Answer || ede(r) != nil {
		t.Errorf("unlisted.test A: %v %v, want the upstream's answer without EDE", r, err)
	}

	dig := testenv.Need(t, "dig", "dnsutils")
	out, err = exec.Command(dig, "@127.0.0.1", "-p", port, "+tries=1", "+time=2", "AbUsE.example", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	for _, want := range []string{"status: NOERROR", "AbUsE.example.\t\t60\tIN\tA\t192.0.2.80", "EDE: 16 (Censored)", "Example Communications Commission"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("dig output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(dig, "@127.0.0.1", "-p", port, "+tries=1", "+time=2", "+ednsopt=15:0000", "abuse.example", "TXT").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"c":["https://complaints.regulator.example/"]`)) {
		t.Errorf("dig with the structured-error signal: %v, want the draft's JSON:\n%s", err, out)
	}
}

func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

// defaultCorefile returns the repository's Corefile moved to free ports,
// and the ports.
func defaultCorefile(t *testing.T) (conf, dnsPort, metricsPort string) {
	t.Helper()
	corefile, err := os.ReadFile("../../Corefile")
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, metricsPort = testenv.FreePort(t), testenv.FreePort(t)
	conf = strings.Replace(string(corefile), ".:1053", ".:"+dnsPort, 1)
	conf = strings.Replace(conf, "127.0.0.1:9153", "127.0.0.1:"+metricsPort, 1)
	if !strings.Contains(conf, ".:"+dnsPort) || !strings.Contains(conf, "127.0.0.1:"+metricsPort) {
		t.Fatalf("the Corefile no longer serves on .:1053 with metrics on 127.0.0.1:9153; update this test:\n%s", corefile)
	}
	return conf, dnsPort, metricsPort
}

// TestDefaultCorefile runs regblockd as the README says, on the repository's
// Corefile and example list (on free ports instead of 1053 and 9153), and
// checks that the example list is enforced and metrics are served.
func TestDefaultCorefile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	conf, dnsPort, metricsPort := defaultCorefile(t)
	addr := "127.0.0.1:" + dnsPort
	startRegblockd(t, conf, "../..", addr)

	for _, name := range []string{"abuse.example.", "canary.example-csam.regblock.test."} {
		r, err := query(addr, name, dns.TypeA)
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
			t.Errorf("%s: %v %v, want the notice address 127.0.0.1", name, r, err)
			continue
		}
		if e := ede(r); e == nil || !strings.Contains(e.ExtraText, "example-csam serial 2026112801") {
			t.Errorf("%s: EDE %v, want one naming list example-csam serial 2026112801", name, e)
		}
	}

	body := scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics")
	for _, want := range []string{"coredns_dns_requests_total", `coredns_regblock_list_entries{list="example-csam"} 3`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestHotReloadWithMinisign runs regblockd on the repository's Corefile over
// a copy of blocklists/ whose key the stock minisign CLI made, signs a new
// version of the example list with minisign, and checks that the running
// resolver blocks the newly added name without a restart, while a forged
// version changes nothing but a counter.
func TestHotReloadWithMinisign(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	wd := t.TempDir()
	lists := filepath.Join(wd, "blocklists")
	os.Mkdir(lists, 0o755)
	example, err := os.ReadFile("../../blocklists/example.list")
	if err != nil {
		t.Fatal(err)
	}
	listPath := filepath.Join(lists, "example.list")
	secret := filepath.Join(t.TempDir(), "regulator.key")
	minisign := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ms, args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	minisign("-G", "-W", "-p", filepath.Join(lists, "example.pub"), "-s", secret)
	os.WriteFile(listPath, example, 0o644)
	minisign("-S", "-s", secret, "-m", listPath)

	conf, dnsPort, metricsPort := defaultCorefile(t)
	addr := "127.0.0.1:" + dnsPort
	startRegblockd(t, conf, wd, addr)
	isBlocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "127.0.0.1"
	}

	// The regulator adds a name, bumps the serial and signs with minisign.
	next := strings.Replace(string(example), "serial: 2026112801", "serial: 2026112802", 1) + "added.example ORDER-2026-0015 csam\n"
	start := time.Now()
	os.WriteFile(listPath, []byte(next), 0o644)
	minisign("-S", "-s", secret, "-m", listPath)
	for deadline := start.Add(10 * time.Second); !isBlocked("added.example.") && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if !isBlocked("added.example.") {
		t.Fatal("the new version is not enforced 10 s after minisign signed it")
	}
	t.Logf("new name blocked %v after the list was written", time.Since(start).Round(time.Millisecond))

	// A forged version: the list changed after signing. (Writing the list in
	// place before signing it may already have counted one rejection, if a
	// scan fell between the two: count from here.)
	metrics := "http://127.0.0.1:" + metricsPort + "/metrics"
	rejected := `coredns_regblock_reloads_total{list="example-csam",result="bad_signature"}`
	before := metricValues(scrape(t, metrics))[rejected]
	os.WriteFile(listPath, []byte(next+"forged.example\n"), 0o644)
	var after map[string]float64
	testenv.Eventually(t, 10*time.Second, "the forged version is counted as bad_signature", func() bool {
		after = metricValues(scrape(t, metrics))
		return after[rejected] > before
	})
	if after[rejected] != before+1 {
		t.Fatalf("%s went from %v to %v, want one more", rejected, before, after[rejected])
	}
	if isBlocked("forged.example.") || !isBlocked("added.example.") {
		t.Error("the forged version changed what is blocked")
	}
	if got := after[`coredns_regblock_list_serial{list="example-csam"}`]; got != 2026112802 {
		t.Errorf("serial gauge %v, want the good version's 2026112802", got)
	}
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return body
}

// metricValues parses a Prometheus text exposition into series → value.
func metricValues(body []byte) map[string]float64 {
	values := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
		if err == nil {
			values[line[:i]] = v
		}
	}
	return values
}

// TestMetricsAndAudit sends N blocked and M passed queries to a running
// regblockd and checks, by scraping /metrics, that the counters moved by
// exactly N and N+M, that the list gauges are right, and that the audit
// log holds the ledger and one block event per blocked query.
func TestMetricsAndAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", strings.Replace(list, "#! issued:", "#! expires: 2099-01-01T00:00:00Z\n#! issued:", 1))
	pub := key.WritePublic(t, t.TempDir())
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	up := upstreamtest.Start(t)
	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	startRegblockd(t, `.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        audit `+audit+`
    }
    prometheus 127.0.0.1:`+metricsPort+`
    cache
    forward . `+up.Addr+`
}
`, ".", addr)
	metricsURL := "http://127.0.0.1:" + metricsPort + "/metrics"
	server := `server="dns://127.0.0.1:` + port + `"`
	queries := `coredns_regblock_queries_total{` + server + `}`
	blockedA := `coredns_regblock_blocked_total{category="csam",list="e2e",` + server + `,type="A"}`
	blockedHTTPS := `coredns_regblock_blocked_total{category="csam",list="e2e",` + server + `,type="HTTPS"}`

	// A startup probe that timed out on the client may still be counted
	// late: wait until the counters settle before taking the baseline.
	before := metricValues(scrape(t, metricsURL))
	testenv.Eventually(t, 5*time.Second, "the counters settle", func() bool {
		time.Sleep(300 * time.Millisecond)
		again := metricValues(scrape(t, metricsURL))
		settled := again[queries] == before[queries] && again[blockedA] == before[blockedA]
		before = again
		return settled
	})
	const n, m = 7, 5
	for i := range n {
		qtype := dns.TypeA
		if i%2 == 1 {
			qtype = dns.TypeHTTPS
		}
		if _, err := query(addr, fmt.Sprintf("x%d.abuse.example.", i), qtype); err != nil {
			t.Fatal(err)
		}
	}
	for i := range m {
		if _, err := query(addr, fmt.Sprintf("pass%d.test.", i), dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	after := metricValues(scrape(t, metricsURL))
	if got := after[queries] - before[queries]; got != n+m {
		t.Errorf("%s moved by %v, want %d", queries, got, n+m)
	}
	if got := after[blockedA] - before[blockedA] + after[blockedHTTPS] - before[blockedHTTPS]; got != n {
		t.Errorf("blocked_total moved by %v, want %d", got, n)
	}
	if got := after[blockedHTTPS] - before[blockedHTTPS]; got != n/2 {
		t.Errorf("%s moved by %v, want %d", blockedHTTPS, got, n/2)
	}
	issued := float64(time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC).Unix())
	gauges := map[string]float64{
		`coredns_regblock_list_serial{list="e2e"}`:                    3,
		`coredns_regblock_list_entries{list="e2e"}`:                   1,
		`coredns_regblock_list_issued_timestamp_seconds{list="e2e"}`:  issued,
		`coredns_regblock_list_expiry_timestamp_seconds{list="e2e"}`:  float64(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Unix()),
		`coredns_regblock_reloads_total{list="e2e",result="applied"}`: 1,
		`coredns_regblock_audit_dropped_total{reason="queue_full"}`:   0,
	}
	for series, want := range gauges {
		if got, ok := after[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	applied := after[`coredns_regblock_list_applied_timestamp_seconds{list="e2e"}`]
	if now := float64(time.Now().Unix()); applied < now-60 || applied > now+1 {
		t.Errorf("applied timestamp %v, want about now (%v)", applied, now)
	}
	if delay := after[`coredns_regblock_list_enforcement_delay_seconds{list="e2e"}`]; delay < applied-issued-1 || delay > applied-issued+1 {
		t.Errorf("enforcement delay %v, want applied minus issued (%v)", delay, applied-issued)
	}

	// The audit log: the ledger, then one block event per blocked query.
	var events []ledger.Event
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("the audit log holds %d block events", n), func() bool {
		f, err := os.Open(audit)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if events, _, err = ledger.Check(f, audit, ""); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(audit)
		return strings.Count(string(data), `.abuse.example.","qtype"`) == n // the startup probe asks abuse.example itself
	})
	if len(events) != 1 || events[0].Event != ledger.ListApplied || events[0].List != "e2e" {
		t.Errorf("ledger: %+v, want one list_applied of e2e (and %d block events)", events, n)
	}
}

// TestJoinedSignatures signs a list with two keys of the stock minisign
// CLI and joins the two .minisig files with cat (and some garbage): a
// resolver that trusts only the second key enforces the list.
func TestJoinedSignatures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	dir, keys := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "e2e.list")
	os.WriteFile(path, []byte(list), 0o644)
	var joined []byte
	for _, k := range []string{"first", "second"} {
		for _, args := range [][]string{
			{"-G", "-W", "-p", filepath.Join(keys, k+".pub"), "-s", filepath.Join(keys, k+".key")},
			{"-S", "-s", filepath.Join(keys, k+".key"), "-m", path, "-x", filepath.Join(keys, k+".minisig")},
		} {
			if out, err := exec.Command(ms, args...).CombinedOutput(); err != nil {
				t.Fatalf("minisign %v: %v\n%s", args, err, out)
			}
		}
		sig, _ := os.ReadFile(filepath.Join(keys, k+".minisig"))
		joined = append(append(joined, sig...), "garbage between signatures\n"...)
	}
	os.WriteFile(path+".minisig", joined, 0o644)
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	startRegblockd(t, `.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+filepath.Join(keys, "second.pub")+`
        notice 192.0.2.80
    }
}
`, ".", addr)
	if r, err := query(addr, "abuse.example.", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Errorf("a list whose joined .minisig holds the trusted key's signature second: %v %v, want it enforced", r, err)
	}
}

// TestPluginSet checks that the plugins regblockd compiles in are the
// ones the README names: each is registered (regblockd -plugins lists it)
// and has a place in the plugin order, regblock right before cache.
func TestPluginSet(t *testing.T) {
	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{} // -plugins prints one a line
	for _, name := range strings.Fields(string(out)) {
		registered[name] = true
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// "compiled in: acl, any, ... view and whoami (`regblockd -plugins`)"
	m := regexp.MustCompile(`(?s)compiled in: (.*?)\s*\(` + "`regblockd -plugins`").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README no longer lists the plugins compiled in")
	}
	named := strings.Fields(strings.NewReplacer(",", " ", " and ", " ").Replace(string(m[1])))
	if !slices.Equal(slices.Sorted(slices.Values(named)), slices.Sorted(slices.Values(slices.DeleteFunc(compiled(), func(p string) bool { return p == "regblock" })))) {
		t.Errorf("the README names %v; compiled in: %v", named, compiled())
	}
	for _, p := range append(named, "regblock") {
		if !registered[p] || !slices.Contains(dnsserver.Directives, p) {
			t.Errorf("%s: registered %v, in the plugin order %v", p, registered[p], slices.Contains(dnsserver.Directives, p))
		}
		delete(registered, p)
	}
	if len(registered) > 0 {
		t.Errorf("compiled in but not named in the README: %v", registered)
	}
	if i := slices.Index(dnsserver.Directives, "regblock"); i < 0 || dnsserver.Directives[i+1] != "cache" {
		t.Errorf("regblock is not right before cache: %v", dnsserver.Directives)
	}
}

// TestDefaultCorefileLogsNoNames runs the repository's Corefile against an
// upstream that refuses every query: the failures are counted in the log,
// but no query name is written there.
func TestDefaultCorefileLogsNoNames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	conf, dnsPort, _ := defaultCorefile(t)
	dead := "127.0.0.1:" + testenv.FreePort(t) // nothing listens: every forward fails
	if !strings.Contains(conf, "forward . /etc/resolv.conf") {
		t.Fatalf("the Corefile no longer forwards to /etc/resolv.conf; update this test:\n%s", conf)
	}
	conf = strings.Replace(conf, "forward . /etc/resolv.conf", "forward . "+dead, 1)
	addr := "127.0.0.1:" + dnsPort
	logs := testenv.Regblockd(t, bin, conf, "../..", addr, "abuse.example.")
	for i := range 5 {
		r, err := query(addr, fmt.Sprintf("private-name-%d.test.", i), dns.TypeA)
		if err == nil && r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("a query through a dead upstream: %v, want SERVFAIL", r)
		}
	}
	time.Sleep(2 * time.Second) // without consolidation, each failure is logged at once
	if strings.Contains(logs.String(), "private-name") {
		t.Errorf("the log names subscribers' queries:\n%s", logs)
	}
}
