package regblock

import (
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/upstreamtest"
)

func init() { dnsserver.Directives = InsertDirective(dnsserver.Directives) }

func TestInsertDirective(t *testing.T) {
	d := dnsserver.Directives
	if i := slices.Index(d, pluginName); i < 0 || d[i+1] != "cache" {
		t.Errorf("regblock is not right before cache in %v", d)
	}
	if got := InsertDirective(d); len(got) != len(d) {
		t.Error("inserting twice added regblock twice")
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic without cache in the plugin order")
		}
	}()
	InsertDirective([]string{"log", "forward"})
}

// TestServer runs regblock in a real CoreDNS server in front of cache and
// forward, and queries it over UDP and TCP.
func TestServer(t *testing.T) {
	f := newFixture(t)
	up := upstreamtest.Start(t)
	corefile := `.:0 {
		bind 127.0.0.1
		regblock {
			lists ` + f.dir + `
			pubkey ` + f.pub + `
			notice 192.0.2.80
		}
		cache
		forward . ` + up.Addr + `
	}`
	i, udp, tcp, err := test.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	defer i.Stop()

	for _, addr := range []struct{ net, addr string }{{"udp", udp}, {"tcp", tcp}} {
		c := &dns.Client{Net: addr.net}
		for _, tc := range []struct{ qname, want string }{
			{"www.abuse.example.", "192.0.2.80"},
			{"help.abuse.example.", upstreamtest.Answer},
			{"unlisted.test.", upstreamtest.Answer},
		} {
			m := new(dns.Msg).SetQuestion(tc.qname, dns.TypeA)
			m.SetEdns0(1232, false)
			r, _, err := c.Exchange(m, addr.addr)
			if err != nil {
				t.Fatalf("%s %s: %v", addr.net, tc.qname, err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.want {
				t.Errorf("%s %s: answer %v, want %s", addr.net, tc.qname, r.Answer, tc.want)
			}
			if blocked := tc.want == "192.0.2.80"; blocked != hasCensoredEDE(r) {
				t.Errorf("%s %s: EDE Censored present = %v, want %v", addr.net, tc.qname, !blocked, blocked)
			}
		}
	}
	for _, name := range up.Names() {
		if strings.HasSuffix(name, "abuse.example.") && name != "help.abuse.example." {
			t.Errorf("blocked name %q reached the upstream", name)
		}
	}
}

func hasCensoredEDE(m *dns.Msg) bool {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeCensored {
				return true
			}
		}
	}
	return false
}
