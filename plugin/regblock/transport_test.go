package regblock

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/upstreamtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "regblock test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(priv)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, key, pool
}

// TestEncryptedTransports runs the same server block over DNS over TLS and
// DNS over HTTPS, with a certificate the test makes, and checks with real
// clients that a listed name is blocked and another passes, as over UDP.
func TestEncryptedTransports(t *testing.T) {
	f := newFixture(t)
	up := upstreamtest.Start(t)
	cert, key, pool := selfSigned(t)
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
