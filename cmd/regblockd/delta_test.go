package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestDeltas runs regblockd on a lists directory and a state directory and
// publishes as a regulator would: deltas made with 'regblock delta' and
// signed with stock minisign. It checks what a DNS client, /metrics and
// the ledger see: a delta applied (new names blocked, removed names pass,
// the new serial and the whole file's SHA-256 recorded), a delta on the
// wrong base, one signed by an unknown key, one with an old serial, one
// whose digest does not match, and a restart that restores the version
// made by deltas.
func TestDeltas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	toolkit, err := testenv.Build(t.TempDir(), "../regblock", "regblock")
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
	}
	wd, pub, keys := t.TempDir(), t.TempDir(), t.TempDir()
	lists, state := filepath.Join(wd, "lists"), filepath.Join(wd, "state")
	os.Mkdir(lists, 0o755)
	secret, public := filepath.Join(keys, "regulator.key"), filepath.Join(keys, "regulator.pub")
	run(ms, "-G", "-W", "-p", public, "-s", secret)
	other := filepath.Join(keys, "other.key")
	run(ms, "-G", "-W", "-p", filepath.Join(keys, "other.pub"), "-s", other)

	version := func(serial int, names ...string) string {
		text := fmt.Sprintf("#! regblock-list 1\n#! name: e2e\n#! issuer: Example Communications Commission\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\nabuse.example ORDER-1 csam\n", serial)
		for _, n := range names {
			text += n + " ORDER-2 csam\n"
		}
		path := filepath.Join(pub, fmt.Sprintf("e2e.%d.list", serial))
		os.WriteFile(path, []byte(text), 0o644)
		return path
	}
	v1 := version(1, "old.example", "kept.example")
	v2 := version(2, "kept.example", "new.example")
	v3 := version(3, "kept.example", "new.example", "third.example")
	// publish makes the delta from old to next with the toolkit, and
	// places it in the lists directory signed by key.
	publish := func(old, next, file, key string) {
		t.Helper()
		path := filepath.Join(lists, file)
		run(toolkit, "delta", old, next, "-o", path)
		run(ms, "-S", "-s", key, "-m", path)
	}
	copyList := func(src string) {
		data, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(lists, "e2e.list"), data, 0o644)
		run(ms, "-S", "-s", secret, "-m", filepath.Join(lists, "e2e.list"))
	}
	copyList(v1)

	audit := filepath.Join(wd, "audit.jsonl")
	dnsPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + dnsPort
	corefile := `.:` + dnsPort + ` {
    bind 127.0.0.1
    prometheus 127.0.0.1:` + metricsPort + `
    regblock {
        lists ` + lists + `
        pubkey ` + public + `
        state ` + state + `
        audit ` + audit + `
        notice 192.0.2.80
    }
}
`
	conf := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(conf, []byte(corefile), 0o644)
	var server *exec.Cmd
	startServer := func() {
		server = exec.Command(bin, "-conf", conf)
		server.Dir = wd
		testenv.Process(t, "regblockd", server)
		testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool { _, err := query(addr, "abuse.example.", dns.TypeA); return err == nil })
	}
	startServer()
	blocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	metrics := func() map[string]float64 { return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics")) }
	reloads := func(result string) float64 {
		return metrics()[`coredns_regblock_reloads_total{list="e2e",result="`+result+`"}`]
	}
	if !blocked("old.example.") {
		t.Fatal("serial 1 is not enforced")
	}

	start := time.Now()
	publish(v1, v2, "e2e.1.delta", secret)
	testenv.Eventually(t, 10*time.Second, "the delta to serial 2 is enforced", func() bool { return blocked("new.example.") })
	t.Logf("new name blocked %v after the signed delta was written", time.Since(start).Round(time.Millisecond))
	if blocked("old.example.") || !blocked("kept.example.") {
		t.Error("after the delta: old.example must pass and kept.example stay blocked")
	}
	m := metrics()
	if m[`coredns_regblock_list_serial{list="e2e"}`] != 2 || m[`coredns_regblock_list_entries{list="e2e"}`] != 3 {
		t.Errorf("serial %v, entries %v; want 2 and 3", m[`coredns_regblock_list_serial{list="e2e"}`], m[`coredns_regblock_list_entries{list="e2e"}`])
	}
	data, _ := os.ReadFile(v2)
	sum2 := fmt.Sprintf("%x", sha256.Sum256(data))
	var infos []string // serial 1's series goes
	for series := range m {
		if strings.HasPrefix(series, `coredns_regblock_list_info{list="e2e",`) {
			infos = append(infos, series)
		}
	}
	if want := `coredns_regblock_list_info{list="e2e",sha256="` + sum2 + `"}`; len(infos) != 1 || m[want] != 1 {
		t.Errorf("list_info series %q; want only %s 1", infos, want)
	}
	testenv.Eventually(t, 10*time.Second, "the ledger records serial 2 with the whole file's SHA-256", func() bool {
		log, _ := os.ReadFile(audit)
		return strings.Contains(string(log), `"event":"list_applied","list":"e2e","serial":2,"sha256":"`+sum2+`"`)
	})
	if out, err := exec.Command(toolkit, "verify-ledger", audit).CombinedOutput(); err != nil {
		t.Errorf("verify-ledger: %v\n%s", err, out)
	}

	// The whole file of serial 2, arriving later, is the version in force.
	before := reloads("unchanged")
	copyList(v2)
	testenv.Eventually(t, 10*time.Second, "the whole file of serial 2 is unchanged", func() bool { return reloads("unchanged") > before })

	// Refusals: each keeps serial 2.
	for _, tc := range []struct {
		what, old, next, file, key, result string
	}{
		{"a delta on the wrong base", v1, v3, "e2e.1.delta", secret, "delta_base"},
		{"a delta signed by an unknown key", v2, v3, "e2e.2.delta", other, "bad_signature"},
		{"an old serial", v1, v2, "e2e.1.delta", secret, "unchanged"},
	} {
		os.Remove(filepath.Join(lists, tc.file))
		os.Remove(filepath.Join(lists, tc.file+".minisig"))
		// A file that does not verify is counted under "unknown", whatever
		// list its name names.
		list := "e2e"
		if tc.result == "bad_signature" {
			list = "unknown"
		}
		label := tc.result
		series := `coredns_regblock_reloads_total{list="` + list + `",result="` + label + `"}`
		before := metrics()[series]
		publish(tc.old, tc.next, tc.file, tc.key)
		testenv.Eventually(t, 10*time.Second, tc.what+" is counted as "+label, func() bool { return metrics()[series] > before })
		if blocked("third.example.") || !blocked("new.example.") {
			t.Fatalf("%s changed what is blocked", tc.what)
		}
	}

	// A digest that does not match the entries, signed: made by hand.
	delta := filepath.Join(lists, "e2e.2.delta")
	os.Remove(delta + ".minisig")
	run(toolkit, "delta", "-o", delta, v2, v3)
	text, _ := os.ReadFile(delta)
	lines := strings.Split(string(text), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#! digest: ") {
			lines[i] = "#! digest: " + strings.Repeat("0", 32)
		}
	}
	os.WriteFile(delta, []byte(strings.Join(lines, "\n")), 0o644)
	before = reloads("delta_mismatch")
	run(ms, "-S", "-s", secret, "-m", delta)
	testenv.Eventually(t, 10*time.Second, "a mismatching digest is counted as delta_mismatch", func() bool { return reloads("delta_mismatch") > before })
	if blocked("third.example.") {
		t.Fatal("a delta whose digest does not match was applied")
	}

	// The right delta, then a restart: the state directory restores serial
	// 3 although the lists directory holds the whole file of serial 2.
	os.Remove(delta + ".minisig")
	publish(v2, v3, "e2e.2.delta", secret)
	testenv.Eventually(t, 10*time.Second, "the delta to serial 3 is enforced", func() bool { return blocked("third.example.") })
	os.Remove(delta)
	os.Remove(delta + ".minisig")
	copyList(v1)
	server.Process.Kill()
	server.Wait()
	startServer()
	if !blocked("third.example.") || blocked("old.example.") {
		t.Fatal("after a restart, serial 3 made by deltas is not what is enforced")
	}
	if got := metrics()[`coredns_regblock_list_serial{list="e2e"}`]; got != 3 {
		t.Errorf("serial after restart %v, want 3", got)
	}
}

// TestWholeReloadDiffed rewrites the whole list file with a new version
// that changes a few names of 200, the case the resolver diffs against
// the version in force instead of compiling it again, and checks what a
// DNS client, /metrics and the ledger see: the names added blocked, the
// names removed passing, the others still blocked, and the new serial,
// entry count and whole file's SHA-256 recorded.
func TestWholeReloadDiffed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	key := blocklisttest.NewKey(t)
	wd := t.TempDir()
	lists := filepath.Join(wd, "lists")
	os.Mkdir(lists, 0o755)
	version := func(serial int, from, to int, extra ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "#! regblock-list 1\n#! name: e2e\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\nabuse.example ORDER-1 csam\n", serial)
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "n%d.example ORDER-%d\n", i, i%3)
		}
		for _, n := range extra {
			b.WriteString(n + "\n")
		}
		return b.String()
	}
	key.WriteList(t, lists, "e2e.list", version(1, 0, 200))
	audit := filepath.Join(wd, "audit.jsonl")
	dnsPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + dnsPort
	startRegblockd(t, `.:`+dnsPort+` {
    bind 127.0.0.1
    prometheus 127.0.0.1:`+metricsPort+`
    regblock {
        lists `+lists+`
        pubkey `+key.WritePublic(t, t.TempDir())+`
        audit `+audit+`
        notice 192.0.2.80
    }
}
`, wd, addr)
	blocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	if !blocked("n0.example.") {
		t.Fatal("serial 1 is not enforced")
	}

	v2 := version(2, 2, 200, "added1.example ORDER-9", "added2.example", "*.added3.example")
	key.WriteList(t, lists, "e2e.list", v2)
	testenv.Eventually(t, 10*time.Second, "serial 2 is enforced", func() bool { return blocked("added1.example.") })
	for name, want := range map[string]bool{"n0.example.": false, "n1.example.": false, "n2.example.": true, "n199.example.": true,
		"added2.example.": true, "www.added3.example.": true, "abuse.example.": true} {
		if got := blocked(name); got != want {
			t.Errorf("after serial 2: %s blocked %v, want %v", name, got, want)
		}
	}
	if r, err := query(addr, "added1.example.", dns.TypeA); err != nil || ede(r) == nil || !strings.Contains(ede(r).ExtraText, "ORDER-9") {
		t.Errorf("added1.example's Extended DNS Error does not give its order ORDER-9: %v", r)
	}
	m := metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))
	if m[`coredns_regblock_list_serial{list="e2e"}`] != 2 || m[`coredns_regblock_list_entries{list="e2e"}`] != 202 {
		t.Errorf("serial %v, entries %v; want 2 and 202", m[`coredns_regblock_list_serial{list="e2e"}`], m[`coredns_regblock_list_entries{list="e2e"}`])
	}
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(v2)))
	testenv.Eventually(t, 10*time.Second, "the ledger records serial 2 with its SHA-256", func() bool {
		log, _ := os.ReadFile(audit)
		return strings.Contains(string(log), `"event":"list_applied","list":"e2e","serial":2,"sha256":"`+sum+`"`)
	})
}
