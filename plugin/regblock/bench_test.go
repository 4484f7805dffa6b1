package regblock

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	plugintest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// nopWriter is a ResponseWriter that discards answers, so that benchmarks
// measure the plugin rather than a recorder.
type nopWriter struct{ plugintest.ResponseWriter }

func (nopWriter) WriteMsg(*dns.Msg) error { return nil }

// BenchmarkServeDNS measures a passed query (the cost regblock adds to every
// query that is not blocked: counter, lookup, the CNAME-cloaking writer
// (one 48-byte allocation), hand-off (CoreDNS's plugin.NextOrFailure
// allocates the other)) and a blocked one.
func BenchmarkServeDNS(b *testing.B) {
	f := newFixture(b)
	rb := f.plugin(b, "notice 192.0.2.80")
	rb.Next = plugintest.NextHandler(dns.RcodeSuccess, nil)
	w := &nopWriter{}
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
	for _, name := range []string{"www.unlisted.test.", "www.abuse.example."} {
		req := new(dns.Msg).SetQuestion(name, dns.TypeA)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rb.ServeDNS(ctx, w, req)
			}
		})
	}
}

// BenchmarkServeDNSHashed compares a hashed list with the plain list it
// is the hash of, 100 k entries each: a passed name of 5 labels costs a
// hashed list one SHA-256 a suffix, and a blocked one as many as it takes
// to reach the listed name.
func BenchmarkServeDNSHashed(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("#! regblock-list 1\n#! name: test-csam\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n")
	for i := range 100_000 {
		fmt.Fprintf(&sb, "s%07d.host%03d.example ORDER-%05d csam\n", i, i%997, i%20000)
	}
	plain, err := blocklist.Parse("plain.list", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	hashed, err := blocklist.Hash(plain, bytes.Repeat([]byte{7}, blocklist.SaltSize))
	if err != nil {
		b.Fatal(err)
	}
	var hashedText bytes.Buffer
	blocklist.Write(&hashedText, hashed)
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
	for _, list := range []struct{ name, text string }{{"plain", sb.String()}, {"hashed", hashedText.String()}} {
		f := newFixture(b)
		f.key.WriteList(b, f.dir, "test-csam.list", list.text)
		rb := f.plugin(b, "notice 192.0.2.80")
		rb.Next = plugintest.NextHandler(dns.RcodeSuccess, nil)
		w := &nopWriter{}
		for _, q := range []struct{ what, name string }{{"passed", "a.b.www.unlisted.test."}, {"blocked", "a.b.s0000042.host042.example."}} {
			req := new(dns.Msg).SetQuestion(q.name, dns.TypeA)
			b.Run(list.name+"/"+q.what, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rb.ServeDNS(ctx, w, req)
				}
			})
		}
	}
}

// BenchmarkQueriesCounter compares the cached per-server counter with
// looking it up by label value on each query.
func BenchmarkQueriesCounter(b *testing.B) {
	var c serverCounters
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			c.get("dns://:53").Inc()
		}
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		for b.Loop() {
			queriesTotal.WithLabelValues("dns://:53").Inc()
		}
	})
}

// BenchmarkCloakCheck measures what checking a passed answer costs: an
// answer of a CNAME and two A records, with an OPT record in the additional
// section, through the cloaking writer, with lists without and with
// address entries.
func BenchmarkCloakCheck(b *testing.B) {
	var answer []dns.RR
	for _, text := range []string{"www.unlisted.test. 60 IN CNAME cdn.unlisted.test.", "cdn.unlisted.test. 60 IN A 192.0.2.1", "cdn.unlisted.test. 60 IN A 192.0.2.2"} {
		rr, err := dns.NewRR(text)
		if err != nil {
			b.Fatal(err)
		}
		answer = append(answer, rr)
	}
	upstream := plugintest.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg).SetReply(r)
		m.Answer, m.Extra = answer, r.Extra // read only: the writer copies what it changes
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
	for _, extra := range []string{"", "ip:198.51.100.0/24\n"} {
		f := newFixture(b)
		f.key.WriteList(b, f.dir, "test-csam.list", testList+extra)
		rb := f.plugin(b, "notice 192.0.2.80")
		rb.Next = upstream
		w := &nopWriter{}
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
		req := new(dns.Msg).SetQuestion("www.unlisted.test.", dns.TypeA)
		req.SetEdns0(1232, false)
		name := "names"
		if extra != "" {
			name = "names+addresses"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rb.ServeDNS(ctx, w, req)
			}
		})
	}
}

// BenchmarkAddressHeavyAnswer measures the check of answers a hostile
// upstream makes to cost the most, with a list that holds an address
// prefix and excepts a name under which the owners are 120 labels long:
// 3 900 A records in the prefix for such a query name (a 62 KB answer),
// and 64 HTTPS records of such an owner with 200 address hints each in
// the additional section (which goes, past maxExtraAddrs).
func BenchmarkAddressHeavyAnswer(b *testing.B) {
	long := strings.Repeat("a.", 115) + "help.abuse.example."
	addr := func(i int) net.IP { return net.IPv4(203, 0, 113, byte(i)).To4() }
	for _, tc := range []struct {
		name, qname string
		fill        func(m *dns.Msg)
	}{
		{"3900-answer-addresses", long, func(m *dns.Msg) {
			for i := range 3900 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: long, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: addr(i)})
			}
		}},
		{"64x200-additional-hints", "mail.test.", func(m *dns.Msg) {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "mail.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1).To4()})
			var hints []net.IP
			for i := range 200 {
				hints = append(hints, addr(i))
			}
			for range 64 {
				m.Extra = append(m.Extra, &dns.HTTPS{SVCB: dns.SVCB{Hdr: dns.RR_Header{Name: long, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 60},
					Priority: 1, Target: ".", Value: []dns.SVCBKeyValue{&dns.SVCBIPv4Hint{Hint: hints}}}})
			}
		}},
	} {
		f := newFixture(b)
		f.key.WriteList(b, f.dir, "test-csam.list", testList+"ip:203.0.113.0/24 ORDER-IP csam\n")
		rb := f.plugin(b, "notice 192.0.2.80")
		answer := new(dns.Msg)
		tc.fill(answer)
		rb.Next = plugintest.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			m := new(dns.Msg).SetReply(r)
			m.Answer, m.Extra = answer.Answer, answer.Extra // read only: the writer copies what it changes
			w.WriteMsg(m)
			return dns.RcodeSuccess, nil
		})
		req := new(dns.Msg).SetQuestion(tc.qname, dns.TypeA)
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				rb.ServeDNS(ctx, &nopWriter{}, req)
			}
		})
	}
}
