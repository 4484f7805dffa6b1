// Command genreceipts writes a synthetic receipts store and publisher's
// directory for benchmarking regblock report, with reserved names only:
// N resolvers under 10 ISP keys, D days from 2026-11-01, a list with a
// new version (a 100-entry delta) each day and a hashed list that does not
// change. Each resolver's file holds what a receiver stores of a quiet
// resolver: a receipt an hour and one when it enforces a new version,
// 1 to 40 minutes after its issue, with blocked counts that grow and a
// restart every 10 days.
//
//	go run ./bench/genreceipts -resolvers 10000 -days 30 -dir /tmp/regblock-report
//
// writes DIR/receipts/*.jsonl and DIR/lists. Every line carries the same
// signature, of the first receipt: the report reads receipts but does not
// verify them, and signing millions would take longer than the report.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

var start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

type published struct {
	serial uint64
	issued time.Time
	sha256 string
}

func main() {
	n := flag.Int("resolvers", 10_000, "resolvers")
	days := flag.Int("days", 30, "days")
	dir := flag.String("dir", "bench-report", "output `directory`")
	flag.Parse()
	store, lists := filepath.Join(*dir, "receipts"), filepath.Join(*dir, "lists")
	for _, d := range []string{store, filepath.Join(lists, "example-csam.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	_, key, _ := minisign.GenerateKey(nil)
	versions := publish(lists, key, *days)
	worst := publishHashed(lists, key)

	_, sig, err := receipt.Sign(receipt.Receipt{Resolver: "r0", Time: start}, key)
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for r := range next {
				writeResolver(store, r, *days, versions, worst, sig)
			}
		})
	}
	for r := range *n {
		next <- r
	}
	close(next)
	wg.Wait()
}

// publish writes a list's first version whole, each day's next version as
// a delta of 100 entries, and the last version whole as NAME.list.
func publish(dir string, key minisign.PrivateKey, days int) []published {
	var entries []string
	text := func(serial int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "#! regblock-list 1\n#! name: example-csam\n#! issuer: Example Communications Commission\n#! serial: %d\n#! issued: %s\n#! authority: Example Communications Act 1998, section 263(2)\n",
			serial, start.Add(time.Duration(serial-1)*24*time.Hour+6*time.Hour).Format(time.RFC3339))
		for _, e := range entries {
			b.WriteString(e)
		}
		return b.String()
	}
	for i := range 1000 {
		entries = append(entries, fmt.Sprintf("s%05d.example ORDER-0 csam\n", i))
	}
	var out []published
	var prev string
	for d := range days {
		if d > 0 {
			for i := range 100 {
				entries = append(entries, fmt.Sprintf("d%02d-%03d.example ORDER-%d csam\n", d, i, d))
			}
		}
		cur := text(d + 1)
		sum := sha256.Sum256([]byte(cur))
		out = append(out, published{uint64(d + 1), start.Add(time.Duration(d)*24*time.Hour + 6*time.Hour), hex.EncodeToString(sum[:])})
		switch {
		case d == 0:
			write(filepath.Join(dir, "example-csam.1.list"), []byte(cur), key)
		default:
			write(filepath.Join(dir, "example-csam.d", fmt.Sprintf("%d.delta", d)), delta(prev, cur), key)
		}
		prev = cur
	}
	write(filepath.Join(dir, "example-csam.list"), []byte(prev), key)
	return out
}

func delta(old, next string) []byte {
	o, err := blocklist.Parse("old.list", []byte(old))
	if err != nil {
		log.Fatal(err)
	}
	n, err := blocklist.Parse("new.list", []byte(next))
	if err != nil {
		log.Fatal(err)
	}
	d, err := blocklist.MakeDelta(o, n)
	if err != nil {
		log.Fatal(err)
	}
	if d.Checksum, err = blockindex.ChecksumOf(n.Entries); err != nil {
		log.Fatal(err)
	}
	var b bytes.Buffer
	blocklist.WriteDelta(&b, d)
	return b.Bytes()
}

// publishHashed writes a hashed list that holds one version all along.
func publishHashed(dir string, key minisign.PrivateKey) published {
	plain := "#! regblock-list 1\n#! name: worst-of\n#! issuer: Example Communications Commission\n#! serial: 1\n#! issued: 2026-10-01T00:00:00Z\n#! authority: Example Communications Act 1998, section 263(2)\n"
	for i := range 100 {
		plain += fmt.Sprintf("w%03d.example ORDER-W csam\n", i)
	}
	l, err := blocklist.Parse("worst-of.list", []byte(plain))
	if err != nil {
		log.Fatal(err)
	}
	h, err := blocklist.Hash(l, bytes.Repeat([]byte{1}, blocklist.SaltSize))
	if err != nil {
		log.Fatal(err)
	}
	var b bytes.Buffer
	blocklist.Write(&b, h)
	write(filepath.Join(dir, "worst-of.list"), b.Bytes(), key)
	sum := sha256.Sum256(b.Bytes())
	return published{1, h.Issued, hex.EncodeToString(sum[:])}
}

func write(path string, data []byte, key minisign.PrivateKey) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path+".minisig", minisign.Sign(key, data), 0o644); err != nil {
		log.Fatal(err)
	}
}

// writeResolver writes resolver r's file.
func writeResolver(store string, r, days int, versions []published, worst published, sig string) {
	f, err := os.Create(filepath.Join(store, fmt.Sprintf("r%05d.jsonl", r)))
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	key := fmt.Sprintf("%016X", 0xA0+r%10)
	delay := func(d int) time.Duration { return time.Duration(1+(r*7+d*13)%40) * time.Minute }
	var started time.Time
	var blocked, blockedWorst uint64
	applied := map[uint64]time.Time{}
	emit := func(at time.Time) {
		if day := int(at.Sub(start) / (24 * time.Hour)); started.IsZero() || day%10 == 0 && at.Sub(started) > 24*time.Hour {
			started, blocked, blockedWorst = at.Add(-time.Minute), 0, 0
		}
		blocked += uint64(r%7 + 1)
		blockedWorst += uint64(r % 2)
		in := versions[0]
		for d, v := range versions {
			if !at.Before(v.issued.Add(delay(d))) {
				in = v
			}
		}
		if applied[in.serial].IsZero() {
			applied[in.serial] = at
		}
		rc := receipt.Receipt{Resolver: fmt.Sprintf("r%05d", r), Time: at, Started: started,
			Lists: []receipt.List{
				{Name: "example-csam", Serial: in.serial, SHA256: in.sha256, Applied: applied[in.serial], Blocked: blocked},
				{Name: "worst-of", Serial: worst.serial, SHA256: worst.sha256, Applied: started, Blocked: blockedWorst},
			},
			Ledger: receipt.Ledger{Head: strings.Repeat("5f", 32), Events: uint64(len(applied) + 1)}}
		body, _ := json.Marshal(rc)
		line, _ := json.Marshal(receipts.Record{Received: at.Add(200 * time.Millisecond), Key: key, Result: "accepted", Body: body, Signature: sig})
		w.Write(append(line, '\n'))
	}
	offset := time.Duration(r%3600) * time.Second
	for h := range days * 24 {
		at := start.Add(time.Duration(h)*time.Hour + offset)
		for d, v := range versions {
			if e := v.issued.Add(delay(d)); !e.Before(at.Add(-time.Hour)) && e.Before(at) && d > 0 {
				emit(e) // the receipt that follows a new version
			}
		}
		emit(at)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	f.Close()
}
