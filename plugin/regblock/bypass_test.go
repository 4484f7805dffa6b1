package regblock

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	plugintest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// upstreamChain is a next plugin that answers every query with the given
// records (owner names as written) and an A record at the end of the chain.
func upstreamChain(rrs ...string) plugintest.Handler {
	return plugintest.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg).SetReply(r)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
}

// TestRedirectsBounded: an answer that leads to more names than any
// resolver follows (redirect records past maxRedirects, DNAMEs past
// maxDNAMEs, DNAMEs that make ever longer names) is refused with SERVFAIL
// rather than checked name by name; one at the limits passes unchanged.
func TestRedirectsBounded(t *testing.T) {
	cnames := func(n int) []string { // cloak.test. -> c1.test. -> ... -> cN.test.
		var rrs []string
		for i := range n {
			from := "cloak.test."
			if i > 0 {
				from = fmt.Sprintf("c%d.test.", i)
			}
			rrs = append(rrs, fmt.Sprintf("%s 60 IN CNAME c%d.test.", from, i+1))
		}
		return rrs
	}
	dnames := func(n int) []string { // unrelated to the chain: each is tried on every name
		var rrs []string
		for i := range n {
			rrs = append(rrs, fmt.Sprintf("d%d.invalid. 60 IN DNAME e%d.invalid.", i, i))
		}
		return rrs
	}
	for _, tc := range []struct {
		name    string
		chain   []string
		refused bool
	}{
		{"at the limits", append(cnames(maxRedirects-1), dnames(maxDNAMEs)...), false},
		{"one redirect too many", cnames(maxRedirects), true},
		{"one DNAME too many", dnames(maxDNAMEs + 1), true},
		{"a DNAME below its own owner", []string{"test. 60 IN DNAME a.test."}, true},
		{"a DNAME of the root to a TLD, whose names pass 255 octets in 49 steps", []string{". 60 IN DNAME test."}, false},
		{"thousands of each", append(cnames(2000), dnames(2000)...), true},
		{"one DNAME, repeated past the limit", slices.Repeat([]string{"d0.invalid. 60 IN DNAME e0.invalid."}, maxDNAMEs+1), true},
		{"a DNAME that makes names past 255 octets", []string{"test. 60 IN DNAME " + strings.Repeat("\\200", 62) + "." + strings.Repeat("\\200", 62) + ".test."}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := newFixture(t).plugin(t, "notice 192.0.2.80")
			rb.Next = upstreamChain(tc.chain...)
			rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
			if _, err := rb.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("cloak.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			m := rec.Msg
			switch {
			case tc.refused && (m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0):
				t.Errorf("want SERVFAIL, got %s with %d answer records", dns.RcodeToString[m.Rcode], len(m.Answer))
			case !tc.refused && (m.Rcode != dns.RcodeSuccess || len(m.Answer) != len(tc.chain)):
				t.Errorf("want the upstream's answer, got %s with %d answer records", dns.RcodeToString[m.Rcode], len(m.Answer))
			}
		})
	}
}

// TestCNAMECloaking: an unlisted name whose upstream answer leads, through
// CNAMEs or a DNAME at any depth, to a listed name gets the block answer.
func TestCNAMECloaking(t *testing.T) {
	tests := []struct {
		name    string
		chain   []string
		blocked bool
		zone    string // owner of the SOA of a negative block answer
	}{
		{"direct CNAME", []string{"cloak.test. 60 IN CNAME www.abuse.example.", "www.abuse.example. 60 IN A 192.0.2.1"}, true, "abuse.example."},
		{"deep chain", []string{"cloak.test. 60 IN CNAME hop1.test.", "hop1.test. 60 IN CNAME hop2.test.", "hop2.test. 60 IN CNAME x.bulk.example.", "x.bulk.example. 60 IN A 192.0.2.1"}, true, "bulk.example."},
		{"DNAME", []string{"test. 60 IN DNAME abuse.example.", "cloak.test. 60 IN CNAME cloak.abuse.example.", "cloak.abuse.example. 60 IN A 192.0.2.1"}, true, "abuse.example."},
		{"DNAMEs in a chain, without their CNAMEs", []string{"test. 60 IN DNAME hop.invalid.", "hop.invalid. 60 IN DNAME abuse.example.", "cloak.abuse.example. 60 IN A 192.0.2.1"}, true, "abuse.example."},
		{"a CNAME, then DNAMEs in a chain", []string{"cloak.test. 60 IN CNAME x.hop.invalid.", "hop.invalid. 60 IN DNAME hop2.invalid.", "hop2.invalid. 60 IN DNAME abuse.example."}, true, "abuse.example."},
		{"a DNAME of the root", []string{". 60 IN DNAME abuse.example.", "cloak.test.abuse.example. 60 IN A 192.0.2.1"}, true, "abuse.example."},
		{"a DNAME to the root, through a CNAME", []string{"cloak.test. 60 IN CNAME abuse.example.hop.invalid.", "hop.invalid. 60 IN DNAME .", "abuse.example. 60 IN A 192.0.2.1"}, true, "abuse.example."},
		{"mixed case target", []string{"cloak.test. 60 IN CNAME WWW.ABUSE.Example.", "WWW.ABUSE.Example. 60 IN A 192.0.2.1"}, true, "ABUSE.Example."},
		{"unlisted chain", []string{"cloak.test. 60 IN CNAME cdn.test.", "cdn.test. 60 IN A 192.0.2.1"}, false, ""},
		{"to an exception", []string{"cloak.test. 60 IN CNAME help.abuse.example.", "help.abuse.example. 60 IN A 192.0.2.1"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, notice := range []string{"notice 192.0.2.80", ""} {
				f := newFixture(t)
				audit := filepath.Join(t.TempDir(), "audit.jsonl")
				rb := f.plugin(t, notice+"\naudit "+audit)
				rb.Next = upstreamChain(tc.chain...)
				req := new(dns.Msg).SetQuestion("cloak.test.", dns.TypeA)
				req.SetEdns0(1232, false)
				rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
				if _, err := rb.ServeDNS(context.Background(), rec, req); err != nil {
					t.Fatal(err)
				}
				m := rec.Msg
				switch {
				case !tc.blocked && (len(m.Answer) != len(tc.chain) || ede(m) != ""):
					t.Errorf("%q: an unlisted chain was changed: %v", notice, m)
				case tc.blocked && notice != "" && (len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.80" || m.Answer[0].Header().Name != "cloak.test."):
					t.Errorf("%q: cloaked name not answered with the notice address: %v", notice, m.Answer)
				case tc.blocked && notice == "" && (m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 || m.Ns[0].Header().Name != tc.zone):
					t.Errorf("%q: cloaked name not NXDOMAIN with the SOA of %s: %v", notice, tc.zone, m)
				case tc.blocked && !strings.Contains(ede(m), "list test-csam"):
					t.Errorf("%q: no EDE naming the list: %q", notice, ede(m))
				}
				rb.shutdown()
				if tc.blocked {
					events := readEvents(t, audit)
					if last := events[len(events)-1]; last.Event != ledger.Block || last.QName != "cloak.test." || !strings.HasSuffix(last.Pattern, strings.ToLower(strings.TrimSuffix(tc.zone, "."))) {
						t.Errorf("audit event %+v", last)
					}
				}
			}
		})
	}
}

func TestEveryQueryTypeIsBlocked(t *testing.T) {
	rb := newFixture(t).plugin(t, "notice 192.0.2.80")
	rb.Next = plugintest.NextHandler(dns.RcodeRefused, nil)
	types := []uint16{dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY, dns.TypeMX, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeCNAME, dns.TypePTR, dns.TypeCAA, 65280, 65535, 0}
	for _, qtype := range types {
		req := new(dns.Msg).SetQuestion("deep.er.than.any.entry.www.abuse.example.", qtype)
		req.SetEdns0(4096, true) // DO
		rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
		code, _ := rb.ServeDNS(context.Background(), rec, req)
		if code == dns.RcodeRefused || rec.Msg == nil {
			t.Errorf("type %d passed on", qtype)
			continue
		}
		if rec.Msg.AuthenticatedData || len(rec.Msg.Answer) != 0 || rec.Msg.Rcode != dns.RcodeSuccess || len(rec.Msg.Ns) != 1 {
			t.Errorf("type %d: %v, want NODATA with an SOA and no AD bit", qtype, rec.Msg)
		}
	}
}

func TestUnicodeListEntryBlocksPunycodeQuery(t *testing.T) {
	f := newFixture(t)
	f.key.WriteList(t, f.dir, "idn.list", "#! regblock-list 1\n#! name: idn\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\nBücher.Example\n")
	rb := f.plugin(t, "notice 192.0.2.80")
	for _, q := range []string{"xn--bcher-kva.example.", "WWW.XN--BCHER-KVA.EXAMPLE."} {
		if _, ok := rb.index.Load().Lookup(q); !ok {
			t.Errorf("%s is not blocked by the Unicode entry", q)
		}
	}
}

func TestEncryptedDNSCanaries(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		opt := ""
		if enabled {
			opt = "encrypted_dns_canaries"
		}
		rb := newFixture(t).plugin(t, opt)
		rb.Next = plugintest.NextHandler(dns.RcodeRefused, nil)
		for _, tc := range []struct {
			name  string
			rcode int
		}{{"use-application-dns.net.", dns.RcodeNameError}, {"USE-application-DNS.net.", dns.RcodeNameError}, {"_dns.resolver.arpa.", dns.RcodeSuccess}} {
			rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
			code, _ := rb.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(tc.name, dns.TypeSVCB))
			if !enabled {
				if code != dns.RcodeRefused {
					t.Errorf("%s answered while the option is off", tc.name)
				}
				continue
			}
			if rec.Msg == nil || rec.Msg.Rcode != tc.rcode || len(rec.Msg.Answer) != 0 || len(rec.Msg.Ns) != 1 || rec.Msg.Question[0].Name != tc.name {
				t.Errorf("%s: %v, want rcode %d, no answer, an SOA", tc.name, rec.Msg, tc.rcode)
			}
		}
	}
}

// TestAuditHostileNames: names with bytes that need escaping keep the audit
// log one valid JSON object a line.
func TestAuditHostileNames(t *testing.T) {
	f := newFixture(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	rb := f.plugin(t, "audit "+audit+"\naudit_client full")
	for _, q := range []string{`a\000\010\"\\\010<script>.abuse.example.`, `\013\010\127.abuse.example.`} {
		rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
		rb.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(q, dns.TypeA))
	}
	rb.shutdown()
	data, _ := os.ReadFile(audit)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), data)
	}
	for _, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("not one JSON object: %q: %v", line, err)
		}
	}
}

// TestFloodKeepsQueueBounded floods the plugin with blocked queries while
// the audit log's disk is stalled: blocked queries are still answered, the
// queue never holds more than its bound, and unlisted names still pass.
func TestFloodKeepsQueueBounded(t *testing.T) {
	f := newFixture(t)
	rb := f.plugin(t, "notice 192.0.2.80\naudit "+filepath.Join(t.TempDir(), "audit.jsonl"))
	rb.Next = plugintest.NextHandler(dns.RcodeSuccess, nil)
	rb.audit.mu.Lock() // the disk stalls
	defer rb.audit.mu.Unlock()
	w := &plugintest.ResponseWriter{RemoteIP: "192.0.2.9"}
	for i := range 3 * auditQueue {
		name := "www.abuse.example."
		if i%2 == 1 {
			name = "pass.test."
		}
		code, err := rb.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion(name, dns.TypeA))
		if err != nil || code != dns.RcodeSuccess {
			t.Fatalf("query %d (%s) failed: %d %v", i, name, code, err)
		}
		if n := len(rb.audit.queue); n > auditQueue {
			t.Fatalf("audit queue holds %d, bound %d", n, auditQueue)
		}
	}
}

// TestExtraBounded: of an answer's additional records, those owned by a
// listed name go; past maxExtra (not counting OPT) all go, unchecked, and
// the OPT record stays.
func TestExtraBounded(t *testing.T) {
	for _, n := range []int{maxExtra, maxExtra + 1, 4000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rb := newFixture(t).plugin(t, "notice 192.0.2.80")
			rb.Next = plugintest.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				m := new(dns.Msg).SetReply(r)
				m.Answer = append(m.Answer, plugintest.A("mail.test. 60 IN A 192.0.2.1"))
				m.Extra = append(m.Extra, plugintest.A("abuse.example. 60 IN A 192.0.2.2")) // listed
				for i := range n - 1 {
					m.Extra = append(m.Extra, plugintest.A(fmt.Sprintf("ns%d.test. 60 IN A 192.0.2.3", i)))
				}
				m.SetEdns0(1232, false)
				w.WriteMsg(m)
				return dns.RcodeSuccess, nil
			})
			rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
			req := new(dns.Msg).SetQuestion("mail.test.", dns.TypeA)
			if _, err := rb.ServeDNS(context.Background(), rec, req); err != nil {
				t.Fatal(err)
			}
			m := rec.Msg
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.IsEdns0() == nil {
				t.Fatalf("got %s, %d answer records, OPT %v; want the upstream's answer with its OPT", dns.RcodeToString[m.Rcode], len(m.Answer), m.IsEdns0() != nil)
			}
			want := n // all but the listed one, and the OPT
			if n > maxExtra {
				want = 1
			}
			if len(m.Extra) != want {
				t.Errorf("%d additional records, want %d", len(m.Extra), want)
			}
			for _, rr := range m.Extra {
				if rr.Header().Name == "abuse.example." {
					t.Errorf("the listed name's record stayed: %s", rr)
				}
			}
		})
	}
}

// TestExtraAddressesBounded: additional records that hold more than
// maxExtraAddrs addresses (HTTPS hints count one each) all go, unchecked;
// at the limit they are checked, and those of a listed name go.
func TestExtraAddressesBounded(t *testing.T) {
	https := func(owner string, hints int) dns.RR {
		var ips []net.IP
		for i := range hints {
			ips = append(ips, net.IPv4(192, 0, 2, byte(i)).To4())
		}
		return &dns.HTTPS{SVCB: dns.SVCB{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 60},
			Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{&dns.SVCBIPv4Hint{Hint: ips}}}}
	}
	for _, tc := range []struct {
		hints, want int // hints in each of 8 records, additional records left (OPT included)
	}{{maxExtraAddrs / 8, 8}, {maxExtraAddrs/8 + 1, 1}} {
		t.Run(fmt.Sprint(tc.hints), func(t *testing.T) {
			rb := newFixture(t).plugin(t, "notice 192.0.2.80")
			rb.Next = plugintest.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
				m := new(dns.Msg).SetReply(r)
				m.Answer = append(m.Answer, plugintest.A("mail.test. 60 IN A 192.0.2.1"))
				m.Extra = append(m.Extra, https("abuse.example.", tc.hints)) // listed
				for i := range 7 {
					m.Extra = append(m.Extra, https(fmt.Sprintf("svc%d.test.", i), tc.hints))
				}
				m.SetEdns0(1232, false)
				w.WriteMsg(m)
				return dns.RcodeSuccess, nil
			})
			rec := dnstest.NewRecorder(&plugintest.ResponseWriter{})
			if _, err := rb.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("mail.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			if m := rec.Msg; len(m.Answer) != 1 || m.IsEdns0() == nil || len(m.Extra) != tc.want {
				t.Errorf("%d answer records, %d additional, OPT %v; want 1, %d, true", len(m.Answer), len(m.Extra), m.IsEdns0() != nil, tc.want)
			}
		})
	}
}
