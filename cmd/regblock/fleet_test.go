package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// fleetSize is how many resolvers TestFleet runs as processes: 20, each
// about 25 MB resident, fit this 2-core machine with room to spare.
const fleetSize = 20

// TestFleet simulates a fleet on loopback: 20 regblockd processes of two
// ISPs, each watching its own directory, fed by regblock sync from one web
// server, and sending signed receipts to the regulator's receiver over
// HTTPS. A new signed list is published; every resolver must enforce it,
// its metrics must say so, and the receiver must show every resolver on the
// new serial. Then one resolver's ledger is rewritten whole, with a head to
// match: it still verifies on its own, and verify-ledger -receipts catches it.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 resolvers")
	}
	t.Parallel()
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	web := httptest.NewServer(p)
	defer web.Close()
	p.publish(key, exampleList)

	// The regulator's receiver, and a key for each of two ISPs.
	ispKeys := t.TempDir()
	var secrets [2]string
	for i := range secrets {
		secrets[i] = filepath.Join(t.TempDir(), "isp.key")
		regblock(t, "keygen", "-W", "-p", filepath.Join(ispKeys, fmt.Sprintf("isp%d.pub", i)), "-s", secrets[i])
	}
	cert, certKey, _ := testenv.SelfSigned(t)
	store := t.TempDir()
	base, client := receiver(t, store, cert, certKey, ispKeys)

	type member struct{ name, dir, dns, metrics, audit string }
	fleet := make([]member, fleetSize)
	syncInto := func(m member) {
		t.Helper()
		if code, _, stderr := regblock(t, "sync", "-once", "-url", web.URL+"/lists/", "-insecure-http", "-name", "example-csam", "-dir", m.dir, "-p", pub); code != 0 {
			t.Errorf("sync into %s: %s", m.dir, stderr)
		}
	}
	for i := range fleet {
		m := member{name: fmt.Sprintf("isp%d-r%02d", i%2, i), dir: t.TempDir(), metrics: "127.0.0.1:" + testenv.FreePort(t),
			audit: filepath.Join(t.TempDir(), "audit.jsonl")}
		syncInto(m)
		m.dns = resolverEnv(t, []string{"SSL_CERT_FILE=" + cert}, "regblock {\n lists "+m.dir+"\n pubkey "+pub+"\n notice 192.0.2.80\n audit "+m.audit+
			"\n receipts "+base+"/ "+secrets[i%2]+" "+m.name+"\n}", "prometheus "+m.metrics)
		fleet[i] = m
	}
	blocked := func(m member, name string) bool {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), m.dns)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	for i, m := range fleet {
		if !blocked(m, "abuse.example.") || blocked(m, "added.example.") {
			t.Fatalf("resolver %d does not enforce the first version", i)
		}
	}
	onSerial := func(serial float64) int {
		n := 0
		got := metrics(t, client, base+"/metrics")
		for _, m := range fleet {
			if got[`regblock_receipts_list_serial{list="example-csam",resolver="`+m.name+`"}`] == serial {
				n++
			}
		}
		return n
	}
	testenv.Eventually(t, 30*time.Second, "the receiver has every resolver's first receipt", func() bool { return onSerial(2026112801) == fleetSize })
	got := metrics(t, client, base+"/metrics")
	for i, m := range fleet {
		if series := fmt.Sprintf(`regblock_receipts_resolver_info{key="isp%d",resolver="%s"}`, i%2, m.name); got[series] != 1 {
			t.Errorf("the receiver does not name %s's ISP: %s missing", m.name, series)
		}
	}

	// The regulator publishes a new version; each resolver's sync runs, as
	// its timer or sidecar would.
	p.publish(key, strings.Replace(exampleList, "2026112801", "2026112802", 1)+"added.example ORDER-2026-0015 csam\n")
	start := time.Now()
	var wg sync.WaitGroup
	for _, m := range fleet {
		wg.Add(1)
		go func() { defer wg.Done(); syncInto(m) }()
	}
	wg.Wait()
	for i, m := range fleet {
		testenv.Eventually(t, 30*time.Second, fmt.Sprintf("resolver %d enforces the new version", i), func() bool { return blocked(m, "added.example.") })
	}
	enforced := time.Since(start)
	testenv.Eventually(t, 30*time.Second, "the receiver shows every resolver on serial 2026112802", func() bool { return onSerial(2026112802) == fleetSize })
	t.Logf("%d resolvers enforce the new version %v after it was published; the receiver has all their receipts after %v",
		fleetSize, enforced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The gauges follow the index swap at once; poll a little all the same.
	for i, m := range fleet {
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("resolver %d reports serial 2026112802", i), func() bool {
			resp, err := http.Get("http://" + m.metrics + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.Contains(string(body), `coredns_regblock_list_serial{list="example-csam"} 2.026112802e+09`)
		})
	}

	// Every true ledger matches its receipts (and only its own: the
	// resolver is found from them); one rewritten whole does not.
	for _, m := range fleet[:3] {
		if code, stdout, stderr := regblock(t, "verify-ledger", "-receipts", store, "-resolver", m.name, m.audit); code != 0 || !strings.Contains(stdout, "receipts of resolver "+m.name+":") {
			t.Errorf("%s's ledger against the receipts: exit %d\n%s%s", m.name, code, stdout, stderr)
		}
	}
	victim := fleet[7]
	var applied []ledger.Event
	for _, e := range readLedger(t, victim.audit) {
		if e.Event == ledger.ListApplied {
			applied = append(applied, e)
		}
	}
	applied[1].Time = applied[1].Time.Add(-time.Hour) // the ISP would like the order enforced earlier
	rewritten := filepath.Join(t.TempDir(), "audit.jsonl")
	head := writeLedger(t, rewritten, "", applied)
	os.WriteFile(rewritten+".head", []byte(fmt.Sprintf("%s %d\n", head, len(applied))), 0o640)
	if code, _, stderr := regblock(t, "verify-ledger", rewritten); code != 0 {
		t.Fatalf("the rewritten ledger verifies on its own: exit %d, %s", code, stderr)
	}
	if code, stdout, _ := regblock(t, "verify-ledger", "-receipts", store, "-resolver", victim.name, rewritten); code != 1 || !strings.Contains(stdout, "edited or rewritten") {
		t.Errorf("the rewritten ledger of %s against its receipts: exit %d\n%s", victim.name, code, stdout)
	}
}

// readLedger returns the ledger events of an audit log.
func readLedger(t *testing.T, path string) []ledger.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, _, err := ledger.Check(f, path, "")
	if err != nil {
		t.Fatal(err)
	}
	return events
}
