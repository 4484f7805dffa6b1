package regblock

import (
	"context"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	plugintest "github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
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
