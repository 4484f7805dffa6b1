// Package upstreamtest runs a tiny DNS server on a loopback port for tests:
// the upstream a resolver under test forwards to.
package upstreamtest

import (
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Answer is the address the upstream gives every A query.
const Answer = "192.0.2.1"

// Upstream answers every A query with Answer and every other query with
// NODATA, and remembers the names it was asked.
type Upstream struct {
	Addr string // host:port on 127.0.0.1

	mu    sync.Mutex
	names []string
}

// Start starts an upstream on UDP and TCP on one port of 127.0.0.1
// (forward asks over TCP what came to it over TCP, TLS or HTTPS), stopped
// when the test ends.
func Start(t testing.TB) *Upstream {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the port is taken for TCP: try another
		}
		u := &Upstream{Addr: pc.LocalAddr().String()}
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: l, Handler: u}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			<-started
			t.Cleanup(func() { srv.Shutdown() })
		}
		return u
	}
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return nil
}

// ServeDNS implements dns.Handler.
func (u *Upstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg).SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		u.mu.Lock()
		u.names = append(u.names, q.Name)
		u.mu.Unlock()
		if q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP(Answer)}}
		}
	}
	w.WriteMsg(m)
}

// Names returns the question names the upstream was asked, in order.
func (u *Upstream) Names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.names...)
}
