package regblock

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
)

// TestEncryptedTransports runs the same server block over DNS over TLS and
// DNS over HTTPS, with a certificate the test makes, and checks with real
// clients that a listed name is blocked and another passes, as over UDP.
func TestEncryptedTransports(t *testing.T) {
	f := newFixture(t)
	up := upstreamtest.Start(t)
	cert, key, pool := testenv.SelfSigned(t)
	block := `{
		bind 127.0.0.1
		tls ` + cert + ` ` + key + `
		regblock {
			lists ` + f.dir + `
			pubkey ` + f.pub + `
			notice 192.0.2.80
		}
		forward . ` + up.Addr + `
	}`
	tlsConfig := &tls.Config{RootCAs: pool}

	exchanges := map[string]func(t *testing.T, addr string, m *dns.Msg) *dns.Msg{
		"tls": func(t *testing.T, addr string, m *dns.Msg) *dns.Msg {
			c := &dns.Client{Net: "tcp-tls", TLSConfig: tlsConfig, Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatalf("DoT: %v", err)
			}
			return r
		},
		"https": func(t *testing.T, addr string, m *dns.Msg) *dns.Msg {
			wire, _ := m.Pack()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
			resp, err := client.Post("https://"+addr+"/dns-query", "application/dns-message", bytes.NewReader(wire))
			if err != nil {
				t.Fatalf("DoH: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			r := new(dns.Msg)
			if err := r.Unpack(body); err != nil {
				t.Fatalf("DoH answer (%s): %v", resp.Status, err)
			}
			return r
		},
	}
	for scheme, exchange := range exchanges {
		t.Run(scheme, func(t *testing.T) {
			i, err := test.CoreDNSServer(scheme + "://.:0 " + block)
			if err != nil {
				t.Fatalf("could not start CoreDNS over %s: %v", scheme, err)
			}
			defer func() { i.Stop(); i.ShutdownCallbacks() }()
			addr := i.Servers()[0].Addr().String()
			for _, tc := range []struct{ name, want string }{{"www.abuse.example.", "192.0.2.80"}, {"unlisted.test.", upstreamtest.Answer}} {
				m := new(dns.Msg).SetQuestion(tc.name, dns.TypeA)
				m.SetEdns0(1232, false)
				r := exchange(t, addr, m)
				if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.want {
					t.Errorf("%s over %s: %v, want %s", tc.name, scheme, r.Answer, tc.want)
				}
				if blocked := tc.want == "192.0.2.80"; blocked != hasCensoredEDE(r) {
					t.Errorf("%s over %s: EDE present %v, want %v", tc.name, scheme, !blocked, blocked)
				}
			}
		})
	}
}
