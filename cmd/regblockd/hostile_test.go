//go:build unix

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// resolver is a regblockd a test runs: its DNS address, its metrics URL
// and its output.
type resolver struct {
	addr, metrics string
	logs          *testenv.Output
}

// runResolver runs regblockd on loopback ports until the test ends, with
// the lists in dir signed by the key in pub, the notice address
// 192.0.2.80, the further regblock options, and a Prometheus endpoint;
// queries it does not answer go to upstream, unless that is "". It
// returns once regblockd answers.
func runResolver(t *testing.T, dir, pub, options, upstream string) resolver {
	t.Helper()
	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	forward := ""
	if upstream != "" {
		forward = "forward . " + upstream
	}
	r := resolver{addr: "127.0.0.1:" + port, metrics: "http://127.0.0.1:" + metricsPort + "/metrics"}
	r.logs = testenv.Regblockd(t, bin, `.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        `+options+`
    }
    prometheus 127.0.0.1:`+metricsPort+`
    `+forward+`
}
`, ".", r.addr, "abuse.example.")
	return r
}

// TestSpecialFilesInListsDir fills a lists directory and a state directory
// with files that are not regular files, named like lists, signatures and
// saved records: FIFOs (which block a reader until a writer comes), a
// socket, directories, and symbolic links to /dev/zero (which never ends)
// and to a directory. regblockd must start and answer, keep applying new
// versions of the good list, and refuse each special file once, with its
// path in the log and a count in the metrics.
func TestSpecialFilesInListsDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, state := t.TempDir(), t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	pub := key.WritePublic(t, t.TempDir())
	signature := key.Sign([]byte(list))

	mkfifo := func(path string) {
		t.Helper()
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, path string) {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	writeFile := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each special list has a signature file, so that it is opened rather
	// than left waiting for one.
	mkfifo(filepath.Join(dir, "fifo.list"))
	writeFile(filepath.Join(dir, "fifo.list.minisig"), signature)
	writeFile(filepath.Join(dir, "fifosig.list"), []byte(list))
	mkfifo(filepath.Join(dir, "fifosig.list.minisig"))
	symlink("/dev/zero", filepath.Join(dir, "zero.list"))
	writeFile(filepath.Join(dir, "zero.list.minisig"), signature)
	writeFile(filepath.Join(dir, "zerosig.list"), []byte(list))
	symlink("/dev/zero", filepath.Join(dir, "zerosig.list.minisig"))
	if err := os.Mkdir(filepath.Join(dir, "dir.list"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(filepath.Join(dir, "dir.list.minisig"), signature)
	symlink(t.TempDir(), filepath.Join(dir, "dirlink.list"))
	writeFile(filepath.Join(dir, "dirlink.list.minisig"), signature)
	sock, err := net.Listen("unix", filepath.Join(dir, "sock.list"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	writeFile(filepath.Join(dir, "sock.list.minisig"), signature)
	mkfifo(filepath.Join(state, "e2e.json"))
	symlink("/dev/zero", filepath.Join(state, "zero.json"))

	r := runResolver(t, dir, pub, "state "+state, "")
	addr, logs := r.addr, r.logs
	blocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	if !blocked("abuse.example.") {
		t.Fatal("abuse.example is not blocked: the good list beside the special files is not in force")
	}

	// More special files while it runs, then a new version of the good list:
	// the watcher must not be stuck on any of them.
	mkfifo(filepath.Join(dir, "late.list"))
	mkfifo(filepath.Join(dir, "late.list.minisig"))
	next := strings.Replace(list, "serial: 3", "serial: 4", 1) + "added.example ORDER-2026-0015 csam\n"
	staged := t.TempDir() // signed elsewhere, renamed into place
	key.WriteList(t, staged, "e2e.list", next)
	for _, f := range []string{"e2e.list.minisig", "e2e.list"} {
		if err := os.Rename(filepath.Join(staged, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "added.example is blocked after a new version was renamed into place", func() bool {
		return blocked("added.example.")
	})

	metrics := metricValues(scrape(t, r.metrics))
	for _, special := range []struct{ file, kind string }{
		{"fifo.list", "a FIFO"},
		{"fifosig.list.minisig", "a FIFO"},
		{"zero.list", "a character device"},
		{"zerosig.list.minisig", "a character device"},
		{"dir.list", "a directory"},
		{"dirlink.list", "a directory"},
		{"sock.list", "a socket"},
		{"late.list.minisig", "a FIFO"},
	} {
		line := filepath.Join(dir, special.file) + ": not a regular file (" + special.kind + ")"
		if n := strings.Count(logs.String(), line); n != 1 {
			t.Errorf("the log says %q %d times, want once", line, n)
		}
	}
	for _, line := range []string{
		filepath.Join(state, "e2e.json") + ": not a regular file (a FIFO)",
		filepath.Join(state, "zero.json") + ": not a regular file (a character device)",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log does not say %q", line)
		}
	}
	var refused float64
	for series, v := range metrics {
		if strings.HasPrefix(series, "coredns_regblock_reloads_total{") && strings.Contains(series, `result="io_error"`) {
			refused += v
		}
	}
	if refused != 8 {
		t.Errorf("reloads_total counts %v io_error results, want 8, one for each special list or signature", refused)
	}
	if got := metrics[`coredns_regblock_list_serial{list="e2e"}`]; got != 4 {
		t.Errorf("serial in force %v, want 4", got)
	}
}

// TestRenameKeepsListInForce renames a list's files while regblockd runs,
// with queries going on, and again while it is stopped: the same bytes
// under another name are the same list, so no query passes and the ledger
// never records the list as removed.
func TestRenameKeepsListInForce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, state := t.TempDir(), t.TempDir()
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	pub := key.WritePublic(t, t.TempDir())
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        state `+state+`
        audit `+audit+`
    }
}
`), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-conf", conf)
		testenv.Process(t, "regblockd", cmd)
		testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool {
			_, err := query(addr, "abuse.example.", dns.TypeA)
			return err == nil
		})
		return cmd
	}
	blocked := func() bool {
		r, err := query(addr, "abuse.example.", dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	rename := func(from, to string) {
		t.Helper()
		for _, suffix := range []string{".minisig", ""} {
			if err := os.Rename(filepath.Join(dir, from+suffix), filepath.Join(dir, to+suffix)); err != nil {
				t.Fatal(err)
			}
		}
	}
	noRemoval := func() {
		t.Helper()
		data, err := os.ReadFile(audit)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), ledger.ListRemoved) {
			t.Errorf("the ledger records a removal:\n%s", data)
		}
	}

	cmd := start()
	// Queries go on through the rename and for a second after it, past
	// the watcher's settling time.
	passed := make(chan int)
	go func() {
		n := 0
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
			if !blocked() {
				n++
			}
		}
		passed <- n
	}()
	time.Sleep(200 * time.Millisecond)
	rename("e2e.list", "renamed.list")
	if n := <-passed; n != 0 {
		t.Errorf("%d queries were not blocked around the rename", n)
	}
	noRemoval()

	// Renamed while stopped.
	cmd.Process.Kill()
	cmd.Wait()
	rename("renamed.list", "again.list")
	start()
	if !blocked() {
		t.Error("a list renamed while regblockd was stopped is not enforced after the restart")
	}
	noRemoval()
}

// TestHostileListNames puts signed lists whose names are not safe as file
// names in a lists directory: each is refused with the file and line of
// its name, and nothing is written outside the state directory.
func TestHostileListNames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	root := t.TempDir()
	dir, state := filepath.Join(root, "lists"), filepath.Join(root, "state")
	os.Mkdir(dir, 0o755)
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	hostile := []string{".", "..", ".hidden", "..x", "-x", strings.Repeat("a", 65)}
	for i, name := range hostile {
		key.WriteList(t, dir, fmt.Sprintf("hostile%d.list", i), strings.Replace(list, "name: e2e", "name: "+name, 1))
	}
	pub := key.WritePublic(t, t.TempDir())
	logs := runResolver(t, dir, pub, "state "+state, "").logs
	testenv.Eventually(t, 5*time.Second, "every hostile list is refused", func() bool {
		return strings.Count(logs.String(), "rejected (parse_error)") == len(hostile)
	})
	for i := range hostile {
		if at := filepath.Join(dir, fmt.Sprintf("hostile%d.list", i)) + ":2: list name"; !strings.Contains(logs.String(), at) {
			t.Errorf("the log does not say %q", at)
		}
	}
	var outside []string
	filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if rel, _ := filepath.Rel(root, path); rel != "." && rel != "lists" && rel != "state" && !strings.HasPrefix(rel, "lists/") && !strings.HasPrefix(rel, "state/") {
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("files written outside the state directory: %v", outside)
	}
	saved, _ := filepath.Glob(filepath.Join(state, "*"))
	for _, f := range saved {
		if base := filepath.Base(f); !strings.HasPrefix(base, "e2e.") && base != ".high-water-marks" {
			t.Errorf("the state directory holds %s", base)
		}
	}
}

// TestGenerateRefused signs an RPZ zone of a few kilobytes whose $GENERATE
// lines would expand to millions of records: regblockd refuses it, naming
// the line, and keeps answering with the other lists.
func TestGenerateRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	var zone strings.Builder
	zone.WriteString("$TTL 300\n@ SOA localhost. hostmaster.regulator.example. 1 3600 600 86400 300\n  NS localhost.\n")
	for i := range 100 {
		fmt.Fprintf(&zone, "$GENERATE 0-65535 g%d-$.gen.example CNAME .\n", i)
	}
	key.WriteList(t, dir, "generated.rpz", zone.String())
	pub := key.WritePublic(t, t.TempDir())
	res := runResolver(t, dir, pub, "", "")
	want := filepath.Join(dir, "generated.rpz") + ":4: $GENERATE directive not allowed"
	testenv.Eventually(t, 10*time.Second, "the log says "+want, func() bool { return strings.Contains(res.logs.String(), want) })
	r, err := query(res.addr, "g0-7.gen.example.", dns.TypeA)
	if err != nil || r.Rcode == dns.RcodeNameError {
		t.Errorf("a name the $GENERATE lines would block: %v %v", r, err)
	}
}

// TestOtherOpcodes sends a listed name to regblockd, in front of an
// upstream that answers anything, under every opcode but QUERY and as the
// second of two questions: none of the answers carries the upstream's
// address.
func TestOtherOpcodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, _, pub := signedList(t)
	up := upstreamtest.Start(t)
	addr := runResolver(t, dir, pub, "", up.Addr).addr
	exchange := func(m *dns.Msg) *dns.Msg {
		t.Helper()
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("opcode %d, %d questions: %v", m.Opcode, len(m.Question), err)
		}
		return r
	}
	for opcode := 1; opcode < 16; opcode++ {
		m := new(dns.Msg).SetQuestion("abuse.example.", dns.TypeA)
		m.Opcode = opcode
		if r := exchange(m); strings.Contains(fmt.Sprint(r.Answer), upstreamtest.Answer) || r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("opcode %d for a listed name: rcode %s, answer %v; want NOTIMP and no upstream answer", opcode, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
	m := new(dns.Msg).SetQuestion("unlisted.test.", dns.TypeA)
	m.Question = append(m.Question, dns.Question{Name: "abuse.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	if r := exchange(m); strings.Contains(fmt.Sprint(r.Answer), upstreamtest.Answer) || r.Rcode != dns.RcodeFormatError {
		t.Errorf("a listed name as the second question: rcode %s, answer %v; want FORMERR", dns.RcodeToString[r.Rcode], r.Answer)
	}
	// A standard query still passes and still blocks.
	if r := exchange(new(dns.Msg).SetQuestion("unlisted.test.", dns.TypeA)); len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), upstreamtest.Answer) {
		t.Errorf("unlisted.test: %v, want the upstream's answer", r.Answer)
	}
}

// TestAnswersCarryNoListedRecords has an upstream answer unlisted names
// with records that hand a client a listed name or address in other ways
// than a CNAME or an A record of the answer: additional records, HTTPS
// hints and targets, a DNAME without the CNAME it stands for. regblockd
// blocks or strips each, and leaves alone what only looks alike: with
// address entries in the list, and without (where most answers skip the
// checks).
func TestAnswersCarryNoListedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	t.Run("names-and-addresses", func(t *testing.T) { testAnswersCarryNoListedRecords(t, true) })
	t.Run("names-only", func(t *testing.T) { testAnswersCarryNoListedRecords(t, false) })
}

func testAnswersCarryNoListedRecords(t *testing.T, addrs bool) {
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	list := `#! regblock-list 1
#! name: answers
#! serial: 1
#! issued: 2026-11-28T06:00:00Z
abuse.example ORDER-1 csam
=exact.example ORDER-2
`
	if addrs {
		list += "ip:198.51.100.0/24 ORDER-3\nip:2001:db8:9::/48 ORDER-4\n"
	}
	key.WriteList(t, dir, "answers.list", list)
	pub := key.WritePublic(t, t.TempDir())
	up := upstreamtest.Start(t)
	up.SetReply("mx.test.", []string{"mx.test. 60 IN MX 10 mail.abuse.example."},
		[]string{"mail.abuse.example. 60 IN A 192.0.2.1", "mail.abuse.example. 60 IN AAAA 2001:db8::1", "other.test. 60 IN A 192.0.2.2"})
	up.SetReply("ns.test.", []string{"ns.test. 60 IN NS ns1.glue.test."}, []string{"ns1.glue.test. 60 IN A 198.51.100.7"})
	up.SetReply("hint.test.", []string{"hint.test. 60 IN HTTPS 1 . alpn=h2 ipv4hint=198.51.100.9"}, nil)
	up.SetReply("hint6.test.", []string{"hint6.test. 60 IN SVCB 1 . ipv6hint=2001:db8:9::9"}, nil)
	up.SetReply("target.test.", []string{"target.test. 60 IN HTTPS 1 cdn.abuse.example. alpn=h2"}, nil)
	up.SetReply("www.dname.test.", []string{"dname.test. 60 IN DNAME abuse.example.", "www.dname.test. 60 IN A 192.0.2.1"}, nil)
	up.SetReply("www.exact.test.", []string{"exact.test. 60 IN DNAME exact.example.", "www.exact.test. 60 IN CNAME www.exact.example.", "www.exact.example. 60 IN A 192.0.2.1"}, nil)
	addr := runResolver(t, dir, pub, "", up.Addr).addr
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		r, err := query(addr, name, qtype)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	text := func(rrs []dns.RR) string { return fmt.Sprint(rrs) }

	r := ask("mx.test.", dns.TypeMX)
	if len(r.Answer) != 1 || strings.Contains(text(r.Extra), "mail.abuse.example") || !strings.Contains(text(r.Extra), "other.test") {
		t.Errorf("MX with a listed exchanger: answer %v, additional %v; want the MX, and only other.test's address", r.Answer, r.Extra)
	}
	if r := ask("ns.test.", dns.TypeNS); len(r.Answer) != 1 || strings.Contains(text(r.Extra), "198.51.100.7") == addrs {
		t.Errorf("glue in a prefix listed (%v): answer %v, additional %v; want the NS, and the glue only when its prefix is not listed", addrs, r.Answer, r.Extra)
	}
	names := []string{"target.test."}
	if addrs {
		names = append(names, "hint.test.", "hint6.test.")
	} else if r := ask("hint.test.", dns.TypeHTTPS); len(r.Answer) != 1 || ede(r) != nil {
		t.Errorf("hint.test. without address entries: %v, want the upstream's answer", r)
	}
	for _, name := range names {
		qtype := dns.TypeHTTPS
		if name == "hint6.test." {
			qtype = dns.TypeSVCB
		}
		r := ask(name, qtype)
		if len(r.Answer) != 0 || ede(r) == nil || ede(r).InfoCode != dns.ExtendedErrorCodeCensored {
			t.Errorf("%s: %v, want the block answer (NODATA with EDE Censored)", name, r)
		}
	}
	if r := ask("www.dname.test.", dns.TypeA); len(r.Answer) != 1 || !strings.Contains(text(r.Answer), "192.0.2.80") {
		t.Errorf("a DNAME into a listed zone without its CNAME: %v, want the notice address", r.Answer)
	}
	if r := ask("www.exact.test.", dns.TypeA); !strings.Contains(text(r.Answer), "192.0.2.1") || ede(r) != nil {
		t.Errorf("a DNAME to a name listed exactly, which www.exact.example is not: %v, want the upstream's answer", r.Answer)
	}
}

// TestMetricCardinality fills a lists directory with files that never
// become a list in force, under made-up names: they are counted under one
// bounded label and add no series of their own.
func TestMetricCardinality(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	other := blocklisttest.NewKey(t)
	const files = 40
	for i := range files {
		name := fmt.Sprintf("made-up-%d", i)
		if i%2 == 0 { // signed by a key nobody trusts
			other.WriteList(t, dir, name+".list", strings.Replace(list, "name: e2e", "name: "+name, 1))
		} else { // garbage
			os.WriteFile(filepath.Join(dir, name+".list"), []byte("garbage\n"), 0o644)
			os.WriteFile(filepath.Join(dir, name+".list.minisig"), []byte("garbage\n"), 0o644)
		}
	}
	pub := key.WritePublic(t, t.TempDir())
	body := string(scrape(t, runResolver(t, dir, pub, "", "").metrics))
	if strings.Contains(body, "made-up") {
		t.Errorf("a file that never became a list added series:\n%s", body)
	}
	if got := metricValues([]byte(body))[`coredns_regblock_reloads_total{list="unknown",result="bad_signature"}`]; got != files {
		t.Errorf("reloads_total{list=\"unknown\",result=\"bad_signature\"} = %v, want %d", got, files)
	}
}

// TestIssuedInTheFuture publishes a version that says it was issued a day
// from now: regblockd refuses it, keeps the version in force, and the
// enforcement delay stays what it was (a negative one would hide a late
// list from its alert).
func TestIssuedInTheFuture(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, key, pub := signedList(t)
	res := runResolver(t, dir, pub, "", "")
	logs, metrics := res.logs, res.metrics
	delay := `coredns_regblock_list_enforcement_delay_seconds{list="e2e"}`
	before := metricValues(scrape(t, metrics))[delay]
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.RFC3339)
	future := strings.NewReplacer("serial: 3", "serial: 4", "issued: 2026-11-28T06:00:00Z", "issued: "+tomorrow).Replace(list) + "future.example\n"
	staged := t.TempDir()
	key.WriteList(t, staged, "e2e.list", future)
	for _, f := range []string{"e2e.list.minisig", "e2e.list"} {
		if err := os.Rename(filepath.Join(staged, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the version from the future is refused", func() bool {
		return strings.Contains(logs.String(), "issued in the future")
	})
	after := metricValues(scrape(t, metrics))
	if after[`coredns_regblock_list_serial{list="e2e"}`] != 3 || after[delay] != before || before <= 0 {
		t.Errorf("serial %v, delay %v (before %v); want serial 3 and the delay unchanged", after[`coredns_regblock_list_serial{list="e2e"}`], after[delay], before)
	}
	if after[`coredns_regblock_reloads_total{list="e2e",result="parse_error"}`] != 1 {
		t.Errorf("the refusal is not counted as parse_error")
	}
	if r, err := query(res.addr, "future.example.", dns.TypeA); err == nil && len(r.Answer) == 1 {
		t.Error("a name of the refused version is blocked")
	}
}

// TestHighWaterMarks deletes a list in force, then offers an older signed
// version under another file name, before and after a restart: with
// state, the highest serial ever accepted for a list's name is kept for
// good, so the older version is a rollback whatever file it comes in.
func TestHighWaterMarks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	dir, state := t.TempDir(), t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list) // serial 3
	pub := key.WritePublic(t, t.TempDir())
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80
        state `+state+`
    }
}
`), 0o644)
	start := func() (*exec.Cmd, *testenv.Output) {
		cmd := exec.Command(bin, "-conf", conf)
		logs := testenv.Process(t, "regblockd", cmd)
		testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool {
			_, err := query(addr, "abuse.example.", dns.TypeA)
			return err == nil
		})
		return cmd, logs
	}
	blocked := func(name string) bool {
		r, err := query(addr, name, dns.TypeA)
		return err == nil && len(r.Answer) == 1
	}
	older := strings.Replace(list, "serial: 3", "serial: 2", 1) + "older.example\n"

	cmd, logs := start()
	os.Remove(filepath.Join(dir, "e2e.list"))
	os.Remove(filepath.Join(dir, "e2e.list.minisig"))
	testenv.Eventually(t, 10*time.Second, "the deleted list is unloaded", func() bool { return !blocked("abuse.example.") })
	key.WriteList(t, dir, "renamed.list", older)
	testenv.Eventually(t, 10*time.Second, "the older version is refused as a rollback", func() bool {
		return strings.Contains(logs.String(), "rejected (rollback)")
	})
	if blocked("older.example.") {
		t.Error("an older version is enforced after its list was deleted")
	}

	cmd.Process.Kill()
	cmd.Wait()
	_, logs = start()
	if blocked("older.example.") || !strings.Contains(logs.String(), "rejected (rollback)") {
		t.Errorf("after a restart the older version is enforced, or not refused:\n%s", logs)
	}
	key.WriteList(t, dir, "renamed.list", strings.Replace(list, "serial: 3", "serial: 4", 1)+"newer.example\n")
	testenv.Eventually(t, 10*time.Second, "a newer version is applied", func() bool { return blocked("newer.example.") })
}
