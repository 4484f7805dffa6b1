package regblock

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	plugintest "github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/internal/deltatest"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/listset"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// version is version k of the fixture's list test-csam: serial
// 2026112801+k, abuse.example under order ORDER-k, plus extra entries.
func version(k int, extra string) string {
	return fmt.Sprintf("#! regblock-list 1\n#! name: test-csam\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\nabuse.example ORDER-%d csam\n%s",
		2026112801+k, k, extra)
}

// startServer runs regblock in a CoreDNS server on a loopback port, in front
// of an upstream, and returns the server's UDP address.
func startServer(t *testing.T, f fixture, options string) string {
	t.Helper()
	up := upstreamtest.Start(t)
	i, udp, _, err := test.CoreDNSServerAndPorts(`.:0 {
		bind 127.0.0.1
		regblock {
			lists ` + f.dir + `
			pubkey ` + f.pub + `
			notice 192.0.2.80
			` + options + `
		}
		forward . ` + up.Addr + `
	}`)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	t.Cleanup(func() {
		i.Stop()
		i.ShutdownCallbacks() // Stop skips them; they stop the watcher
	})
	return udp
}

// blocked reports whether the server at addr answers name with the notice
// address; it fails the test if the server does not answer.
func blocked(t *testing.T, addr, name string) bool {
	t.Helper()
	r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
}

// eventually polls cond for at most 5 s.
// eventually waits for cond, for as long as a loaded machine (the whole
// suite under -race on two cores) may need: a bound on a behaviour, not a
// timing target, so it is generous.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, what, cond)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadNewListEitherOrder(t *testing.T) {
	f := newFixture(t)
	addr := startServer(t, f, "")
	for _, sigFirst := range []bool{false, true} {
		name := fmt.Sprintf("new%v", sigFirst)
		text := fmt.Sprintf("#! regblock-list 1\n#! name: %s\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n%s.example\n", name, name)
		path := filepath.Join(f.dir, name+".list")
		if sigFirst {
			write(t, path+".minisig", f.key.Sign([]byte(text)))
		} else {
			write(t, path, []byte(text))
		}
		time.Sleep(3 * listset.Settle) // let the watcher see the first half alone
		if blocked(t, addr, name+".example.") {
			t.Fatalf("%s is blocked before its list is complete", name)
		}
		if sigFirst {
			write(t, path, []byte(text))
		} else {
			write(t, path+".minisig", f.key.Sign([]byte(text)))
		}
		eventually(t, name+".example is blocked", func() bool { return blocked(t, addr, name+".example.") })
	}
	if !blocked(t, addr, "abuse.example.") {
		t.Error("the first list is no longer enforced")
	}
}

func TestReloadRenameIntoPlace(t *testing.T) {
	f := newFixture(t)
	addr := startServer(t, f, "")
	text := version(1, "renamed.example\n")
	list := filepath.Join(f.dir, "test-csam.list")
	// What regblock sync and rsync do: write temporary files, rename them.
	write(t, filepath.Join(f.dir, ".tmp-sig"), f.key.Sign([]byte(text)))
	write(t, filepath.Join(f.dir, ".tmp-list"), []byte(text))
	if err := os.Rename(filepath.Join(f.dir, ".tmp-sig"), list+".minisig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.dir, ".tmp-list"), list); err != nil {
		t.Fatal(err)
	}
	eventually(t, "renamed.example is blocked", func() bool { return blocked(t, addr, "renamed.example.") })
	if blocked(t, addr, "x.bulk.example.") {
		t.Error("an entry of the old version is still enforced")
	}
}

func TestReloadInPlace(t *testing.T) {
	f := newFixture(t)
	addr := startServer(t, f, "")
	text := version(1, "inplace.example\n")
	list := filepath.Join(f.dir, "test-csam.list")
	for _, file := range []struct {
		path string
		data []byte
	}{{list, []byte(text)}, {list + ".minisig", f.key.Sign([]byte(text))}} {
		fh, err := os.OpenFile(file.path, os.O_WRONLY|os.O_TRUNC, 0) // as cp and editors do
		if err != nil {
			t.Fatal(err)
		}
		fh.Write(file.data)
		fh.Close()
	}
	eventually(t, "inplace.example is blocked", func() bool { return blocked(t, addr, "inplace.example.") })
}

// TestReloadKubernetesVolume reproduces how Kubernetes updates a mounted
// ConfigMap: the files are symlinks through ..data, itself a symlink that is
// atomically re-pointed at a new timestamped directory.
func TestReloadKubernetesVolume(t *testing.T) {
	f := newFixture(t)
	vol := t.TempDir()
	publish := func(stamp, text string) {
		dir := filepath.Join(vol, stamp)
		os.Mkdir(dir, 0o755)
		write(t, filepath.Join(dir, "test-csam.list"), []byte(text))
		write(t, filepath.Join(dir, "test-csam.list.minisig"), f.key.Sign([]byte(text)))
		if err := os.Symlink(stamp, filepath.Join(vol, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("..2026_11_28_06_00_00.1", version(1, "first.example\n"))
	for _, name := range []string{"test-csam.list", "test-csam.list.minisig"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(vol, name)); err != nil {
			t.Fatal(err)
		}
	}
	addr := startServer(t, fixture{dir: vol, pub: f.pub, key: f.key}, "")
	if !blocked(t, addr, "first.example.") {
		t.Fatal("the mounted list is not enforced")
	}
	publish("..2026_11_28_07_00_00.2", version(2, "second.example\n"))
	os.RemoveAll(filepath.Join(vol, "..2026_11_28_06_00_00.1"))
	eventually(t, "second.example is blocked", func() bool { return blocked(t, addr, "second.example.") })
	if blocked(t, addr, "first.example.") {
		t.Error("the old version is still enforced")
	}
}

func TestReloadRemoved(t *testing.T) {
	f := newFixture(t)
	addr := startServer(t, f, "")
	if !blocked(t, addr, "abuse.example.") {
		t.Fatal("not blocked at start")
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "test-csam.list"))
	if err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(listInfo.WithLabelValues("test-csam", fmt.Sprintf("%x", sha256.Sum256(data)))); v != 1 {
		t.Errorf("list_info of the file's SHA-256 is %v, want 1", v)
	}
	os.Remove(filepath.Join(f.dir, "test-csam.list"))
	eventually(t, "abuse.example is no longer blocked", func() bool { return !blocked(t, addr, "abuse.example.") })
	if testutil.ToFloat64(listSerial.WithLabelValues("test-csam")) != 0 {
		t.Error("the serial gauge of the removed list is still set")
	}
	if n := listInfo.DeletePartialMatch(prometheus.Labels{"list": "test-csam"}); n != 0 {
		t.Errorf("%d list_info series of the list remain after it was removed, want 0", n)
	}
}

// TestReloadRejected writes each kind of bad version over a good list and
// checks that the good one stays in force and the rejection is counted.
func TestReloadRejected(t *testing.T) {
	other := blocklisttest.NewKey(t)
	tests := []struct {
		name   string
		result string
		write  func(f fixture, list string)
	}{
		{"forged", "bad_signature", func(f fixture, list string) {
			write(t, list, []byte(version(5, "forged.example\n")))
		}},
		{"untrusted key", "bad_signature", func(f fixture, list string) {
			other.WriteList(t, f.dir, "test-csam.list", version(5, "forged.example\n"))
		}},
		{"signature removed", "bad_signature", func(f fixture, list string) {
			os.Remove(list + ".minisig")
		}},
		{"parse error", "parse_error", func(f fixture, list string) {
			f.key.WriteList(t, f.dir, "test-csam.list", version(5, "forged.example\nbad$.example\n"))
		}},
		{"lower serial", "rollback", func(f fixture, list string) {
			f.key.WriteList(t, f.dir, "test-csam.list", version(-1, "forged.example\n"))
		}},
		{"same serial, other bytes", "rollback", func(f fixture, list string) {
			f.key.WriteList(t, f.dir, "test-csam.list", strings.Replace(testList, "*.bulk.example", "forged.example", 1))
		}},
		{"too large", "too_large", func(f fixture, list string) {
			f.key.WriteList(t, f.dir, "test-csam.list", version(5, "forged.example\n"+strings.Repeat("# padding\n", 500)))
		}},
		{"unreadable", "io_error", func(f fixture, list string) {
			// A dangling link renamed over the list: present, not readable.
			os.Symlink(filepath.Join(f.dir, "absent"), list+".tmp")
			os.Rename(list+".tmp", list)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			addr := startServer(t, f, "max_size 4K")
			counter := reloadsTotal.WithLabelValues("test-csam", tc.result)
			before := testutil.ToFloat64(counter)
			tc.write(f, filepath.Join(f.dir, "test-csam.list"))
			eventually(t, "the rejection is counted as "+tc.result, func() bool { return testutil.ToFloat64(counter) > before })
			if blocked(t, addr, "forged.example.") {
				t.Error("the rejected version is enforced")
			}
			if !blocked(t, addr, "abuse.example.") || !blocked(t, addr, "x.bulk.example.") {
				t.Error("the good version is no longer enforced")
			}
			if got := testutil.ToFloat64(listSerial.WithLabelValues("test-csam")); got != 2026112801 {
				t.Errorf("serial gauge = %v, want the good version's", got)
			}
		})
	}
}

func TestReloadUnchanged(t *testing.T) {
	f := newFixture(t)
	startServer(t, f, "")
	counter := reloadsTotal.WithLabelValues("test-csam", string(result.Unchanged))
	before := testutil.ToFloat64(counter)
	// The same bytes written again, as a ConfigMap remount or a sync would.
	f.key.WriteList(t, f.dir, "test-csam.list", testList)
	eventually(t, "the identical version is counted as unchanged", func() bool { return testutil.ToFloat64(counter) > before })
}

func TestStateAcrossRestart(t *testing.T) {
	f := newFixture(t)
	state := filepath.Join(t.TempDir(), "state")
	list := filepath.Join(f.dir, "test-csam.list")
	// A restart: the running instance stops, a new one starts. (Lists are
	// shared while any instance holds them: without the stop, the new
	// instance would get the running one's lists.)
	var rb *Regblock
	start := func() *Regblock {
		if rb != nil {
			rb.shutdown()
		}
		return f.plugin(t, "state "+state)
	}
	isBlocked := func(rb *Regblock, name string) bool { _, ok := rb.index.Load().Lookup(name); return ok }

	f.key.WriteList(t, f.dir, "test-csam.list", version(2, "two.example\n"))
	rb = start()
	if !isBlocked(rb, "two.example.") {
		t.Fatal("version 2 not in force")
	}

	// While stopped, an older version is put back on disk: the restart keeps
	// version 2 and counts a rollback.
	f.key.WriteList(t, f.dir, "test-csam.list", version(1, "one.example\n"))
	rollbacks := testutil.ToFloat64(reloadsTotal.WithLabelValues("test-csam", string(result.Rollback)))
	rb = start()
	if !isBlocked(rb, "two.example.") || isBlocked(rb, "one.example.") {
		t.Error("after a restart with an older list on disk, version 2 is not the one in force")
	}
	if testutil.ToFloat64(reloadsTotal.WithLabelValues("test-csam", string(result.Rollback))) != rollbacks+1 {
		t.Error("the rollback across the restart was not counted")
	}

	// A forged file on disk at restart: the saved copy stays in force.
	write(t, list, []byte(version(9, "forged.example\n")))
	rb = start()
	if !isBlocked(rb, "two.example.") || isBlocked(rb, "forged.example.") {
		t.Error("after a restart with a forged list on disk, version 2 is not the one in force")
	}
	if got := testutil.ToFloat64(listSerial.WithLabelValues("test-csam")); got != 2026112803 {
		t.Errorf("serial gauge = %v after restart, want 2026112803", got)
	}

	// A newer valid version replaces it, and is what the next restart keeps.
	f.key.WriteList(t, f.dir, "test-csam.list", version(3, "three.example\n"))
	rb = start()
	if !isBlocked(rb, "three.example.") {
		t.Error("version 3 not applied")
	}
	os.WriteFile(list, []byte("garbage"), 0o644)
	if rb = start(); !isBlocked(rb, "three.example.") {
		t.Error("version 3 not kept across a restart")
	}

	// The list deleted while the resolver is stopped: unloaded at restart,
	// and its saved copy is gone.
	os.Remove(list)
	os.Remove(list + ".minisig")
	if rb = start(); isBlocked(rb, "three.example.") || rb.Ready() {
		t.Error("a list deleted while stopped is still enforced after the restart")
	}
	if _, err := os.Stat(filepath.Join(state, "test-csam.json")); !os.IsNotExist(err) {
		t.Errorf("the saved copy of the deleted list remains: %v", err)
	}
}

func TestExpiredListStaysEnforced(t *testing.T) {
	f := newFixture(t)
	text := strings.Replace(version(1, ""), "#! issued:", "#! expires: 2026-11-29T06:00:00Z\n#! issued:", 1)
	f.key.WriteList(t, f.dir, "test-csam.list", text)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	rb := f.plugin(t, "audit "+audit)
	rb.set.Now = func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }
	rb.set.CheckExpiry()
	if got := testutil.ToFloat64(listExpiry.WithLabelValues("test-csam")); got != float64(time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC).Unix()) {
		t.Errorf("expiry gauge = %v", got)
	}
	rb.set.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	rb.set.CheckExpiry()
	rb.set.CheckExpiry() // reported once, not on every check
	if _, ok := rb.index.Load().Lookup("abuse.example."); !ok {
		t.Error("an expired list is no longer enforced")
	}
	rb.shutdown()
	if got := kinds(readEvents(t, audit)); got != "list_applied list_expired" {
		t.Errorf("ledger: %s, want list_applied list_expired", got)
	}
}

func TestRejectedAtStartup(t *testing.T) {
	f := newFixture(t)
	f.key.WriteList(t, f.dir, "good.list", "#! regblock-list 1\n#! name: good\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\ngood.example\n")
	write(t, filepath.Join(f.dir, "test-csam.list"), []byte(strings.Replace(testList, "abuse.example", "abuse.examplf", 1)))
	counter := reloadsTotal.WithLabelValues(listset.UnknownList, "bad_signature") // no verified list names the file
	before := testutil.ToFloat64(counter)
	rb := f.plugin(t, "")
	if _, ok := rb.index.Load().Lookup("abuse.examplf."); ok {
		t.Error("a tampered list is enforced")
	}
	if _, ok := rb.index.Load().Lookup("good.example."); !ok || !rb.Ready() {
		t.Error("a good list beside a tampered one is not enforced")
	}
	if testutil.ToFloat64(counter) != before+1 {
		t.Error("the tampered list was not counted as bad_signature")
	}
}

// TestReloadUnderQueries keeps querying from several goroutines while the
// list is replaced many times, and checks that no query fails and every
// answer comes whole from one version: its order reference and its serial
// belong together. Run it with -race.
func TestReloadUnderQueries(t *testing.T) {
	f := newFixture(t)
	f.key.WriteList(t, f.dir, "test-csam.list", version(0, ""))
	rb := f.plugin(t, "notice 192.0.2.80")
	rb.Next = plugintest.NextHandler(dns.RcodeServerFailure, nil)
	if err := rb.set.Start(); err != nil {
		t.Fatal(err)
	}
	defer rb.set.Stop()

	stop := make(chan struct{})
	results := make(chan int, 4)
	for range 4 {
		go func() {
			n := 0
			defer func() { results <- n }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := new(dns.Msg).SetQuestion("www.abuse.example.", dns.TypeA)
				req.SetEdns0(1232, false)
				rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
				if code, err := rb.ServeDNS(context.Background(), rec, req); code != dns.RcodeSuccess || err != nil || rec.Msg == nil {
					t.Errorf("query failed: rcode %d, %v", code, err)
					return
				}
				var k int
				text := ede(rec.Msg)
				if _, err := fmt.Sscanf(text[strings.Index(text, "order ORDER-"):], "order ORDER-%d", &k); err != nil {
					t.Errorf("EDE without an order: %q", text)
					return
				}
				if want := fmt.Sprintf("serial %d)", 2026112801+k); !strings.Contains(text, want) {
					t.Errorf("answer mixes versions: order ORDER-%d with %q", k, text)
					return
				}
				n++
			}
		}()
	}

	list := filepath.Join(f.dir, "test-csam.list")
	for k := 1; k <= 30; k++ {
		text := version(k, fmt.Sprintf("v%d.example\n", k))
		write(t, list+".tmp", []byte(text))
		write(t, list+".minisig.tmp", f.key.Sign([]byte(text)))
		os.Rename(list+".minisig.tmp", list+".minisig")
		os.Rename(list+".tmp", list)
		eventually(t, fmt.Sprintf("version %d in force", k), func() bool {
			_, ok := rb.index.Load().Lookup(fmt.Sprintf("v%d.example.", k))
			return ok
		})
	}
	close(stop)
	total := 0
	for range 4 {
		total += <-results
	}
	if total == 0 {
		t.Fatal("no query ran")
	}
	t.Logf("%d queries across 30 reloads", total)
}

// ede returns the EXTRA-TEXT of m's Extended DNS Error, or "".
func ede(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.ExtraText
			}
		}
	}
	return ""
}

// TestForgedChainEntries: a delta whose sha256 header names the whole file
// W of the next version while its entries make another set (what a key
// holder can sign) is enforced until W itself arrives; then W's entries
// are, and the gauges say so: list_entries counts W's, not the chain's.
func TestForgedChainEntries(t *testing.T) {
	f := newFixture(t)
	v0 := version(0, "target.example ORDER-1 csam\n")
	w := version(1, "target.example ORDER-1 csam\nnew.example ORDER-2 csam\n")
	forged := version(1, "new.example ORDER-2 csam\n")
	f.key.WriteList(t, f.dir, "test-csam.list", v0)
	addr := startServer(t, f, "")
	entries := func() float64 { return testutil.ToFloat64(listEntries.WithLabelValues("test-csam")) }
	delta := deltatest.Text(t, v0, forged, func(d *blocklist.Delta) { d.SHA256 = sha256.Sum256([]byte(w)) })
	f.key.WriteList(t, f.dir, "test-csam.2026112801.delta", delta)
	eventually(t, "the forged chain is in force", func() bool { return blocked(t, addr, "new.example.") && !blocked(t, addr, "target.example.") })
	if got := entries(); got != 2 {
		t.Errorf("list_entries %v under the chain, want 2", got)
	}
	f.key.WriteList(t, f.dir, "test-csam.list", w)
	eventually(t, "W's entries are in force", func() bool { return blocked(t, addr, "target.example.") })
	if got := entries(); got != 3 {
		t.Errorf("list_entries %v once W's whole file is in force, want its 3", got)
	}
}
