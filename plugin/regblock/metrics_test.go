package regblock

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestServerCounters: the counter the cache hands out is the server's own,
// whichever server was asked for first or last.
func TestServerCounters(t *testing.T) {
	var c serverCounters
	a, b := "dns://127.0.0.1:10053", "tls://127.0.0.1:10853"
	before := map[string]float64{a: testutil.ToFloat64(queriesTotal.WithLabelValues(a)), b: testutil.ToFloat64(queriesTotal.WithLabelValues(b))}
	for _, server := range []string{a, a, b, a, b, b, a} {
		c.get(server).Inc()
	}
	for server, want := range map[string]float64{a: 4, b: 3} {
		if got := testutil.ToFloat64(queriesTotal.WithLabelValues(server)) - before[server]; got != want {
			t.Errorf("queries_total{server=%q} rose by %v, want %v", server, got, want)
		}
	}
}
