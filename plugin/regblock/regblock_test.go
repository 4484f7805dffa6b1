package regblock

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

const soaRR = "abuse.example. 60 IN SOA blocked.regblock.invalid. hostmaster.regblock.invalid. 2026112801 3600 600 86400 60"

func TestServeDNS(t *testing.T) {
	rb := newFixture(t).plugin(t, "notice 192.0.2.80 192.0.2.81 2001:db8::80")
	rb.Next = test.NextHandler(dns.RcodeRefused, nil) // marks a pass-through

	tests := []test.Case{
		{Qname: "abuse.example.", Qtype: dns.TypeA, RecursionAvailable: true, Answer: []dns.RR{
			test.A("abuse.example. 60 IN A 192.0.2.80"), test.A("abuse.example. 60 IN A 192.0.2.81"),
		}},
		{Qname: "www.abuse.example.", Qtype: dns.TypeAAAA, RecursionAvailable: true, Answer: []dns.RR{
			test.AAAA("www.abuse.example. 60 IN AAAA 2001:db8::80"),
		}},
		// Other types, ANY and HTTPS included: NODATA with the SOA of the listed name.
		{Qname: "abuse.example.", Qtype: dns.TypeHTTPS, RecursionAvailable: true, Ns: []dns.RR{test.SOA(soaRR)}},
		{Qname: "abuse.example.", Qtype: dns.TypeMX, RecursionAvailable: true, Ns: []dns.RR{test.SOA(soaRR)}},
		{Qname: "abuse.example.", Qtype: dns.TypeANY, RecursionAvailable: true, Ns: []dns.RR{test.SOA(soaRR)}},
		// The SOA is owned by the listed name, the query is below it.
		{Qname: "mail.abuse.example.", Qtype: dns.TypeTXT, RecursionAvailable: true, Ns: []dns.RR{test.SOA(soaRR)}},
		{Qname: "x.bulk.example.", Qtype: dns.TypeSVCB, RecursionAvailable: true, Ns: []dns.RR{
			test.SOA(strings.Replace(soaRR, "abuse.example.", "bulk.example.", 1)),
		}},
		{Qname: "canary.test-csam.regblock.test.", Qtype: dns.TypeA, RecursionAvailable: true, Answer: []dns.RR{
			test.A("canary.test-csam.regblock.test. 60 IN A 192.0.2.80"), test.A("canary.test-csam.regblock.test. 60 IN A 192.0.2.81"),
		}},
		// Not blocked: passed on to the next plugin.
		{Qname: "help.abuse.example.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "bulk.example.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "x.cdn7.hosting.example.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "unlisted.test.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.Qname+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			code, err := rb.ServeDNS(context.Background(), rec, tc.Msg())
			if err != nil {
				t.Fatal(err)
			}
			if tc.Rcode == dns.RcodeRefused {
				if code != dns.RcodeRefused || rec.Msg != nil {
					t.Fatalf("not passed on: rcode %d, wrote %v", code, rec.Msg)
				}
				return
			}
			if code != dns.RcodeSuccess {
				t.Fatalf("returned rcode %d after writing: must be RcodeSuccess", code)
			}
			if err := test.SortAndCheck(rec.Msg, tc); err != nil {
				t.Error(err)
			}
			if rec.Msg.Authoritative || rec.Msg.AuthenticatedData {
				t.Errorf("AA=%v AD=%v; a block answer is neither", rec.Msg.Authoritative, rec.Msg.AuthenticatedData)
			}
		})
	}
}

func TestServeDNSNoNotice(t *testing.T) {
	rb := newFixture(t).plugin(t, "ttl 300")
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS} {
		tc := test.Case{Qname: "www.abuse.example.", Qtype: qtype, Rcode: dns.RcodeNameError, RecursionAvailable: true,
			Ns: []dns.RR{test.SOA("abuse.example. 300 IN SOA blocked.regblock.invalid. hostmaster.regblock.invalid. 2026112801 3600 600 86400 300")}}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := rb.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
			t.Fatal(err)
		}
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s: %v", dns.TypeToString[qtype], err)
		}
	}
}

func TestServeDNSOneFamily(t *testing.T) {
	rb := newFixture(t).plugin(t, "notice 2001:db8::80")
	tc := test.Case{Qname: "abuse.example.", Qtype: dns.TypeA, RecursionAvailable: true, Ns: []dns.RR{test.SOA(soaRR)}}
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rb.ServeDNS(context.Background(), rec, tc.Msg())
	if err := test.SortAndCheck(rec.Msg, tc); err != nil {
		t.Errorf("A query with only an IPv6 notice address: %v", err)
	}
}

// TestServeDNSKeepsCase checks that the answer echoes the question exactly
// as asked, so that 0x20 clients accept it, and that the escaped form of a
// listed name is blocked.
func TestServeDNSKeepsCase(t *testing.T) {
	rb := newFixture(t).plugin(t, "notice 192.0.2.80")
	for _, qname := range []string{"wWw.AbUsE.eXaMpLe.", `\065buse.example.`} {
		req := new(dns.Msg).SetQuestion(qname, dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rb.ServeDNS(context.Background(), rec, req)
		if rec.Msg == nil || len(rec.Msg.Answer) != 1 {
			t.Fatalf("%s: not blocked: %v", qname, rec.Msg)
		}
		if got := rec.Msg.Question[0].Name; got != qname {
			t.Errorf("question echoed as %q, asked %q", got, qname)
		}
		if got := rec.Msg.Answer[0].Header().Name; got != qname {
			t.Errorf("answer owner %q, asked %q", got, qname)
		}
	}
}

func TestServeDNSExtendedError(t *testing.T) {
	rb := newFixture(t).plugin(t, "notice 192.0.2.80")
	const sentence = "Blocked by order of Example Communications Commission under Example Act 1998, section 263(2), " +
		"order ORDER-2026-0012 (list test-csam serial 2026112801); appeal at https://complaints.regulator.example/."

	query := func(edns, structured, do bool) *dns.Msg {
		req := new(dns.Msg).SetQuestion("abuse.example.", dns.TypeA)
		if edns {
			req.SetEdns0(1232, do)
			if structured {
				opt := req.IsEdns0()
				opt.Option = append(opt.Option, &dns.EDNS0_EDE{})
			}
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rb.ServeDNS(context.Background(), rec, req)
		return rec.Msg
	}
	ede := func(t *testing.T, m *dns.Msg) *dns.EDNS0_EDE {
		t.Helper()
		opt := m.IsEdns0()
		if opt == nil {
			t.Fatal("no OPT record in the answer to an EDNS0 query")
		}
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
		t.Fatal("no EDE option in the answer")
		return nil
	}

	t.Run("without EDNS0", func(t *testing.T) {
		if m := query(false, false, false); m.IsEdns0() != nil {
			t.Errorf("answer to a query without EDNS0 has an OPT record: %v", m)
		}
	})
	t.Run("plain text", func(t *testing.T) {
		m := query(true, false, false)
		e := ede(t, m)
		if e.InfoCode != dns.ExtendedErrorCodeCensored || e.ExtraText != sentence {
			t.Errorf("EDE = %d %q\nwant %d %q", e.InfoCode, e.ExtraText, dns.ExtendedErrorCodeCensored, sentence)
		}
		if m.IsEdns0().UDPSize() != 1232 || m.IsEdns0().Do() {
			t.Errorf("OPT = %v, want the client's size and no DO", m.IsEdns0())
		}
	})
	t.Run("structured", func(t *testing.T) {
		e := ede(t, query(true, true, true))
		var got map[string]any
		if err := json.Unmarshal([]byte(e.ExtraText), &got); err != nil {
			t.Fatalf("EXTRA-TEXT %q is not JSON: %v", e.ExtraText, err)
		}
		c, _ := got["c"].([]any)
		if len(c) != 1 || c[0] != "mailto:complaints@regulator.example" || got["o"] != "Example Communications Commission" || got["j"] != sentence {
			t.Errorf("structured error = %v", got)
		}
		if _, ok := got["s"]; ok {
			t.Errorf("structured error has a sub-error %v; none goes with Censored", got["s"])
		}
	})
	t.Run("DO bit", func(t *testing.T) {
		m := query(true, false, true)
		if !m.IsEdns0().Do() || m.AuthenticatedData {
			t.Errorf("DO=%v AD=%v, want DO echoed and no AD", m.IsEdns0().Do(), m.AuthenticatedData)
		}
	})
}

func TestReady(t *testing.T) {
	f := newFixture(t)
	if !f.plugin(t, "").Ready() {
		t.Error("not ready with a verified list loaded")
	}
	empty := fixture{dir: t.TempDir(), pub: f.pub}
	if empty.plugin(t, "").Ready() {
		t.Error("ready without any list")
	}
}

// TestServeDNSOtherOpcodes: no opcode but QUERY, and no second question,
// reaches the next plugin, where its question would go unchecked.
func TestServeDNSOtherOpcodes(t *testing.T) {
	rb := newFixture(t).plugin(t, "")
	rb.Next = test.NextHandler(dns.RcodeRefused, nil) // "passed on"
	for opcode := 1; opcode < 16; opcode++ {
		for _, name := range []string{"abuse.example.", "unlisted.test."} {
			req := new(dns.Msg).SetQuestion(name, dns.TypeA)
			req.Opcode = opcode
			if code, _ := rb.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), req); code != dns.RcodeNotImplemented {
				t.Errorf("opcode %d for %s: rcode %d, want NOTIMP", opcode, name, code)
			}
		}
	}
	two := new(dns.Msg).SetQuestion("unlisted.test.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "abuse.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	if code, _ := rb.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), two); code != dns.RcodeFormatError {
		t.Errorf("two questions: rcode %d, want FORMERR", code)
	}
	if code, _ := rb.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg)); code != dns.RcodeRefused {
		t.Errorf("a query without a question (a cookie exchange) was not passed on (rcode %d)", code)
	}
}

func TestStructuredErrorContactFallsBackToAppeal(t *testing.T) {
	f := newFixture(t)
	f.key.WriteList(t, f.dir, "test-csam.list", strings.Replace(testList, "#! contact: mailto:complaints@regulator.example\n", "", 1))
	m, ok := f.plugin(t, "").index.Load().Lookup("abuse.example.")
	if !ok {
		t.Fatal("abuse.example not blocked")
	}
	var got structuredError
	if err := json.Unmarshal([]byte(extraText(m, true)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Contact) != 1 || got.Contact[0] != "https://complaints.regulator.example/" {
		t.Errorf("c = %v, want the appeal address", got.Contact)
	}
}
