// Package upstreamtest runs a tiny DNS server on a loopback port for tests:
// the upstream a resolver under test forwards to.
package upstreamtest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Answer is the address the upstream gives every A query.
const Answer = "192.0.2.1"

// Upstream answers every A query with Answer and every other query with
// NODATA, but for the names given addresses with SetAddrs, and remembers
// the names it was asked.
type Upstream struct {
	Addr string // host:port on 127.0.0.1

	mu      sync.Mutex
	names   []string
	addrs   map[string][]net.IP
	replies map[string]reply
}

// reply is what SetReply gives a name.
type reply struct{ answer, extra []dns.RR }

// SetReply makes the upstream answer every query for name (fully
// qualified, lower case) with the records answer and extra, in zone file
// syntax, in the answer and additional sections. It panics on a record
// that does not parse.
func (u *Upstream) SetReply(name string, answer, extra []string) {
	rrs := func(texts []string) []dns.RR {
		var out []dns.RR
		for _, text := range texts {
			rr, err := dns.NewRR(text)
			if err != nil {
				panic(err)
			}
			out = append(out, rr)
		}
		return out
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.replies == nil {
		u.replies = map[string]reply{}
	}
	u.replies[name] = reply{rrs(answer), rrs(extra)}
}

// SetAddrs makes the upstream answer A and AAAA queries for name (fully
// qualified, lower case) with addrs, of the family asked.
func (u *Upstream) SetAddrs(name string, addrs ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.addrs == nil {
		u.addrs = map[string][]net.IP{}
	}
	u.addrs[name] = nil
	for _, a := range addrs {
		u.addrs[name] = append(u.addrs[name], net.ParseIP(a))
	}
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
		addrs, set := u.addrs[strings.ToLower(q.Name)]
		canned, replied := u.replies[strings.ToLower(q.Name)]
		u.mu.Unlock()
		if replied {
			m.Answer, m.Extra = canned.answer, canned.extra
			w.WriteMsg(m)
			return
		}
		if !set {
			addrs = []net.IP{net.ParseIP(Answer)}
		}
		for _, a := range addrs {
			hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 30}
			switch {
			case q.Qtype == dns.TypeA && a.To4() != nil:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a})
			case q.Qtype == dns.TypeAAAA && a.To4() == nil:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a})
			}
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
