//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// TestLedgerSurvivesFullDisk fills the audit log's disk (a file size limit
// set on the running regblockd with prlimit) with blocked queries, then
// publishes a new version of the list: the version is enforced, its ledger
// event is held (the metric says so, /ready answers 503), block events give
// way, and once there is room again the event is written, the file is whole
// lines, the chain verifies and the resolver is ready.
func TestLedgerSurvivesFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	prlimit := testenv.Need(t, "prlimit", "util-linux")
	dir, key, pub := signedList(t)
	logs := t.TempDir()
	audit := filepath.Join(logs, "audit.jsonl")
	port, metricsPort, readyPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        audit `+audit+`
    }
    ready 127.0.0.1:`+readyPort+` {
        monitor continuously
    }
    prometheus 127.0.0.1:`+metricsPort+`
}
`), 0o644)
	cmd := exec.Command(bin, "-conf", conf)
	testenv.Process(t, "regblockd", cmd)
	ready := func() bool {
		resp, err := http.Get("http://127.0.0.1:" + readyPort + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// Its DNS port first: a ready port taken meanwhile by another process
	// of a concurrent test would answer for it.
	testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool {
		_, err := query(addr, "probe.test.", dns.TypeA)
		return err == nil
	})
	testenv.Eventually(t, 20*time.Second, "regblockd is ready", ready)
	metric := func(name string) float64 {
		return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))[name]
	}
	limit := func(value string) {
		t.Helper()
		if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(cmd.Process.Pid), "--fsize="+value+":").CombinedOutput(); err != nil {
			t.Fatalf("prlimit: %v\n%s", err, out)
		}
	}

	// The disk fills up: room for a few block events, then none.
	fi, err := os.Stat(audit)
	if err != nil {
		t.Fatal(err)
	}
	limit(strconv.FormatInt(fi.Size()+1000, 10))
	for i := range 40 {
		if _, err := query(addr, fmt.Sprintf("x%d.abuse.example.", i), dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "block events are dropped", func() bool { return metric(`coredns_regblock_audit_dropped_total{reason="write_error"}`) > 0 })

	// A new version is enforced at once; its ledger event waits for room.
	key.WriteList(t, dir, "e2e.list", strings.Replace(list, "serial: 3", "serial: 4", 1)+"fresh.example\n")
	testenv.Eventually(t, 20*time.Second, "serial 4 is enforced", func() bool {
		r, err := query(addr, "fresh.example.", dns.TypeA)
		return err == nil && len(r.Answer) == 1
	})
	testenv.Eventually(t, 10*time.Second, "the ledger event is held", func() bool { return metric("coredns_regblock_audit_ledger_held") == 1 })
	if ready() {
		t.Error("/ready says ready while a ledger event is held")
	}
	if metric("coredns_regblock_audit_write_errors_total") == 0 {
		t.Error("no write error counted")
	}

	// Room again: the held event is written within a retry or two.
	limit("unlimited")
	testenv.Eventually(t, 20*time.Second, "the held ledger event is written and regblockd is ready again", func() bool {
		return metric("coredns_regblock_audit_ledger_held") == 0 && ready()
	})
	data, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("%s:%d is not a whole line: %q", audit, i+1, line)
		}
	}
	events, head, err := ledger.Check(bytes.NewReader(data), audit, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(events); n != 2 || events[1].Event != ledger.ListApplied || *events[1].Serial != 4 {
		t.Fatalf("ledger %+v, want serial 3 then 4 applied", events)
	}
	if got, _ := os.ReadFile(audit + ".head"); strings.TrimSpace(string(got)) != head+" 2" {
		t.Errorf("%s.head = %q, want %q", audit, got, head+" 2")
	}
}

// TestLedgerHeadOnFullDisk: the audit log on a small tmpfs that fills up
// when a ledger line still fits in the file's last page but FILE.head can
// no longer be written. The resolver is not ready and says so until the
// head is written, which it retries; and a restart that finds the head
// behind the file (a crash between a line and its head) goes on from the
// last line on disk, keeping the chain whole and the event count right.
func TestLedgerHeadOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	logs := testenv.Tmpfs(t, "1m")
	dir, key, pub := signedList(t)
	audit := filepath.Join(logs, "audit.jsonl")
	r := newDiskResolver(t, dir, pub, "audit "+audit)
	addr, ready, metric := r.addr, r.ready, r.metric
	start := func() {
		r.start()
		testenv.Eventually(t, 20*time.Second, "regblockd is ready", ready)
	}
	publish := func(serial int) {
		t.Helper()
		key.WriteList(t, dir, "e2e.list", strings.Replace(list, "serial: 3", fmt.Sprintf("serial: %d", serial), 1)+fmt.Sprintf("s%d.example\n", serial))
		testenv.Eventually(t, 20*time.Second, fmt.Sprintf("serial %d is enforced", serial), func() bool {
			r, err := query(addr, fmt.Sprintf("s%d.example.", serial), dns.TypeA)
			return err == nil && len(r.Answer) == 1
		})
	}
	chain := func() (events []ledger.Event, head, onDisk string) {
		t.Helper()
		data, _ := os.ReadFile(audit)
		events, head, err := ledger.Check(bytes.NewReader(data), audit, "")
		if err != nil {
			t.Fatalf("the chain: %v", err)
		}
		got, _ := os.ReadFile(audit + ".head")
		return events, head, strings.TrimSpace(string(got))
	}
	start()

	// Block events until the file's last page has room for a ledger line,
	// then fill the disk: the line fits, a new .head does not.
	size := func() int64 {
		fi, err := os.Stat(audit)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i := 0; size()%4096 == 0 || size()%4096 > 2500; i++ {
		if i == 200 {
			t.Fatalf("the audit log never left room in its last page: %d bytes", size())
		}
		before := size()
		query(addr, fmt.Sprintf("x%d.abuse.example.", i), dns.TypeA)
		testenv.Eventually(t, 5*time.Second, "the block event is written", func() bool { return size() > before })
	}
	free := testenv.Fill(t, logs)
	_, _, headBefore := chain()

	publish(4)
	testenv.Eventually(t, 10*time.Second, "the head is held", func() bool { return metric("coredns_regblock_audit_ledger_held") == 1 })
	if ready() {
		t.Error("/ready says ready while FILE.head is not written")
	}
	if events, _, onDisk := chain(); len(events) != 2 || onDisk != headBefore {
		t.Fatalf("on a full disk: %d ledger events on disk, head %q; want the line written (2) and the head as before (%q)", len(events), onDisk, headBefore)
	}

	// Room again: the head is written within a retry or two.
	free()
	testenv.Eventually(t, 20*time.Second, "the head is written and regblockd is ready again", func() bool {
		return metric("coredns_regblock_audit_ledger_held") == 0 && ready()
	})
	if events, head, onDisk := chain(); onDisk != head+" "+strconv.Itoa(len(events)) {
		t.Errorf("%s.head = %q, want %q", audit, onDisk, head+" "+strconv.Itoa(len(events)))
	}

	// A crash between a ledger line and its head: the head on disk is the
	// one before. The next start goes on from the last line.
	r.kill()
	os.WriteFile(audit+".head", []byte(headBefore+"\n"), 0o640)
	start() // applies serial 4 again: a ledger event of its own
	publish(5)
	testenv.Eventually(t, 10*time.Second, "serial 5's ledger event is on disk", func() bool {
		// The chain is whole, or chain fails the test. (A scan between the
		// list and its signature landing may add a list_rejected event.)
		events, _, _ := chain()
		last := events[len(events)-1]
		return len(events) >= 4 && last.Event == ledger.ListApplied && *last.Serial == 5
	})
	testenv.Eventually(t, 10*time.Second, "the head is written", func() bool {
		events, head, onDisk := chain()
		return onDisk == head+" "+strconv.Itoa(len(events))
	})
}

// TestStateOnFullDisk: the state directory on a small tmpfs that is full
// when a new version arrives. The version is enforced, but the resolver
// says its mark is not kept (coredns_regblock_state_unsaved, /ready 503)
// and retries; once there is room the mark is written, so that after a
// restart the older version put back in the lists directory is refused as
// a rollback.
func TestStateOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	state := testenv.Tmpfs(t, "1m")
	dir, key, pub := signedList(t)
	r := newDiskResolver(t, dir, pub, "state "+state)
	ready, metric, start, blocked := r.ready, r.metric, r.start, r.blocked
	v4 := strings.Replace(list, "serial: 3", "serial: 4", 1) + "four.example\n"
	start()
	testenv.Eventually(t, 20*time.Second, "regblockd is ready", ready)

	free := testenv.Fill(t, state)
	key.WriteList(t, dir, "e2e.list", v4)
	testenv.Eventually(t, 20*time.Second, "serial 4 is enforced", func() bool { return blocked("four.example.") })
	testenv.Eventually(t, 10*time.Second, "the state is unsaved", func() bool { return metric("coredns_regblock_state_unsaved") > 0 })
	if ready() {
		t.Error("/ready says ready while serial 4's mark is not kept")
	}

	free()
	testenv.Eventually(t, 20*time.Second, "the state is saved and regblockd is ready again", func() bool {
		return metric("coredns_regblock_state_unsaved") == 0 && ready()
	})

	// Restarted with serial 3 put back: a rollback, refused; serial 4
	// stays in force from the state directory.
	r.kill()
	key.WriteList(t, dir, "e2e.list", list)
	start()
	testenv.Eventually(t, 10*time.Second, "serial 3 is refused as a rollback", func() bool {
		return metric(`coredns_regblock_reloads_total{list="e2e",result="rollback"}`) > 0
	})
	if !blocked("four.example.") {
		t.Error("after a restart, serial 3 put back is enforced: the mark of serial 4 was not kept")
	}

	// Serial 5 on a full disk, serial 4 put back before room returns: 5's
	// mark is written once there is room, but its copy never can be (its
	// file is gone). After a restart the saved copy of 4, below the mark,
	// is not restored, and 4's file is a rollback: nothing older than 5
	// comes back.
	free = testenv.Fill(t, state)
	v4 = strings.Replace(list, "serial: 3", "serial: 4", 1) + "four.example\n"
	key.WriteList(t, dir, "e2e.list", strings.Replace(list, "serial: 3", "serial: 5", 1)+"five.example\n")
	testenv.Eventually(t, 20*time.Second, "serial 5 is enforced", func() bool { return blocked("five.example.") })
	key.WriteList(t, dir, "e2e.list", v4)
	free()
	testenv.Eventually(t, 20*time.Second, "serial 5's mark is saved", func() bool {
		return strings.Contains(mustReadString(filepath.Join(state, ".high-water-marks")), `"serial": 5`)
	})
	r.kill()
	start()
	testenv.Eventually(t, 10*time.Second, "serial 4 is refused", func() bool {
		return metric(`coredns_regblock_reloads_total{list="e2e",result="rollback"}`) > 0
	})
	if blocked("four.example.") {
		t.Error("after a restart, the saved copy of serial 4, below serial 5's mark, is enforced")
	}
}

func mustReadString(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// diskResolver is a regblockd whose readiness is watched
// (ready { monitor continuously }), with one regblock option of the
// test's (audit FILE, state DIR), for the full-disk tests.
type diskResolver struct {
	t                      *testing.T
	addr, conf             string
	metricsPort, readyPort string
	cmd                    *exec.Cmd
}

func newDiskResolver(t *testing.T, dir, pub, option string) *diskResolver {
	r := &diskResolver{t: t, metricsPort: testenv.FreePort(t), readyPort: testenv.FreePort(t), conf: filepath.Join(t.TempDir(), "Corefile")}
	port := testenv.FreePort(t)
	r.addr = "127.0.0.1:" + port
	os.WriteFile(r.conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        `+option+`
    }
    ready 127.0.0.1:`+r.readyPort+` {
        monitor continuously
    }
    prometheus 127.0.0.1:`+r.metricsPort+`
}
`), 0o644)
	return r
}

// start runs regblockd, and waits for its startup banner and its DNS
// port (before /ready: a ready port taken meanwhile by another process of
// a concurrent test would answer for it).
func (r *diskResolver) start() {
	r.cmd = exec.Command(bin, "-conf", r.conf)
	testenv.Serving(r.t, testenv.Process(r.t, "regblockd", r.cmd))
	testenv.Eventually(r.t, 20*time.Second, "regblockd answers", func() bool {
		_, err := query(r.addr, "probe.test.", dns.TypeA)
		return err == nil
	})
}

// kill stops regblockd as a crash would.
func (r *diskResolver) kill() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

func (r *diskResolver) ready() bool {
	resp, err := http.Get("http://127.0.0.1:" + r.readyPort + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (r *diskResolver) metric(name string) float64 {
	return metricValues(scrape(r.t, "http://127.0.0.1:"+r.metricsPort+"/metrics"))[name]
}

func (r *diskResolver) blocked(name string) bool {
	m, err := query(r.addr, name, dns.TypeA)
	return err == nil && len(m.Answer) == 1
}
