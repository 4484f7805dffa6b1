package listset

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// quiet records nothing, and stops at the first refusal or problem: a
// benchmark measures lists that load.
func quiet(c Change) {
	switch c.Kind {
	case Refused:
		panic(c.Refusal.Err)
	case PolicyRefused, Problem:
		panic(c.Err)
	}
}

// writeSynthetic writes a signed list of n names of about 25 bytes, half
// with an order reference, as national lists hold, and returns its key and
// a configuration that loads it.
func writeSynthetic(b *testing.B, dir string, n int) (*blocklisttest.Key, Config) {
	return writeList(b, dir, synthetic(n))
}

// synthetic is the text of writeSynthetic's list.
func synthetic(n int) string {
	var sb strings.Builder
	sb.WriteString("#! regblock-list 1\n#! name: synthetic\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n")
	for i := range n {
		fmt.Fprintf(&sb, "s%07d.host%03d.example", i, i%997)
		if i%2 == 0 {
			fmt.Fprintf(&sb, " ORDER-2026-%05d csam", i%20000)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// writeHashed writes the hashed form of writeSynthetic's list.
func writeHashed(b *testing.B, dir string, n int) (*blocklisttest.Key, Config) {
	plain, err := blocklist.Parse("synthetic.list", []byte(synthetic(n)))
	if err != nil {
		b.Fatal(err)
	}
	hashed, err := blocklist.Hash(plain, bytes.Repeat([]byte{7}, blocklist.SaltSize))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	blocklist.Write(&buf, hashed)
	return writeList(b, dir, buf.String())
}

func writeList(b *testing.B, dir, text string) (*blocklisttest.Key, Config) {
	key := blocklisttest.NewKey(b)
	key.WriteList(b, dir, "synthetic.list", text)
	return key, Config{Lists: []string{filepath.Join(dir, "synthetic.list")}, Keys: []minisign.PublicKey{key.Public}, MaxSize: 1 << 30}
}

// BenchmarkLoad reads, verifies, parses and indexes a signed list of 100 k
// or 1 M entries (10 M with REGBLOCK_BENCH_10M=1), plain and hashed, and
// reports the resident memory (Go heap and the index outside it) the list
// in force keeps, per entry.
func BenchmarkLoad(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if os.Getenv("REGBLOCK_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, form := range []struct {
		name  string
		write func(*testing.B, string, int) (*blocklisttest.Key, Config)
	}{{"plain", writeSynthetic}, {"hashed", writeHashed}} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%dk", form.name, n/1000), func(b *testing.B) {
				benchmarkLoad(b, form.write, n)
			})
		}
	}
}

func benchmarkLoad(b *testing.B, write func(*testing.B, string, int) (*blocklisttest.Key, Config), n int) {
	_, cfg := write(b, b.TempDir(), n)
	var perEntry float64
	for b.Loop() {
		b.StopTimer()
		before := settled(b)
		var ix *blockindex.Index
		b.StartTimer()
		s := New(cfg, func(i *blockindex.Index) { ix = i }, quiet)
		s.Scan()
		b.StopTimer()
		if s.Len() != 1 || ix == nil {
			b.Fatal("list not loaded")
		}
		perEntry = float64(settled(b)-before) / float64(n)
		runtime.KeepAlive(s)
		runtime.KeepAlive(ix)
		s, ix = nil, nil
		b.StartTimer()
	}
	b.ReportMetric(perEntry, "bytes/entry")
}

// settled returns the resident memory once garbage is collected, the
// memory of unreachable indexes unmapped, and free pages handed back.
func settled(b *testing.B) uint64 {
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups unmap on their own goroutine
	}
	debug.FreeOSMemory()
	cur, _ := rss(b)
	return cur
}

// rss returns the process's resident memory and its peak (VmRSS, VmHWM),
// in bytes.
func rss(b *testing.B) (cur, peak uint64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status: resident memory is measured on Linux only")
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb uint64
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &kb); n == 1 {
			cur = kb << 10
		}
		if n, _ := fmt.Sscanf(line, "VmHWM: %d kB", &kb); n == 1 {
			peak = kb << 10
		}
	}
	return cur, peak
}

// BenchmarkReload replaces a list in force of 1 M entries (10 M with
// REGBLOCK_BENCH_10M=1) by a new version, as a resolver does under load, and
// reports the process's peak resident memory during the reload against its
// resident memory with the list in force (peak/steady), and both per entry.
// The test binary's own footprint is in both figures, as CoreDNS's is in a
// resolver's.
func BenchmarkReload(b *testing.B) {
	sizes := []int{1_000_000}
	if os.Getenv("REGBLOCK_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			dir := b.TempDir()
			key, cfg := writeSynthetic(b, dir, n)
			var ix *blockindex.Index
			s := New(cfg, func(i *blockindex.Index) { ix = i }, quiet)
			s.Scan()
			serial := 1
			var steady, peak uint64
			for b.Loop() {
				b.StopTimer()
				data, err := os.ReadFile(filepath.Join(dir, "synthetic.list"))
				if err != nil {
					b.Fatal(err)
				}
				next := strings.Replace(string(data), fmt.Sprintf("#! serial: %d\n", serial), fmt.Sprintf("#! serial: %d\n", serial+1), 1)
				serial++
				key.WriteList(b, dir, "synthetic.list", next)
				data, next = nil, ""
				debug.FreeOSMemory()
				steady, _ = rss(b)
				os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM to VmRSS
				b.StartTimer()
				s.Scan()
				b.StopTimer()
				_, peak = rss(b)
				if got := ix.Lists()[0].Serial; got != uint64(serial) {
					b.Fatalf("serial %d in force after the reload, want %d", got, serial)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/float64(steady), "peak/steady")
			b.ReportMetric(float64(steady)/float64(n), "steady-B/entry")
			b.ReportMetric(float64(peak)/float64(n), "peak-B/entry")
		})
	}
}

// BenchmarkLoadSignatures loads a signed list of 1 M entries whose .minisig
// holds one signature, and one that holds three by three trusted keys: the
// file is hashed once whatever the number of signatures, so the two
// should take the same time.
func BenchmarkLoadSignatures(b *testing.B) {
	dir := b.TempDir()
	key, cfg := writeSynthetic(b, dir, 1_000_000)
	path := filepath.Join(dir, "synthetic.list")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	one := key.Sign(data)
	three := slices.Clone(one)
	keys := slices.Clone(cfg.Keys)
	for range 2 {
		k := blocklisttest.NewKey(b)
		three = append(three, k.Sign(data)...)
		keys = append(keys, k.Public)
	}
	for _, tc := range []struct {
		name string
		sig  []byte
	}{{"1-signature", one}, {"3-signatures", three}} {
		b.Run(tc.name, func(b *testing.B) {
			if err := os.WriteFile(path+".minisig", tc.sig, 0o644); err != nil {
				b.Fatal(err)
			}
			cfg := cfg
			cfg.Keys = keys
			for b.Loop() {
				var ix *blockindex.Index
				s := New(cfg, func(i *blockindex.Index) { ix = i }, quiet)
				s.Scan()
				if len(ix.Lists()[0].Signers) != strings.Count(string(tc.sig), "untrusted comment:") {
					b.Fatalf("signers %X", ix.Lists()[0].Signers)
				}
			}
		})
	}
}

// BenchmarkLoadUnderPolicy reads a signed list of 100 000 entries again
// and again as a resolver does when its file changes: with one pinned key
// and no policy, and under a trust policy of 1 000 list lines (2 000 keys,
// read once) whose line for it needs 10 signatures, joined in its
// .minisig. Compare the two in one run, and each with the same benchmark
// on an older commit: the policy's cost per list load is finding the keys
// and checking 10 signatures, against hashing and parsing the list.
func BenchmarkLoadUnderPolicy(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	key, plain := writeSynthetic(b, dir, 100_000)
	path := filepath.Join(dir, "synthetic.list")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	oneSig, _ := os.ReadFile(path + ".minisig")

	root := blocklisttest.NewKey(b)
	var policy strings.Builder
	fmt.Fprintf(&policy, "#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\n", root.Public.String())
	for i := range 999 {
		fmt.Fprintf(&policy, "list other-%04d 1 %s %s\n", i, blocklisttest.NewKey(b).Public.String(), blocklisttest.NewKey(b).Public.String())
	}
	var tenSigs []byte
	fmt.Fprintf(&policy, "list synthetic 10")
	for range 10 {
		k := blocklisttest.NewKey(b)
		fmt.Fprintf(&policy, " %s", k.Public.String())
		tenSigs = append(tenSigs, k.Sign(data)...)
	}
	policy.WriteString("\n")
	policyPath := filepath.Join(b.TempDir(), "regblock.trust")
	os.WriteFile(policyPath, []byte(policy.String()), 0o644)
	os.WriteFile(policyPath+".minisig", root.Sign([]byte(policy.String())), 0o644)
	underPolicy := Config{Lists: plain.Lists, Keys: []minisign.PublicKey{root.Public}, MaxSize: plain.MaxSize, State: state, Trust: policyPath}
	_ = key

	for _, tc := range []struct {
		name string
		cfg  Config
		sig  []byte
	}{{"pubkey-1-signature", plain, oneSig}, {"policy-1000-lines-10-signatures", underPolicy, tenSigs}} {
		b.Run(tc.name, func(b *testing.B) {
			if err := os.WriteFile(path+".minisig", tc.sig, 0o644); err != nil {
				b.Fatal(err)
			}
			var ix *blockindex.Index
			s := New(tc.cfg, func(i *blockindex.Index) { ix = i }, quiet)
			s.Scan() // the policy is read once, as a resolver reads it
			if ix == nil || len(ix.Lists()) != 1 {
				b.Fatal("the list was not loaded")
			}
			when := time.Now()
			for b.Loop() {
				// The same version again, as after a touch or a rename: read,
				// verified, judged and parsed, then found unchanged.
				when = when.Add(time.Second)
				os.Chtimes(path, when, when)
				s.Scan()
			}
		})
	}
}
