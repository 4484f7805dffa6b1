package audit

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const testList = `#! regblock-list 1
#! name: test-csam
#! serial: 7
#! issued: 2026-11-28T06:00:00Z
#! expires: 2027-11-28T06:00:00Z
#! issuer: Test Authority
#! appeal: https://appeal.example/
#! canary: canary.regblock.test
abuse.example
=exact.example
`

// fakeResolver answers on a loopback UDP port until the test ends: names
// for which blocked says so get the notice address and an EDE naming
// serial, every other name NXDOMAIN.
func fakeResolver(t *testing.T, serial int, blocked func(name string) bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		if !blocked(strings.ToLower(q.Name)) {
			m.Rcode = dns.RcodeNameError
			w.WriteMsg(m)
			return
		}
		if q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 60 IN A 192.0.2.80")
			m.Answer = append(m.Answer, rr)
		}
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeCensored,
			ExtraText: fmt.Sprintf("Blocked by order of Test Authority (list test-csam serial %d)", serial)})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func run(t *testing.T, server string, canary bool) *Report {
	t.Helper()
	l, err := blocklist.Parse("test-csam.list", []byte(testList))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(Config{Server: server, Transport: "udp", Notice: []netip.Addr{netip.MustParseAddr("192.0.2.80")},
		Timeout: 2 * time.Second, Concurrency: 4, Seed: 1, Controls: []string{"control.test"}, Canary: canary}, []*blocklist.List{l})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// enforces blocks what the list blocks: abuse.example and below it, and
// exact.example alone.
func enforces(name string) bool {
	return name == "abuse.example." || strings.HasSuffix(name, ".abuse.example.") || name == "exact.example." || name == "canary.regblock.test."
}

func TestRunCompliant(t *testing.T) {
	r := run(t, fakeResolver(t, 7, enforces), false)
	if !r.Compliant || r.Passed != len(r.Probes) || r.Counts[ClassBlocked] == 0 || r.Counts[ClassNotBlocked] == 0 {
		t.Errorf("a resolver that enforces the list: compliant %v, %d of %d passed, counts %v", r.Compliant, r.Passed, len(r.Probes), r.Counts)
	}
	// Probes: each entry, a name below it, a name beside it, the control;
	// A and AAAA each.
	names := map[string]string{}
	for _, p := range r.Probes {
		names[p.Name] = p.Expect
	}
	if names["exact.example."] != ClassBlocked || names["control.test."] != ClassNotBlocked || len(r.Probes) < 10 {
		t.Errorf("probes: %v", names)
	}
	for name, expect := range names {
		if strings.HasSuffix(name, ".exact.example.") && expect != ClassNotBlocked {
			t.Errorf("%s is below an exact entry, expected %s", name, expect)
		}
	}
}

func TestRunFindsGaps(t *testing.T) {
	// Blocks the entries but not the names below abuse.example.
	r := run(t, fakeResolver(t, 7, func(name string) bool { return name == "abuse.example." || name == "exact.example." }), false)
	if r.Compliant || r.Counts[ClassNotBlocked] == 0 {
		t.Fatalf("a resolver that misses subdomains passed: %v", r.Counts)
	}
	for _, p := range r.Probes {
		if strings.HasSuffix(p.Name, ".abuse.example.") && (p.Pass || p.Got != ClassNotBlocked) {
			t.Errorf("%s %s: got %s, pass %v", p.Name, p.Type, p.Got, p.Pass)
		}
	}
	// Enforces an older version: blocked, but not by the version audited,
	// which the canary's EDE shows.
	if r = run(t, fakeResolver(t, 7, enforces), true); !r.Compliant || r.Mode != "canary" || len(r.Probes) != 2 {
		t.Errorf("canary audit of a resolver enforcing serial 7: %+v", r.Counts)
	}
	r = run(t, fakeResolver(t, 6, enforces), true)
	if r.Compliant || r.Counts[ClassBlockedOther] == 0 {
		t.Errorf("a resolver enforcing serial 6 passed an audit of serial 7: %v", r.Counts)
	}
	for _, p := range r.Probes {
		if p.Got == ClassBlockedOther && !strings.Contains(p.Detail, "serial 6 of list test-csam in force, not 7") {
			t.Errorf("%s: detail %q", p.Name, p.Detail)
		}
	}
	// A resolver that answers nothing could not be audited at all.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0") // bound, never read
	defer pc.Close()
	l, _ := blocklist.Parse("test-csam.list", []byte(testList))
	r, err := Run(Config{Server: pc.LocalAddr().String(), Transport: "udp", Timeout: 100 * time.Millisecond, Concurrency: 8}, []*blocklist.List{l})
	if err != nil || !r.Unanswered() {
		t.Errorf("a silent resolver: %v, unanswered %v", err, r != nil && r.Unanswered())
	}
}
