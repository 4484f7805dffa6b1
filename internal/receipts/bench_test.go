package receipts

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// BenchmarkReceiver feeds a receiver rounds of receipts from 10 000
// resolvers of 10 ISPs (each receipt verified, appended to its resolver's
// file, and its metrics set), as a fleet sending one a minute would, and
// reports the receipts a second it takes on the CPUs it is given (run with
// -cpu 1 for one core; 10 000 a minute is 167 a second) and the heap it
// keeps per resolver. The receipts are signed before the timer starts.
func BenchmarkReceiver(b *testing.B) {
	const resolvers, isps = 10_000, 10
	var pubs []minisign.PublicKey
	var privs []minisign.PrivateKey
	for range isps {
		pub, priv, _ := minisign.GenerateKey(nil)
		pubs, privs = append(pubs, pub), append(privs, priv)
	}
	srv, err := New(Config{Dir: b.TempDir(), Keys: pubs, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		b.Fatal(err)
	}
	type signed struct {
		body []byte
		sig  string
	}
	rounds := b.N/resolvers + 1
	now := time.Now()
	work := make([]signed, 0, rounds*resolvers)
	for round := range rounds {
		for i := range resolvers {
			r := receipt.Receipt{Resolver: fmt.Sprintf("isp%d-resolver%05d", i%isps, i), Time: now.Add(time.Duration(round) * time.Minute),
				Lists:  []receipt.List{{Name: "example-csam", Serial: uint64(2026112801 + round), SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Applied: now}},
				Ledger: receipt.Ledger{Head: "5f0c9a3b1d0e2f4a6b8c7d9e1f203142536475869708a9bacbdcedfe0f102132", Events: uint64(round + 1)}}
			body, sig, _ := receipt.Sign(r, privs[i%isps])
			work = append(work, signed{body, sig})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(work[i].body))
		req.Header.Set(receipt.SignatureHeader, work[i].sig)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("receipt %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
	if b.N >= resolvers {
		// The receiver's state: the heap with it, less the heap without it.
		var with, without runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&with)
		runtime.KeepAlive(srv) // alive until here: the compiler would let it go at its last use
		runtime.GC()
		runtime.ReadMemStats(&without)
		b.ReportMetric(float64(int64(with.HeapAlloc)-int64(without.HeapAlloc))/resolvers, "heap-bytes/resolver")
	}
	runtime.KeepAlive(work) // held in both figures
}
