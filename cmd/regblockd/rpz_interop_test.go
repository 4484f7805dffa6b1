package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// interopList has every kind of entry, nested so that precedence matters.
const interopList = `#! regblock-list 1
#! name: interop
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
#! canary: canary.interop.regblock.test
abuse.example             ORDER-1 csam
!help.abuse.example       ORDER-2
=deep.help.abuse.example  ORDER-3
=exact.example
=a.b.abuse.example        ORDER-5
*.below.example
bulk.example
!=open.bulk.example
!*.kept.bulk.example
ip:203.0.113.0/24         ORDER-4
!ip:203.0.113.128/25
ip:2001:db8:bad::/48
`

// bindZone is an RPZ zone as a BIND operator writes it, with each action.
const bindZone = `;$ issuer: Example Threat Feed
$TTL 300
$ORIGIN rpz.feed.example.
@ SOA ns.feed.example. hostmaster.feed.example. ( 7 3600 600 86400 300 )
@ NS ns.feed.example.
abuse.example          CNAME .
*.abuse.example        CNAME .
help.abuse.example     CNAME rpz-passthru.
nodata.example         CNAME *.
drop.example           CNAME rpz-drop.
local.example          A     192.0.2.10
local.example          AAAA  2001:db8::10
*.wild.example         CNAME .
pass.wild.example      CNAME rpz-passthru.
nd.wild.example        CNAME *.
*.c.wild.example       CNAME *.
*.ent.example          CNAME .
a.b.ent.example        CNAME *.
24.0.113.0.203.rpz-ip  CNAME .
25.128.113.0.203.rpz-ip CNAME rpz-passthru.
48.zz.bad.db8.2001.rpz-ip CNAME *.
`

// interopQueries are asked of both resolvers. The upstream answers the
// names under ip.test with the addresses setUpstream gives them.
var interopQueries = []struct {
	name  string
	qtype uint16
}{
	{"abuse.example.", dns.TypeA}, {"www.abuse.example.", dns.TypeA}, {"a.b.abuse.example.", dns.TypeA},
	{"abuse.example.", dns.TypeAAAA}, {"abuse.example.", dns.TypeTXT},
	{"help.abuse.example.", dns.TypeA}, {"x.help.abuse.example.", dns.TypeA},
	{"deep.help.abuse.example.", dns.TypeA}, {"x.deep.help.abuse.example.", dns.TypeA},
	{"exact.example.", dns.TypeA}, {"www.exact.example.", dns.TypeA},
	{"below.example.", dns.TypeA}, {"www.below.example.", dns.TypeA}, {"a.b.below.example.", dns.TypeA},
	{"bulk.example.", dns.TypeA}, {"open.bulk.example.", dns.TypeA}, {"x.open.bulk.example.", dns.TypeA},
	{"kept.bulk.example.", dns.TypeA}, {"x.kept.bulk.example.", dns.TypeA},
	{"canary.interop.regblock.test.", dns.TypeA},
	{"nodata.example.", dns.TypeA}, {"www.nodata.example.", dns.TypeA},
	{"local.example.", dns.TypeA}, {"local.example.", dns.TypeAAAA}, {"local.example.", dns.TypeMX},
	{"wild.example.", dns.TypeA}, {"a.wild.example.", dns.TypeA}, {"a.b.wild.example.", dns.TypeA},
	{"pass.wild.example.", dns.TypeA}, {"x.pass.wild.example.", dns.TypeA},
	{"nd.wild.example.", dns.TypeA}, {"x.nd.wild.example.", dns.TypeA},
	{"c.wild.example.", dns.TypeA}, {"x.c.wild.example.", dns.TypeA}, {"x.y.c.wild.example.", dns.TypeA},
	{"b.abuse.example.", dns.TypeA}, {"x.b.abuse.example.", dns.TypeA}, {"a.b.abuse.example.", dns.TypeA},
	{"ent.example.", dns.TypeA}, {"y.ent.example.", dns.TypeA}, {"b.ent.example.", dns.TypeA},
	{"x.b.ent.example.", dns.TypeA}, {"a.b.ent.example.", dns.TypeA}, {"z.a.b.ent.example.", dns.TypeA},
	{"unlisted.test.", dns.TypeA},
	{"blocked.ip.test.", dns.TypeA}, {"excepted.ip.test.", dns.TypeA}, {"mixed.ip.test.", dns.TypeA},
	{"v6.ip.test.", dns.TypeAAAA}, {"clean.ip.test.", dns.TypeA},
	{"drop.example.", dns.TypeA},
}

func setUpstream(up *upstreamtest.Upstream) {
	up.SetAddrs("blocked.ip.test.", "203.0.113.5")
	up.SetAddrs("excepted.ip.test.", "203.0.113.200")
	up.SetAddrs("mixed.ip.test.", "192.0.2.1", "203.0.113.6")
	up.SetAddrs("v6.ip.test.", "2001:db8:bad::1")
	up.SetAddrs("clean.ip.test.", "198.51.100.1")
	up.SetAddrs("help.abuse.example.", "203.0.113.9") // a QNAME passthru goes before an IP trigger
}

// TestRPZInterop checks both directions of RPZ interoperability against a
// real Unbound (and BIND) started on a loopback port: a list exported with
// "regblock export" is enforced by Unbound and BIND as regblockd enforces
// the list, and a BIND-style RPZ zone signed with stock minisign is
// enforced by regblockd as Unbound enforces it. Each query's outcome (rcode
// and answer records, or no answer at all) must be the same from both.
func TestRPZInterop(t *testing.T) {
	unbound := testenv.Need(t, "unbound", "unbound")
	toolkit, err := testenv.Build(t.TempDir(), "../regblock", "regblock")
	if err != nil {
		t.Fatal(err)
	}
	up := upstreamtest.Start(t)
	setUpstream(up)

	// export writes interopList, signed, into a new directory and exports
	// it with regblock export; it returns the directory, the public key
	// and the zone.
	export := func(t *testing.T) (dir, pub, zone string) {
		dir = t.TempDir()
		key := blocklisttest.NewKey(t)
		pub = key.WritePublic(t, t.TempDir())
		list := key.WriteList(t, dir, "interop.list", interopList)
		zone = filepath.Join(t.TempDir(), "interop.rpz")
		if out, err := exec.Command(toolkit, "export", "-format", "rpz", "-p", pub, "-notice", "192.0.2.80", "-o", zone, list).CombinedOutput(); err != nil {
			t.Fatalf("regblock export: %v\n%s", err, out)
		}
		return dir, pub, zone
	}

	t.Run("exported list in Unbound", func(t *testing.T) {
		dir, pub, zone := export(t)
		compare(t, startRegblockdWith(t, dir, pub, up.Addr, "abuse.example."), "Unbound", startUnbound(t, unbound, zone, "interop.rpz.test.", up.Addr))
	})

	// BIND differs from Unbound on a name with no trigger but one below it
	// (BIND: no wildcard above matches it); an exported zone leaves no such
	// name under a blocking wildcard, so BIND must agree on every query.
	t.Run("exported list in BIND", func(t *testing.T) {
		named := testenv.Need(t, "named", "bind9")
		dir, pub, zone := export(t)
		compare(t, startRegblockdWith(t, dir, pub, up.Addr, "abuse.example."), "BIND", startBIND(t, named, zone, "interop.rpz.test.", up.Addr))
	})

	t.Run("BIND-style zone in regblockd", func(t *testing.T) {
		minisign := testenv.Need(t, "minisign", "minisign")
		dir, keys := t.TempDir(), t.TempDir()
		pub, sec := filepath.Join(keys, "feed.pub"), filepath.Join(keys, "feed.key")
		zone := filepath.Join(dir, "feed.rpz")
		if err := os.WriteFile(zone, []byte(bindZone), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"-G", "-W", "-p", pub, "-s", sec}, {"-S", "-s", sec, "-m", zone}} {
			if out, err := exec.Command(minisign, args...).CombinedOutput(); err != nil {
				t.Fatalf("minisign %v: %v\n%s", args, err, out)
			}
		}
		compare(t, startRegblockdWith(t, dir, pub, up.Addr, "abuse.example."), "Unbound", startUnbound(t, unbound, zone, "rpz.feed.example.", up.Addr))
	})
}

// compare asks regblockd and the other resolver every interop query and
// reports each whose outcome differs.
func compare(t *testing.T, regblockd, name, other string) {
	t.Helper()
	blocked := 0
	for _, q := range interopQueries {
		want, got := outcome(other, q.name, q.qtype), outcome(regblockd, q.name, q.qtype)
		if got != want {
			t.Errorf("%s %s: regblockd %s, %s %s", q.name, dns.TypeToString[q.qtype], got, name, want)
		}
		if !strings.Contains(want, upstreamtest.Answer) {
			blocked++
		}
	}
	if blocked < 10 {
		t.Errorf("only %d of %d queries differ from the upstream's answer: the policy is not in force", blocked, len(interopQueries))
	}
}

// outcome is how a resolver answered: "no answer", or the rcode and the
// answer section's records without their TTLs, sorted.
func outcome(addr, name string, qtype uint16) string {
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = true
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return "no answer"
	}
	var rrs []string
	for _, rr := range r.Answer {
		rr.Header().Ttl = 0
		rrs = append(rrs, rr.String())
	}
	slices.Sort(rrs)
	return fmt.Sprintf("%s %q", dns.RcodeToString[r.Rcode], rrs)
}

// startRegblockdWith runs regblockd with the lists in dir in front of
// upstream, and returns its address.
func startRegblockdWith(t *testing.T, dir, pub, upstream, probe string) string {
	t.Helper()
	addr := "127.0.0.1:" + testenv.FreePort(t)
	testenv.Regblockd(t, bin, `.:`+strings.Split(addr, ":")[1]+` {
		bind 127.0.0.1
		regblock {
			lists `+dir+`
			pubkey `+pub+`
			notice 192.0.2.80
		}
		forward . `+upstream+`
	}`, dir, addr, probe)
	return addr
}

// startUnbound runs Unbound on a loopback port with zone loaded as the
// response policy zone name, forwarding everything to upstream, until the
// test ends; it returns Unbound's address once it answers.
func startUnbound(t *testing.T, unbound, zone, name, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "unbound.conf")
	text := fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %s
	do-daemonize: no
	chroot: ""
	username: ""
	directory: %q
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	do-ip6: no
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	module-config: "respip iterator"
	qname-minimisation: no
	minimal-responses: yes
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
	local-zone: "test." nodefault
	local-zone: "invalid." nodefault
forward-zone:
	name: "."
	forward-addr: %s
rpz:
	name: %q
	zonefile: %q
`, port, dir, strings.Replace(upstream, ":", "@", 1), name, zone)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return startServer(t, "unbound", exec.Command(unbound, "-d", "-c", conf), "127.0.0.1:"+port)
}

// startServer starts cmd, a DNS server that listens on addr, stops it when
// the test ends, logs its output if the test failed, and returns addr once
// the server enforces its policy (at most 20 s): BIND answers before its
// response policy zone is loaded, so the probe is abuse.example, which
// every policy here blocks, and an answer from the upstream does not count.
func startServer(t *testing.T, what string, cmd *exec.Cmd, addr string) string {
	t.Helper()
	testenv.Process(t, what, cmd)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	testenv.Eventually(t, 20*time.Second, what+" enforces its policy on "+addr, func() bool {
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("abuse.example.", dns.TypeA), addr)
		return err == nil && !strings.Contains(fmt.Sprint(r.Answer), upstreamtest.Answer)
	})
	return addr
}

// startBIND runs BIND's named on a loopback port with zone as its response
// policy zone name, forwarding everything to upstream, until the test
// ends; it returns named's address once it answers.
func startBIND(t *testing.T, named, zone, name, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	port := testenv.FreePort(t)
	host, upPort, _ := strings.Cut(upstream, ":")
	conf := filepath.Join(dir, "named.conf")
	text := fmt.Sprintf(`options {
	directory %q;
	pid-file none;
	listen-on port %s { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.1; };
	allow-recursion { 127.0.0.1; };
	forwarders { %s port %s; };
	forward only;
	dnssec-validation no;
	max-cache-ttl 0;
	max-ncache-ttl 0;
	response-policy { zone %q; };
};
zone %q { type primary; file %q; };
`, dir, port, host, upPort, name, name, zone)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-g", "-c", conf}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // named would switch to the user bind, who cannot read the test's files
	}
	return startServer(t, "named", exec.Command(named, args...), "127.0.0.1:"+port)
}
