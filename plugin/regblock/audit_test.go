package regblock

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	plugintest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// readEvents returns the events of an audit log file.
func readEvents(t *testing.T, path string) []ledger.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []ledger.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e ledger.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

func kinds(events []ledger.Event) string {
	var k []string
	for _, e := range events {
		k = append(k, e.Event)
	}
	return strings.Join(k, " ")
}

func TestAuditBlockEvents(t *testing.T) {
	for _, tc := range []struct{ mode, client string }{{"none", ""}, {"truncate", "10.240.0.0/24"}, {"full", "10.240.0.1"}} {
		t.Run(tc.mode, func(t *testing.T) {
			f := newFixture(t)
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			rb := f.plugin(t, "audit "+path+"\naudit_client "+tc.mode)
			rec := dnstest.NewRecorder(&plugintest.ResponseWriter{}) // client 10.240.0.1
			rb.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("WWW.abuse.example.", dns.TypeHTTPS))
			rb.shutdown() // drains the queue

			events := readEvents(t, path)
			if kinds(events) != "list_applied block" {
				t.Fatalf("events: %s", kinds(events))
			}
			applied, block := events[0], events[1]
			if applied.List != "test-csam" || *applied.Serial != 2026112801 || applied.SHA256 != f.sha(t) || applied.Prev != "" {
				t.Errorf("list_applied = %+v", applied)
			}
			want := ledger.Event{Event: "block", List: "test-csam", Pattern: "abuse.example", QName: "WWW.abuse.example.", QType: "HTTPS",
				Order: "ORDER-2026-0012", Category: "csam", Client: tc.client}
			if block.List != want.List || block.Pattern != want.Pattern || block.QName != want.QName || block.QType != want.QType ||
				block.Order != want.Order || block.Category != want.Category || block.Client != want.Client || *block.Serial != 2026112801 {
				t.Errorf("block event\n got %+v\nwant %+v", block, want)
			}
			if time.Since(block.Time) > time.Minute {
				t.Errorf("block event time %v", block.Time)
			}
		})
	}
}

// sha returns the hex SHA-256 of the fixture's list file.
func (f fixture) sha(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "test-csam.list"))
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Hash(data)
}

// TestLedgerChain writes every kind of ledger event across restarts and a
// rotation, and checks that the chain holds.
func TestLedgerChain(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	opts := "audit " + path + "\nstate " + filepath.Join(dir, "state")

	rb := f.plugin(t, opts) // applied
	f.key.WriteList(t, f.dir, "test-csam.list", version(1, ""))
	rb.set.Scan() // applied
	f.key.WriteList(t, f.dir, "test-csam.list", version(-1, ""))
	rb.set.Scan() // rejected: rollback
	rb.shutdown()

	rb = f.plugin(t, opts) // restored, then the rollback on disk rejected again
	// Rotation: the file is moved away, then SIGHUP.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if p, err := os.FindProcess(os.Getpid()); err != nil || p.Signal(syscall.SIGHUP) != nil {
		t.Skip("no SIGHUP on this system")
	}
	eventually(t, "the audit log is reopened", func() bool { _, err := os.Stat(path); return err == nil })
	rb.set.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	f.key.WriteList(t, f.dir, "test-csam.list", strings.Replace(version(2, ""), "#! issued:", "#! expires: 2029-01-01T00:00:00Z\n#! issued:", 1))
	rb.set.Scan() // applied, expired
	os.Remove(filepath.Join(f.dir, "test-csam.list"))
	rb.set.Scan() // removed
	rb.shutdown()

	old, next := readEvents(t, path+".1"), readEvents(t, path)
	if got := kinds(old); got != "list_applied list_applied list_rejected list_applied list_rejected" {
		t.Errorf("before the rotation: %s", got)
	}
	if got := kinds(next); got != "list_applied list_expired list_removed" {
		t.Errorf("after the rotation: %s", got)
	}
	if !old[3].Restored || *old[4].Serial != 2026112800 || *old[4].InForce != 2026112802 || old[4].Reason != "rollback" {
		t.Errorf("restored/rejected events: %+v %+v", old[3], old[4])
	}

	// The chain runs through both files and ends where FILE.head says.
	var head string
	events := 0
	for _, name := range []string{path + ".1", path} {
		fh, _ := os.Open(name)
		evs, h, err := ledger.Check(fh, name, head)
		fh.Close()
		if err != nil {
			t.Fatalf("chain: %v", err)
		}
		head, events = h, events+len(evs)
	}
	if saved, _ := os.ReadFile(path + ".head"); strings.TrimSpace(string(saved)) != fmt.Sprintf("%s %d", head, events) {
		t.Errorf("%s.head = %q, the chain ends at %q after %d events", path, saved, head, events)
	}
}

func TestAuditQueueFull(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	rb := f.plugin(t, "audit "+path)
	m, _ := rb.index.Load().Lookup("abuse.example.")
	r := blockRecord{time: time.Now(), match: m, qname: "abuse.example.", qtype: dns.TypeA}

	before := testutil.ToFloat64(auditDropped.WithLabelValues(dropQueueFull))
	rb.audit.mu.Lock() // the disk stalls: the writer waits
	for range auditQueue + 100 {
		rb.audit.block(r)
	}
	dropped := testutil.ToFloat64(auditDropped.WithLabelValues(dropQueueFull)) - before
	rb.audit.mu.Unlock()
	if dropped < 99 || dropped > 100 {
		t.Errorf("dropped %v block events, want 99 or 100 (the queue holds %d, the writer one)", dropped, auditQueue)
	}

	// Ledger events are never dropped.
	os.Remove(filepath.Join(f.dir, "test-csam.list"))
	rb.set.Scan()
	rb.shutdown()
	events := readEvents(t, path)
	if !strings.Contains(kinds(events), ledger.ListRemoved) {
		t.Error("the list_removed event written after the queue filled is missing")
	}
	if n := strings.Count(kinds(events), "block"); n < auditQueue {
		t.Errorf("%d block events written, want the %d queued", n, auditQueue)
	}
}

// TestAuditBudget bounds the block events written an hour: past the budget
// they are dropped and counted, while ledger events still go in.
func TestAuditBudget(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	rb := f.plugin(t, "audit "+path+"\naudit_budget 3")
	m, _ := rb.index.Load().Lookup("abuse.example.")
	before := testutil.ToFloat64(auditDropped.WithLabelValues(dropBudget))
	now := time.Now()
	for i := range 5 {
		rb.audit.block(blockRecord{time: now.Add(time.Duration(i) * time.Second), match: m, qname: "abuse.example.", qtype: dns.TypeA})
	}
	// The next hour has a budget of its own.
	rb.audit.block(blockRecord{time: now.Add(61 * time.Minute), match: m, qname: "abuse.example.", qtype: dns.TypeA})
	os.Remove(filepath.Join(f.dir, "test-csam.list"))
	rb.set.Scan()
	rb.shutdown()
	events := readEvents(t, path)
	if n := strings.Count(kinds(events), "block"); n != 4 {
		t.Errorf("%d block events written, want 3 in the first hour and 1 in the next", n)
	}
	if dropped := testutil.ToFloat64(auditDropped.WithLabelValues(dropBudget)) - before; dropped != 2 {
		t.Errorf("%v block events dropped, want 2", dropped)
	}
	if !strings.Contains(kinds(events), ledger.ListRemoved) {
		t.Error("the ledger event after the budget was spent is missing")
	}
}
