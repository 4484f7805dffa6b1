package blockindex

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// streamDiff diffs next against li as a stream does: each entry's strings
// are in one buffer, overwritten with junk ('Q') after each Add as the
// parser's buffer is once it reads the next line, and again ('Z') once
// the differ is done.
func streamDiff(li *ListIndex, next *blocklist.List, limit int) (*ListIndex, error) {
	d := NewDiffer(li, limit)
	if d == nil {
		return nil, ErrTooDifferent
	}
	buf := make([]byte, 4096)
	for _, e := range next.Entries {
		off := 0
		put := func(s string) string {
			if s == "" {
				return ""
			}
			n := copy(buf[off:], s)
			off += n
			return unsafe.String(&buf[off-n], n)
		}
		e.Name, e.Order, e.Category = put(e.Name), put(e.Order), put(e.Category)
		d.Add(e)
		for i := range off {
			buf[i] = 'Q'
		}
	}
	out, err := d.Finish(next)
	for i := range buf {
		buf[i] = 'Z'
	}
	return out, err
}

// diffOrCompile diffs version against li through streamDiff, or compiles
// it when the differ gives up, as a reload does.
func diffOrCompile(t *testing.T, li *ListIndex, version *blocklist.List, limit int) *ListIndex {
	t.Helper()
	got, err := streamDiff(li, version, limit)
	if err == ErrTooDifferent {
		got, err = Compile(version)
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDiffRPZAgreesWithCompile diffs random versions of an RPZ zone
// (local data, walled gardens, every action, order and category
// comments, triggers at the canary names while the canary changes, names
// near the longest) through a stream whose buffer is reused, and checks
// every answer, local records included, against a compile of the
// version, and that no entry kept aliases the stream's buffer.
func TestDiffRPZAgreesWithCompile(t *testing.T) {
	diffed := 0
	long := strings.Repeat("k", 63) + "." + strings.Repeat("m", 63) + "." + strings.Repeat("p", 60)
	for seed := range 15 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		answers := []string{"CNAME .", "CNAME *.", "CNAME rpz-drop.", "CNAME rpz-passthru.", "A 192.0.2.1", "A 192.0.2.2\n%s A 192.0.2.3",
			"AAAA 2001:db8::1", `TXT "blocked by order"`, "CNAME walled.example.", "CNAME Walled.Example.", "60 A 192.0.2.1"}
		comments := []string{"", " ; order=O-1", " ; order=O-2 category=csam", " ; category=fraud", " ; order=O-%d"}
		trigger := func() string {
			n := fmt.Sprintf("t%d.example", rng.IntN(150))
			switch rng.IntN(10) {
			case 0:
				n = "*." + n
			case 1:
				n = long + fmt.Sprintf(".t%d", rng.IntN(20))
			case 2:
				n = "canary.test"
			case 3:
				n = "canary2.test"
			}
			a := answers[rng.IntN(len(answers))]
			if strings.Contains(a, "%s") {
				a = fmt.Sprintf(a, n)
			}
			c := comments[rng.IntN(len(comments))]
			if strings.Contains(c, "%d") {
				c = fmt.Sprintf(c, rng.IntN(200))
			}
			return n + " " + a + c
		}
		zone := func(serial int, canary string, triggers []string) *blocklist.List {
			var b strings.Builder
			if canary != "" {
				fmt.Fprintf(&b, ";$ canary: %s\n", canary)
			}
			fmt.Fprintf(&b, "$TTL 300\n@ SOA localhost. hostmaster.example. %d 3600 600 86400 300\n  NS localhost.\n", serial)
			seen := map[string]bool{}
			for _, tr := range triggers {
				if owner, _, _ := strings.Cut(tr, " "); !seen[owner] {
					seen[owner] = true
					b.WriteString(tr + "\n")
				}
			}
			l, err := blocklist.Parse("l.rpz", []byte(b.String()))
			if err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			return l
		}
		var triggers, queries []string
		for i := range 1500 {
			triggers = append(triggers, fmt.Sprintf("base%d.example A 192.0.2.%d ; order=B-%d", i, i%200, i%90))
			queries = append(queries, fmt.Sprintf("base%d.example.", i))
		}
		for range 200 {
			triggers = append(triggers, trigger())
		}
		for i := range 150 {
			queries = append(queries, fmt.Sprintf("t%d.example.", i), fmt.Sprintf("x.t%d.example.", i))
		}
		for i := range 20 {
			queries = append(queries, long+fmt.Sprintf(".t%d.", i))
		}
		queries = append(queries, "canary.test.", "canary2.test.")
		li, err := Compile(zone(1, "canary.test", triggers))
		if err != nil {
			t.Fatal(err)
		}
		for serial := 2; serial < 8; serial++ {
			next := append([]string(nil), triggers...)
			for i := range next {
				if rng.IntN(40) == 0 {
					next[i] = trigger()
				}
			}
			if rng.IntN(2) == 0 {
				rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
			}
			for range rng.IntN(60) {
				next = append(next, trigger())
			}
			version := zone(serial, []string{"canary.test", "canary2.test", ""}[rng.IntN(3)], next)
			limit := []int{50, 64, 65, 100, 1000}[rng.IntN(5)]
			got := diffOrCompile(t, li, version, limit)
			if got.over != nil {
				diffed++
			}
			compareWithCompile(t, fmt.Sprintf("seed %d serial %d limit %d", seed, serial, limit), got, version, queries)
			if t.Failed() {
				return
			}
			li, triggers = got, next
		}
	}
	if diffed == 0 {
		t.Error("no version was diffed into an overlay")
	}
}

// compareWithCompile checks that got answers every query as a compile of
// version does, and that the entries its overlay added are the version's,
// not the stream buffer's junk.
func compareWithCompile(t *testing.T, what string, got *ListIndex, version *blocklist.List, queries []string) {
	t.Helper()
	want, err := Compile(version)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(m Match, ok bool) string {
		if !ok {
			return "passes"
		}
		return fmt.Sprintf("%v order=%q category=%q action=%v local=%q serial=%d", m.Kind, m.Order, m.Category, m.Action, blocklist.LocalText(m.Local), m.List.Serial)
	}
	gix, wix := mustIndex(t, got), mustIndex(t, want)
	for _, q := range queries {
		if g, w := describe(gix.Lookup(q)), describe(wix.Lookup(q)); g != w {
			t.Fatalf("%s: Lookup(%q): diffed %s, compiled %s", what, q, g, w)
		}
	}
	if got.Checksum() != want.Checksum() {
		t.Errorf("%s: checksum %s, compiled %s", what, got.Checksum(), want.Checksum())
	}
	if got.over != nil {
		texts := map[string]bool{}
		for _, e := range version.Entries {
			texts[e.Text()] = true
		}
		for _, a := range got.over.added {
			if !texts[a.Text()] {
				t.Errorf("%s: added entry %q is not the version's (the stream's buffer?)", what, a.Text())
			}
		}
	}
}

// listOf parses a list named t of the given serial, canary and entry lines.
func listOf(t *testing.T, serial int, canary string, lines []string) *blocklist.List {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "#! regblock-list 1\n#! name: t\n#! serial: %d\n#! issued: 2026-01-01T00:00:00Z\n", serial)
	if canary != "" {
		fmt.Fprintf(&b, "#! canary: %s\n", canary)
	}
	for _, l := range lines {
		b.WriteString(strings.TrimSpace(l) + "\n")
	}
	l, err := blocklist.Parse("t.list", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return l
}

// TestDiffPlainAgreesWithCompile diffs random versions of a plain list
// (every kind, entries that change only their order or category, orders
// that differ only in case, repeated entries, the canary changing,
// shuffled lines, overlays diffed again and compacted) through a stream
// whose buffer is reused, and checks every answer against a compile of
// the version.
func TestDiffPlainAgreesWithCompile(t *testing.T) {
	kinds := []string{"", "=", "*.", "!", "!=", "!*."}
	orders := []string{"-", "O1", "O2", "O10", "A", "o1"}
	cats := []string{"", "csam", "fraud", "a"}
	diffed := 0
	for seed := range 40 {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		names := []string{}
		for i := range 40 {
			names = append(names, fmt.Sprintf("n%d.example", i), fmt.Sprintf("s.n%d.example", i))
		}
		entry := func() string {
			s := kinds[rng.IntN(len(kinds))] + names[rng.IntN(len(names))]
			switch rng.IntN(3) {
			case 1:
				s += " " + orders[rng.IntN(len(orders))]
			case 2:
				s += " " + orders[rng.IntN(len(orders))] + " " + cats[rng.IntN(len(cats))]
			}
			return s
		}
		var lines []string
		for i := range 2000 {
			lines = append(lines, fmt.Sprintf("base%d.example B-%d", i, i%7))
		}
		for range 150 {
			lines = append(lines, entry())
		}
		var queries []string
		for _, n := range names {
			queries = append(queries, n+".", "x."+n+".", "y.x."+n+".")
		}
		for i := range 2000 {
			queries = append(queries, fmt.Sprintf("base%d.example.", i))
		}
		queries = append(queries, "canary.test.", "canary2.test.", "n1.example.")
		li, err := Compile(listOf(t, 1, "canary.test", lines))
		if err != nil {
			t.Fatal(err)
		}
		for serial := 2; serial < 12; serial++ {
			next := append([]string(nil), lines...)
			for i := 2000; i < len(next); i++ {
				switch rng.IntN(12) {
				case 0:
					next[i] = entry()
				case 1: // change only order or category
					f := strings.Fields(next[i])
					switch len(f) {
					case 1:
						f = append(f, orders[rng.IntN(len(orders))])
					case 2:
						f[1] = orders[rng.IntN(len(orders))]
					case 3:
						f[2] = cats[rng.IntN(len(cats))]
					}
					next[i] = strings.Join(f, " ")
				case 2:
					next = append(next, next[i]) // duplicate
				case 3:
					next[i] = "#"
				}
			}
			if rng.IntN(2) == 0 {
				rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
			}
			version := listOf(t, serial, []string{"canary.test", "canary2.test", ""}[rng.IntN(3)], next)
			limit := []int{10, 60, 100, 1000}[rng.IntN(4)]
			got := diffOrCompile(t, li, version, limit)
			if got.over != nil {
				diffed++
			}
			compareWithCompile(t, fmt.Sprintf("seed %d serial %d", seed, serial), got, version, queries)
			if rng.IntN(3) == 0 {
				compareWithCompile(t, fmt.Sprintf("seed %d serial %d compact", seed, serial), got.Compact(), version, queries)
			}
			if t.Failed() {
				return
			}
			li, lines = got, next
			if rng.IntN(4) == 0 {
				li = li.Compact()
			}
		}
	}
	if diffed == 0 {
		t.Error("no version was diffed into an overlay")
	}
}

// TestDiffManyAtOneNameAgreesWithCompile diffs random versions of a list
// whose few names are listed many times each (every kind, orders and
// categories, lines repeated, the canary moving among them), so that a
// name holds more records than the differ walks, and checks every answer,
// and the answers after Compact, against a compile of the version.
func TestDiffManyAtOneNameAgreesWithCompile(t *testing.T) {
	kinds := []string{"", "=", "*.", "!", "!=", "!*."}
	names := []string{"canary.test", "canary2.test", "a.canary.test", "x.test", "y.x.test", "z.y.x.test", "test"}
	orders := []string{"-", "O1", "O2", "o1", "Z"}
	cats := []string{"", "csam", "fraud"}
	for seed := range 300 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		entry := func() string {
			return kinds[rng.IntN(6)] + names[rng.IntN(len(names))] + " " + orders[rng.IntN(len(orders))] + " " + cats[rng.IntN(len(cats))]
		}
		var lines []string
		for i := range 400 {
			lines = append(lines, fmt.Sprintf("b%d.example", i))
		}
		for range 60 {
			lines = append(lines, entry())
		}
		var queries []string
		for _, n := range names {
			queries = append(queries, n+".", "q."+n+".")
		}
		canaries := []string{"canary.test", "canary2.test", "a.canary.test", ""}
		li, err := Compile(listOf(t, 1, canaries[rng.IntN(4)], lines))
		if err != nil {
			t.Fatal(err)
		}
		for serial := 2; serial < 10; serial++ {
			next := append([]string(nil), lines...)
			for i := 400; i < len(next); i++ {
				switch rng.IntN(6) {
				case 0:
					next[i] = entry()
				case 1:
					next = append(next, next[i], next[i])
				case 2:
					next[i] = "#"
				}
			}
			rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
			v := listOf(t, serial, canaries[rng.IntN(4)], next)
			got := diffOrCompile(t, li, v, 200)
			compareWithCompile(t, fmt.Sprintf("seed %d serial %d", seed, serial), got, v, queries)
			compareWithCompile(t, fmt.Sprintf("seed %d serial %d compact", seed, serial), got.Compact(), v, queries)
			if t.Failed() {
				return
			}
			li, lines = got, next
			if rng.IntN(3) == 0 {
				li = li.Compact()
			}
		}
	}
}
