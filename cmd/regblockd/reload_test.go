//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

// TestFailedReloadLeavesNoTrace: CoreDNS's reload plugin picks up a
// Corefile that adds a lists directory to regblock but fails on another
// directive. Nothing of the new lists configuration reaches the ledger,
// the state directory, the metrics or the regulator's receiver, and the
// lists in force stay. A later good Corefile takes the new lists, and the
// old configuration is let go (its receipts stop): the failed reload held
// no reference to it.
func TestFailedReloadLeavesNoTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, key, pub := signedList(t)
	other := t.TempDir()
	key.WriteList(t, other, "other.list", "#! regblock-list 1\n#! name: other\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\nother.example\n")
	state, logDir := t.TempDir(), t.TempDir()
	audit := filepath.Join(logDir, "audit.jsonl")
	secret := filepath.Join(t.TempDir(), "resolver.key")
	text, _ := blocklisttest.NewKey(t).Private.MarshalText()
	os.WriteFile(secret, text, 0o600)

	// The regulator's receiver, as far as this test needs one: which
	// resolver names send receipts, and when last.
	var mu sync.Mutex
	last := map[string]time.Time{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Resolver string }
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &body)
		mu.Lock()
		last[body.Resolver] = time.Now()
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	sent := func(resolver string) time.Time {
		mu.Lock()
		defer mu.Unlock()
		return last[resolver]
	}

	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	corefile := func(lists, id, forward string, extra ...string) {
		os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    reload 2s 1s
    regblock {
        lists `+lists+`
        pubkey `+pub+`
        notice 192.0.2.80
        state `+state+`
        audit `+audit+`
        receipts `+receiver.URL+`/ `+secret+` `+id+`
        receipts_every 1s
    }
    prometheus 127.0.0.1:`+metricsPort+`
    template ANY ANY test { rcode NXDOMAIN }
    `+forward+`
}
`+strings.Join(extra, "\n")), 0o644)
	}
	corefile(dir, "r-old", "")
	logs := testenv.Process(t, "regblockd", exec.Command(bin, "-conf", conf))
	blocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	testenv.Eventually(t, 20*time.Second, "the first list is enforced", func() bool { return blocked("abuse.example.") })
	testenv.Eventually(t, 10*time.Second, "r-old sends receipts", func() bool { return !sent("r-old").IsZero() })

	// A Corefile that adds the other list, and fails on cache's setup
	// (a negative TTL), which runs after regblock's.
	corefile(dir+" "+other, "r-new", "cache -5")
	testenv.Eventually(t, 20*time.Second, "the reload fails", func() bool { return strings.Contains(logs.String(), "reload failed") })
	time.Sleep(2 * time.Second) // what a failed reload might still do would show by now
	if blocked("other.example.") || !blocked("abuse.example.") {
		t.Error("a failed reload changed what is enforced")
	}
	data, _ := os.ReadFile(audit)
	events, _, err := ledger.Check(strings.NewReader(string(data)), audit, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.List == "other" {
			t.Errorf("the failed reload wrote a ledger event: %+v", e)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "other.list")); err == nil {
		t.Error("the failed reload saved a copy of its list in the state directory")
	}
	if m := metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics")); m[`coredns_regblock_list_serial{list="other"}`] != 0 {
		t.Error("the failed reload's list has metrics")
	}
	if !sent("r-new").IsZero() {
		t.Error("the failed reload sent a receipt")
	}

	// A Corefile that fails later, when a server of it cannot listen (its
	// port is in use): regblock's startup has run by then (CoreDNS starts
	// servers after the startup callbacks), but what it loaded is let go
	// when the reload fails: its receipts stop.
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.LocalAddr().String())
	failures := strings.Count(logs.String(), "reload failed")
	corefile(dir+" "+other, "r-busy", "", ".:"+busyPort+" {\n    bind 127.0.0.1\n    whoami\n}")
	testenv.Eventually(t, 20*time.Second, "the reload fails on the busy port", func() bool { return strings.Count(logs.String(), "reload failed") > failures })
	time.Sleep(3 * time.Second) // three receipt intervals
	if last := sent("r-busy"); !last.IsZero() && time.Since(last) < 2*time.Second {
		t.Errorf("the configuration of a reload that failed to listen still sends receipts (%v ago)", time.Since(last).Round(time.Millisecond))
	}
	if !blocked("abuse.example.") {
		t.Error("a reload that failed to listen changed what is enforced")
	}

	// A good Corefile: the other list is enforced, and the old
	// configuration, held by nothing any more, stops sending receipts.
	corefile(dir+" "+other, "r-new", "")
	testenv.Eventually(t, 20*time.Second, "the other list is enforced", func() bool { return blocked("other.example.") })
	testenv.Eventually(t, 10*time.Second, "r-new sends receipts", func() bool { return !sent("r-new").IsZero() })
	time.Sleep(3 * time.Second) // three receipt intervals
	if since := time.Since(sent("r-old")); since < 2*time.Second {
		t.Errorf("the old configuration still sends receipts (%v ago): the failed reload kept a reference to it", since.Round(time.Millisecond))
	}
}

// TestSharedStateRefused: two server blocks with different lists (per-client
// views) naming one state directory are refused at startup: each would take
// the other's lists for deleted and write over its marks.
func TestSharedStateRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, _, pub := signedList(t)
	other, state := t.TempDir(), t.TempDir()
	conf := filepath.Join(t.TempDir(), "Corefile")
	block := func(port, lists string) string {
		return `.:` + port + ` {
    bind 127.0.0.1
    regblock {
        lists ` + lists + `
        pubkey ` + pub + `
        state ` + state + `
    }
}
`
	}
	os.WriteFile(conf, []byte(block(testenv.FreePort(t), dir)+block(testenv.FreePort(t), dir+" "+other)), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-conf", conf).CombinedOutput()
	if ctx.Err() != nil || err == nil || !strings.Contains(string(out), "is also the state directory of another regblock configuration") {
		t.Errorf("two configurations sharing a state directory: %v\n%s", err, out)
	}
}
