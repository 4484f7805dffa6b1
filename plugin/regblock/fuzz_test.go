package regblock

import (
	"testing"

	"github.com/coredns/coredns/plugin/pkg/fuzz"
	plugintest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds ServeDNS wire messages, as CoreDNS's own plugin fuzz
// harness does: whatever unpacks must not make the plugin panic.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.abuse.example.", dns.TypeA}, {"unlisted.test.", dns.TypeHTTPS}, {`\065buse.example.`, dns.TypeANY}, {"use-application-dns.net.", dns.TypeA}} {
		m := new(dns.Msg).SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{})
		wire, _ := m.Pack()
		f.Add(wire)
	}
	fx := newFixture(f)
	rb := fx.plugin(f, "notice 192.0.2.80 2001:db8::80\nencrypted_dns_canaries")
	rb.Next = plugintest.NextHandler(dns.RcodeSuccess, nil)
	f.Fuzz(func(t *testing.T, wire []byte) {
		fuzz.Do(rb, wire)
	})
}
