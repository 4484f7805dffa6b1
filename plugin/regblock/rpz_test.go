package regblock

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/upstreamtest"
)

// testRPZ is a BIND-style RPZ zone with every action and both triggers
// regblock enforces.
const testRPZ = `;$ issuer: Example Threat Feed
;$ authority: Example Act 1998, section 263(2)
$TTL 300
$ORIGIN rpz.feed.example.
@ SOA ns.feed.example. hostmaster.feed.example. 7 3600 600 86400 300
@ NS ns.feed.example.
nx.example          CNAME .               ; order=ORDER-9 category=malware
*.nx.example        CNAME .
nodata.example      CNAME *.
drop.example        CNAME rpz-drop.
local.example       A     192.0.2.10
local.example       TXT   "blocked by the feed"
cname.example       CNAME notice.feed.example.
*.wild.example      CNAME .
pass.wild.example   CNAME rpz-passthru.
24.0.113.0.203.rpz-ip         CNAME .
32.7.113.0.203.rpz-ip         CNAME rpz-passthru.
48.zz.db8.2001.rpz-ip         CNAME *.
ipsafe.example                CNAME rpz-passthru.
`

// TestRPZ runs a signed RPZ zone, next to a list in regblock's format with
// an address entry, through a real CoreDNS server in front of an upstream
// whose answers hold listed addresses.
func TestRPZ(t *testing.T) {
	f := newFixture(t)
	f.key.WriteList(t, f.dir, "feed.rpz", testRPZ)
	f.key.WriteList(t, f.dir, "addr.list", "#! regblock-list 1\n#! name: addr\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\nip:198.51.100.0/24 ORDER-5\n")
	up := upstreamtest.Start(t)
	up.SetAddrs("ipblock.test.", "192.0.2.1", "203.0.113.5")
	up.SetAddrs("ipexcept.test.", "203.0.113.7")
	up.SetAddrs("ipsafe.example.", "203.0.113.5")
	up.SetAddrs("v6.test.", "2001:db8:0:0:1::5")
	up.SetAddrs("notice-addr.test.", "198.51.100.20")
	corefile := `.:0 {
		bind 127.0.0.1
		regblock {
			lists ` + f.dir + `
			pubkey ` + f.pub + `
			notice 192.0.2.80
		}
		forward . ` + up.Addr + `
	}`
	i, udp, _, err := test.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	defer i.Stop()

	// A timeout that a loaded machine never reaches: the test is about the
	// answers, not their speed.
	c := &dns.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		qname  string
		qtype  uint16
		rcode  int
		answer string // the answers' data, blank-separated
		ede    bool
	}{
		{"nx.example.", dns.TypeA, dns.RcodeNameError, "", true},
		{"www.nx.example.", dns.TypeA, dns.RcodeNameError, "", true},
		{"nodata.example.", dns.TypeA, dns.RcodeSuccess, "", true},
		{"www.nodata.example.", dns.TypeA, dns.RcodeSuccess, upstreamtest.Answer, false}, // exact trigger only
		{"local.example.", dns.TypeA, dns.RcodeSuccess, "192.0.2.10", true},
		{"local.example.", dns.TypeTXT, dns.RcodeSuccess, `"blocked by the feed"`, true},
		{"local.example.", dns.TypeAAAA, dns.RcodeSuccess, "", true}, // local data without the type: NODATA
		{"cname.example.", dns.TypeAAAA, dns.RcodeSuccess, "notice.feed.example.", true},
		{"wild.example.", dns.TypeA, dns.RcodeSuccess, upstreamtest.Answer, false}, // *. does not match the name itself
		{"a.b.wild.example.", dns.TypeA, dns.RcodeNameError, "", true},
		{"pass.wild.example.", dns.TypeA, dns.RcodeSuccess, upstreamtest.Answer, false},
		{"x.pass.wild.example.", dns.TypeA, dns.RcodeSuccess, upstreamtest.Answer, false}, // a wildcard stops at a name below it, as in BIND and Unbound
		{"ipblock.test.", dns.TypeA, dns.RcodeNameError, "", true},
		{"ipexcept.test.", dns.TypeA, dns.RcodeSuccess, "203.0.113.7", false},
		{"ipsafe.example.", dns.TypeA, dns.RcodeSuccess, "203.0.113.5", false}, // a QNAME passthru goes before an IP trigger
		{"v6.test.", dns.TypeAAAA, dns.RcodeSuccess, "", true},
		{"notice-addr.test.", dns.TypeA, dns.RcodeSuccess, "192.0.2.80", true},
		{"abuse.example.", dns.TypeA, dns.RcodeSuccess, "192.0.2.80", true}, // the .list next to the zone
	} {
		m := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
		m.SetEdns0(1232, false)
		r, _, err := c.Exchange(m, udp)
		if err != nil {
			t.Errorf("%s %s: %v", tc.qname, dns.TypeToString[tc.qtype], err)
			continue
		}
		var answer []string
		for _, rr := range r.Answer {
			if rr.Header().Name != tc.qname {
				t.Errorf("%s: answer owned by %s", tc.qname, rr.Header().Name)
			}
			answer = append(answer, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
		if r.Rcode != tc.rcode || strings.Join(answer, " ") != tc.answer || hasCensoredEDE(r) != tc.ede {
			t.Errorf("%s %s: %s %q EDE=%v, want %s %q EDE=%v", tc.qname, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], answer, hasCensoredEDE(r), dns.RcodeToString[tc.rcode], tc.answer, tc.ede)
		}
		if tc.ede && tc.rcode != dns.RcodeSuccess || tc.ede && tc.answer == "" {
			if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("%s: negative answer without an SOA: %v", tc.qname, r.Ns)
			}
		}
	}

	// rpz-drop: no answer at all, and the upstream is not asked.
	drop := &dns.Client{Timeout: time.Second}
	if r, _, err := drop.Exchange(new(dns.Msg).SetQuestion("drop.example.", dns.TypeA), udp); err == nil {
		t.Errorf("drop.example: got an answer: %v", r)
	}
	for _, name := range up.Names() {
		if strings.HasSuffix(name, "nx.example.") || name == "drop.example." || name == "local.example." {
			t.Errorf("%s, blocked by name, reached the upstream", name)
		}
	}

	// The EDE names the zone's issuer and the order from the record's comment.
	m := new(dns.Msg).SetQuestion("nx.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, udp)
	if err != nil {
		t.Fatal(err)
	}
	if text := ede(r); !strings.Contains(text, "Example Threat Feed") || !strings.Contains(text, "order ORDER-9") || !strings.Contains(text, "list feed serial 7") {
		t.Errorf("EDE text %q", text)
	}
}

// rpzVersion is a zone of serial k blocking name (to the notice address,
// as local data, so that blocked sees it).
func rpzVersion(k int, name string) string {
	return fmt.Sprintf("$TTL 60\n@ SOA ns.feed.example. hostmaster.feed.example. %d 3600 600 86400 60\n%s A 192.0.2.80\n", k, name)
}

// TestRPZReloadAndState: a zone is hot-reloaded like a list, its copy kept
// in the state directory as NAME.rpz, and rollback refused across restarts.
func TestRPZReloadAndState(t *testing.T) {
	f := newFixture(t)
	state := filepath.Join(t.TempDir(), "state")
	f.key.WriteList(t, f.dir, "feed.rpz", rpzVersion(7, "seven.example"))
	udp := startServer(t, f, "state "+state)
	if !blocked(t, udp, "seven.example.") {
		t.Fatal("zone serial 7 not in force")
	}
	f.key.WriteList(t, f.dir, "feed.rpz", rpzVersion(8, "eight.example"))
	eventually(t, "zone serial 8 in force", func() bool { return blocked(t, udp, "eight.example.") })
	if blocked(t, udp, "seven.example.") {
		t.Error("serial 7's name still blocked after serial 8")
	}
	if _, err := os.Stat(filepath.Join(state, "feed.rpz.minisig")); err != nil {
		t.Errorf("no saved copy of the zone: %v", err)
	}

	// Restart with serial 6 on disk: the saved serial 8 stays in force.
	f.key.WriteList(t, f.dir, "feed.rpz", rpzVersion(6, "six.example"))
	rb := f.plugin(t, "state "+state)
	if _, ok := rb.index.Load().Lookup("eight.example."); !ok {
		t.Error("after a restart with an older zone on disk, serial 8 is not in force")
	}
	if _, ok := rb.index.Load().Lookup("six.example."); ok {
		t.Error("the older zone on disk was applied")
	}
}
