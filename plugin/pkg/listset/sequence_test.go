package listset

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestRandomVersions lands random sequences of versions of one list,
// as whole files (diffed or compiled) and deltas, with lines shuffled and
// repeated, every kind of entry, the canary changed, the list hashed and
// salted anew, the whole file of a version made by a delta, and
// restarts; after each, every lookup must be a fresh compile's of the
// version, and its serial and SHA-256 those of that version's file.
func TestRandomVersions(t *testing.T) {
	diffed := 0
	for seed := range 30 {
		diffed += randomVersions(t, uint64(seed))
		if t.Failed() {
			return
		}
	}
	if diffed == 0 {
		t.Error("no whole reload was diffed into an overlay: the test does not reach the differ")
	}
}

// randomVersions runs one sequence and returns how many whole reloads
// were diffed.
func randomVersions(t *testing.T, seed uint64) (diffed int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	name := func(max int) string { return blocklisttest.NestingName(rng, max) }
	prefixes := []string{"", "*.", "=", "!", "!=", "!*."}
	orders := []string{"", " ORDER-1", " ORDER-2", " ORDER-1 csam", " ORDER-2 court", " - csam"}
	canaries := []string{"", "canary.a.test", "canary.b.test", "a.example"}
	entry := func() string { return prefixes[rng.IntN(len(prefixes))] + name(3) + orders[rng.IntN(len(orders))] }
	text := func(serial int, canary string, lines []string, hashed bool, salt byte) string {
		var b strings.Builder
		fmt.Fprintf(&b, "#! regblock-list 1\n#! name: a\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2026-12-05T06:00:00Z\n", serial)
		if canary != "" {
			fmt.Fprintf(&b, "#! canary: %s\n", canary)
		}
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if !hashed {
			return b.String()
		}
		l, err := blocklist.Parse("a.list", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		h, err := blocklist.Hash(l, bytes.Repeat([]byte{salt}, blocklist.SaltSize))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := blocklist.Write(&out, h); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	f := newFixture(t)
	var lines []string
	for i := range 400 { // enough for a change to be diffed (under a sixteenth)
		lines = append(lines, fmt.Sprintf("f%d.example%s", i, orders[rng.IntN(len(orders))]))
	}
	for range 6 {
		lines = append(lines, entry())
	}
	serial, canary, hashed, salt := 1, canaries[rng.IntN(len(canaries))], false, byte(1)
	inForce := text(serial, canary, lines, hashed, salt)
	f.write("a.list", inForce)
	f.set.Scan()
	f.rec.take()
	queries := []string{"canary.a.test.", "canary.b.test.", "a.example.", "f1.example.", "x.f2.example."}
	for range 80 {
		queries = append(queries, name(5)+".")
	}
	for i := range 400 {
		queries = append(queries, fmt.Sprintf("f%d.example.", i))
	}
	var history []string
	check := func(when string) {
		t.Helper()
		want := fresh(t, "a.list", inForce)
		l := want.Lists()[0]
		describe := func(m blockindex.Match, ok bool) string {
			if !ok {
				return "passes"
			}
			return fmt.Sprintf("blocked by %s serial %d: %v %q %q %v", m.List.Name, m.List.Serial, m.Kind, m.Order, m.Category, m.Action)
		}
		for _, q := range queries {
			got, want := describe(f.index.Lookup(q)), describe(want.Lookup(q))
			if got != want {
				t.Fatalf("seed %d, %s, after %v:\nLookup(%q) %s\na fresh compile: %s", seed, when, history, q, got, want)
			}
		}
		if c := f.set.InForce("a"); c.List.Serial != uint64(serial) || c.List.SHA256 != l.SHA256 {
			t.Fatalf("seed %d, %s: serial %d SHA-256 %x in force, want %d %x", seed, when, c.List.Serial, c.List.SHA256, serial, l.SHA256)
		}
	}
	for range 12 {
		next := append([]string(nil), lines...)
		switch rng.IntN(6) {
		case 0:
			rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
		case 1:
			for range 1 + rng.IntN(3) {
				next = append(next, next[rng.IntN(len(next))])
			}
		default: // a few lines removed (diffed), or many (compiled)
			drop := []int{8, 100}[rng.IntN(2)]
			next = next[:0]
			for _, l := range lines {
				if rng.IntN(drop) > 0 {
					next = append(next, l)
				}
			}
			for range rng.IntN(5) {
				next = append(next, entry())
			}
		}
		if rng.IntN(4) == 0 {
			canary = canaries[rng.IntN(len(canaries))]
		}
		wasHashed, oldSalt := hashed, salt
		if rng.IntN(6) == 0 {
			hashed = !hashed
		}
		if rng.IntN(6) == 0 {
			salt++
		}
		serial++
		nextText := text(serial, canary, next, hashed, salt)
		byDelta := rng.IntN(3) == 0 && wasHashed == hashed && (!hashed || oldSalt == salt)
		if byDelta {
			f.write(fmt.Sprintf("a.%d.delta", serial-1), deltaText(t, inForce, nextText, nil))
			history = append(history, fmt.Sprintf("delta to %d", serial))
		} else {
			f.write("a.list", nextText)
			history = append(history, fmt.Sprintf("whole %d (hashed %v, salt %d, canary %q)", serial, hashed, salt, canary))
		}
		f.set.Scan()
		if ev := f.rec.take(); !strings.Contains(strings.Join(ev, "\n"), fmt.Sprintf("applied a %d", serial)) {
			t.Fatalf("seed %d: %v: not applied: %v", seed, history, ev)
		}
		lines, inForce = next, nextText
		check("applied")
		if !byDelta && f.set.InForce("a").Index.OverlayLen() > 0 {
			diffed++
		}
		if byDelta && rng.IntN(2) == 0 { // the version's whole file arrives
			f.write("a.list", nextText)
			f.set.Scan()
			f.rec.take()
			check("its whole file after the delta")
		}
		if rng.IntN(5) == 0 {
			f.start()
			f.rec.take()
			check("restarted")
		}
		if rng.IntN(3) == 0 {
			deltas, _ := filepath.Glob(filepath.Join(f.dir, "*.delta*"))
			for _, d := range deltas {
				os.Remove(d)
			}
		}
	}
	return diffed
}

// fresh returns the index a resolver started on the version text (the
// file file) builds.
func fresh(t *testing.T, file, text string) *blockindex.Index {
	t.Helper()
	l, err := blocklist.Parse(file, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := blockindex.Build([]*blocklist.List{l})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}
