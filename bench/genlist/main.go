// Command genlist writes a signed synthetic list for benchmarks, with
// reserved names only, and dnsperf query files for it.
//
//	go run ./bench/genlist -n 1000000 -dir /tmp/regblock-bench
//
// writes DIR/bench.list, DIR/bench.list.minisig, DIR/bench.pub,
// DIR/bench.key (unencrypted: for benchmarks only), DIR/passed.txt (names
// no list blocks) and DIR/blocked.txt (listed names).
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"aead.dev/minisign"
)

func main() {
	n := flag.Int("n", 1_000_000, "entries")
	dir := flag.String("dir", "bench-data", "output `directory`")
	serial := flag.Uint64("serial", 1, "list serial")
	extra := flag.String("extra", "", "one more `name` to list (a reload test's marker)")
	keyFile := flag.String("key", "", "sign with this unencrypted secret key `file` instead of a new one")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}

	var list bytes.Buffer
	fmt.Fprintf(&list, "#! regblock-list 1\n#! name: bench\n#! serial: %d\n#! issued: %s\n", *serial, time.Now().UTC().Format(time.RFC3339))
	for i := range *n {
		fmt.Fprintf(&list, "s%07d.host%03d.example", i, i%997)
		if i%2 == 0 {
			fmt.Fprintf(&list, " ORDER-2026-%05d csam", i%20000)
		}
		list.WriteByte('\n')
	}
	if *extra != "" {
		fmt.Fprintf(&list, "%s\n", *extra)
	}

	var priv minisign.PrivateKey
	if *keyFile != "" {
		data, err := os.ReadFile(*keyFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := priv.UnmarshalText(data); err != nil {
			log.Fatal(err)
		}
	} else {
		pub, p, err := minisign.GenerateKey(rand.Reader)
		if err != nil {
			log.Fatal(err)
		}
		priv = p
		pubText, _ := pub.MarshalText()
		privText, _ := priv.MarshalText()
		write(filepath.Join(*dir, "bench.pub"), append(pubText, '\n'))
		write(filepath.Join(*dir, "bench.key"), append(privText, '\n'))
	}
	r := minisign.NewReader(bytes.NewReader(list.Bytes()))
	io.Copy(io.Discard, r)
	sig := r.Sign(priv)

	// The signature first, then the list, each renamed into place, as sync does.
	writeAtomic(filepath.Join(*dir, "bench.list.minisig"), append(sig, '\n'))
	writeAtomic(filepath.Join(*dir, "bench.list"), list.Bytes())

	queries := func(name string, line func(i int) string, count int) {
		f, err := os.Create(filepath.Join(*dir, name))
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := range count {
			fmt.Fprintln(w, line(i))
		}
		w.Flush()
		f.Close()
	}
	queries("passed.txt", func(i int) string { return fmt.Sprintf("www.pass%04d.test A", i) }, 1000)
	queries("blocked.txt", func(i int) string {
		j := (i * 7919) % *n
		return fmt.Sprintf("s%07d.host%03d.example A", j, j%997)
	}, 1000)
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		log.Fatal(err)
	}
}

func writeAtomic(path string, data []byte) {
	tmp := path + ".tmp"
	write(tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		log.Fatal(err)
	}
}
