package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestFleet simulates a fleet on loopback: several regblockd instances,
// each watching its own directory, fed by regblock sync from one web
// server. A new signed list is published; every instance must enforce it,
// and their metrics must show one serial across the fleet.
func TestFleet(t *testing.T) {
	const size = 3
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	p := &publisher{files: map[string][]byte{}}
	web := httptest.NewServer(p)
	defer web.Close()
	p.publish(key, exampleList)

	type member struct{ dir, dns, metrics string }
	fleet := make([]member, size)
	syncInto := func(m member) {
		t.Helper()
		if code, _, stderr := regblock(t, "sync", "-once", "-url", web.URL+"/lists/", "-insecure-http", "-name", "example-csam", "-dir", m.dir, "-p", pub); code != 0 {
			t.Errorf("sync into %s: %s", m.dir, stderr)
		}
	}
	for i := range fleet {
		m := member{dir: t.TempDir(), metrics: "127.0.0.1:" + testenv.FreePort(t)}
		syncInto(m)
		m.dns = resolver(t, "regblock {\n lists "+m.dir+"\n pubkey "+pub+"\n notice 192.0.2.80\n}", "prometheus "+m.metrics)
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
		for deadline := start.Add(10 * time.Second); !blocked(m, "added.example.") && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		}
		if !blocked(m, "added.example.") {
			t.Errorf("resolver %d does not enforce the new version 10 s after it was published", i)
		}
	}
	t.Logf("%d resolvers enforce the new version %v after it was published", size, time.Since(start).Round(time.Millisecond))

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
}
