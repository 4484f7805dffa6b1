package listset

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/deltatest"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// deltaText is the delta from list text old to list text next.
var deltaText = deltatest.Text

func TestSetDeltas(t *testing.T) {
	f := newFixture(t)
	v1 := listText("a", 1, "old.example ORDER-1\n")
	v2 := listText("a", 2, "new.example ORDER-2\n")
	v3 := listText("a", 3, "new.example ORDER-2\nthird.example\n")
	f.write("a.list", v1)
	f.set.Scan()
	f.expect("applied a 1")

	f.write("a.1.delta", deltaText(t, v1, v2, nil))
	f.set.Scan()
	f.expect("applied a 2")
	if !f.blocks("new.example.") || f.blocks("old.example.") || !f.blocks("abuse.example.") {
		t.Fatal("after the delta: new.example must be blocked, old.example not, abuse.example still")
	}
	c := f.set.InForce("a")
	if c.List.SHA256 != sha256.Sum256([]byte(v2)) || c.List.Blocking() != 2 {
		t.Errorf("version in force: SHA-256 %x, %d blocking entries; want those of serial 2's whole file and 2", c.List.SHA256, c.List.Blocking())
	}
	if c.deltas[0].data != nil || c.deltas[0].delta.Added != nil {
		t.Error("the delta's bytes and entries stay in memory once the state directory keeps them")
	}

	// The base renamed: the version it made stays in force.
	f.rename("a.list", "b.list")
	f.set.Scan()
	f.expect("unchanged a", "moved a from a.list to b.list")

	// A restart enforces the version made by the delta, from the state
	// directory; the delta still beside the list is the version in force.
	f.start()
	f.expect("applied a 2", "unchanged a", "unchanged a")
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 2 || !c.Restored || !f.blocks("new.example.") || f.blocks("old.example.") {
		t.Fatalf("after a restart: %+v", c)
	}
	f.remove("b.list")
	f.write("a.list", v1)
	f.set.Scan()
	f.expect("unchanged a", "moved a from b.list to a.list")

	// The whole file of the same version is the version in force, and
	// the state directory keeps it instead of the base and the chain: an
	// older file is a rollback from then on.
	f.write("a.list", v2)
	f.set.Scan()
	f.expect("unchanged a, whole file of 2 entries in force")
	if c := f.set.InForce("a"); len(c.deltas) != 0 || c.Path != filepath.Join(f.dir, "a.list") {
		t.Errorf("the whole file of serial 2 did not replace the chain: %d deltas, from %s", len(c.deltas), c.Path)
	}
	if _, err := os.Stat(filepath.Join(f.state, "a.1.delta")); !os.IsNotExist(err) {
		t.Errorf("the state directory still keeps the delta the whole file replaced: %v", err)
	}
	f.start()
	f.expect("applied a 2", "unchanged a", "unchanged a")
	f.write("a.list", v1)
	f.set.Scan()
	f.expect("rejected a rollback")
	f.write("a.list", v2)
	f.set.Scan()
	f.expect("unchanged a")

	// A chain: 2 -> 3 lands before its predecessor is read again.
	f.write("a.2.delta", deltaText(t, v2, v3, nil))
	f.set.Scan()
	f.expect("applied a 3")
	if !f.blocks("third.example.") {
		t.Error("third.example not blocked after the second delta")
	}

	// Refusals keep serial 3.
	v4 := listText("a", 4, "fourth.example\n")
	f.write("a.1.delta", deltaText(t, v1, v4, nil)) // not from the version in force
	f.set.Scan()
	f.expect("rejected a delta_base")
	f.write("a.3.delta", deltaText(t, v3, v4, func(d *blocklist.Delta) { d.Checksum[3] ^= 0x10 }))
	f.set.Scan()
	f.expect("rejected a delta_mismatch")
	f.write("a.3.delta", deltaText(t, v3, v4, func(d *blocklist.Delta) {
		d.Removed = append(d.Removed, blocklist.Entry{Name: "never.example"})
	}))
	f.set.Scan()
	f.expect("rejected a delta_mismatch")
	f.write("a.2.delta", deltaText(t, v3, v4, nil)) // named after the wrong serial
	f.set.Scan()
	f.expect("rejected a parse_error")
	f.remove("a.2.delta")
	other := blocklisttest.NewKey(t)
	other.WriteList(t, f.dir, "a.3.delta", deltaText(t, v3, v4, nil))
	f.set.Scan()
	f.expect("rejected a bad_signature")
	if c := f.set.InForce("a"); c.List.Serial != 3 || f.blocks("fourth.example.") {
		t.Fatalf("a refused delta changed the version in force: serial %d", c.List.Serial)
	}

	// The right delta applies; those that start from older serials are
	// not read again.
	f.write("a.3.delta", deltaText(t, v3, v4, nil))
	f.set.Scan()
	f.expect("applied a 4")
	f.set.Scan()
	f.expect()
	if !f.blocks("fourth.example.") || f.blocks("third.example.") {
		t.Error("serial 4 not enforced")
	}
	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 4 || !f.blocks("fourth.example.") {
		t.Fatalf("after a restart with a chain of three deltas: %+v", c)
	}
}

// TestDeltaMarkWaitsForCopy: the state directory refuses a delta's copy
// (here a directory stands where it goes) and the program restarts before
// it is saved. The mark must not have moved without the copy: the saved
// base is restored and the delta beside it applies again, rather than the
// base being refused below the mark and the list lost.
func TestDeltaMarkWaitsForCopy(t *testing.T) {
	f := newFixture(t)
	v1 := listText("a", 1, "old.example\n")
	v2 := listText("a", 2, "new.example\n")
	f.write("a.list", v1)
	f.set.Scan()
	f.expect("applied a 1")

	if err := os.Mkdir(filepath.Join(f.state, "a.1.delta"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("a.1.delta", deltaText(t, v1, v2, nil))
	f.set.Scan()
	if f.set.Unsaved() == 0 || !f.blocks("new.example.") {
		t.Fatalf("serial 2 should be in force and its copy unsaved; %d unsaved", f.set.Unsaved())
	}
	f.rec.take()

	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 2 || !f.blocks("new.example.") {
		t.Fatalf("after a restart with the delta's copy unsaved: %+v, events %q", c, f.rec.take())
	}

	// Once there is room, copy and mark are saved, and a restart finds
	// serial 2 in the state directory alone.
	os.Remove(filepath.Join(f.state, "a.1.delta"))
	f.set.saveState()
	if n := f.set.Unsaved(); n != 0 {
		t.Fatalf("%d things unsaved once the state directory takes them", n)
	}
	f.remove("a.1.delta")
	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 2 || !c.Restored {
		t.Fatalf("after a restart with the delta gone from the lists directory: %+v", c)
	}
}

// deltaFiller is enough entries that a small delta stays in the overlay
// (a list is compacted once its overlay holds a sixteenth of it).
func deltaFiller() string {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "filler%d.example\n", i)
	}
	return b.String()
}

// policyFixture is a fixture whose lists are judged by a trust policy
// file signed by root; publish writes a new version of the policy.
func policyFixture(t *testing.T, listKey *blocklisttest.Key) (f *fixture, publish func(serial int, lines string)) {
	root := blocklisttest.NewKey(t)
	f = &fixture{t: t, dir: t.TempDir(), state: t.TempDir(), key: listKey, now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	f.cfg = func(c *Config) {
		c.Keys, c.Trust = []minisign.PublicKey{root.Public}, filepath.Join(f.policy, "regblock.trust")
	}
	f.policy = t.TempDir()
	publish = func(serial int, lines string) {
		text := fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\n%s", serial, keyLine(root), lines)
		path := filepath.Join(f.policy, "regblock.trust")
		os.WriteFile(path+".minisig", root.Sign([]byte(text)), 0o644)
		os.WriteFile(path, []byte(text), 0o644)
	}
	return f, publish
}

// TestDeltaKeyRotation: a list key rotated with overlap (docs/trust.md)
// while the version in force is made by deltas, the base and first delta
// signed by the old key, the next by the new one. Once the old key leaves
// the policy, the version stays in force, and a restart restores it: the
// parts before the last delta are verified with the keys that signed
// them, the last is judged by the policy in force.
func TestDeltaKeyRotation(t *testing.T) {
	oldKey, newKey := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	f, publishPolicy := policyFixture(t, oldKey)
	v1 := listText("a", 1, deltaFiller()+"one.example\n")
	v2 := listText("a", 2, deltaFiller()+"one.example\ntwo.example\n")
	v3 := listText("a", 3, deltaFiller()+"one.example\ntwo.example\nthree.example\n")
	publishPolicy(1, "list a 1 "+keyLine(oldKey)+"\n")
	f.start()
	oldKey.WriteList(t, f.dir, "a.list", v1)
	f.set.Scan()
	// The new key's delta lands before the policy that trusts it: refused,
	// then applied once that policy arrives.
	newKey.WriteList(t, f.dir, "a.1.delta", deltaText(t, v1, v2, nil))
	f.set.Scan()
	f.expect("policy applied 1", "applied a 1", "rejected a bad_signature")
	publishPolicy(2, "list a 1 "+keyLine(oldKey)+" "+keyLine(newKey)+"\n")
	f.set.Scan()
	f.expect("policy applied 2", "unchanged a", "applied a 2")
	oldKey.WriteList(t, f.dir, "a.2.delta", deltaText(t, v2, v3, nil))
	f.set.Scan()
	f.expect("applied a 3")
	newKey.WriteList(t, f.dir, "a.3.delta", deltaText(t, v3, listText("a", 4, deltaFiller()+"one.example\nfour.example\n"), nil))
	f.set.Scan()
	f.expect("applied a 4")
	publishPolicy(3, "list a 1 "+keyLine(newKey)+"\n")
	f.set.Scan()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 4 {
		t.Fatalf("serial 4, signed by the key that stays, left force with the old key: %+v", c)
	}
	f.rec.take()
	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 4 || !f.blocks("four.example.") || f.blocks("two.example.") {
		t.Fatalf("after a restart: %+v; events %q", c, f.rec.take())
	}
}

// TestDeltaChainRestartDuplicates: a list that holds one line twice, and a
// chain applied in one scan (no compaction between its deltas), restores
// after a restart with the delta files gone; a chain applied across scans,
// compacted between its deltas, applies too.
func TestDeltaChainRestartDuplicates(t *testing.T) {
	v1 := listText("a", 1, "dup.example O-1 c\n")
	v2 := listText("a", 2, "dup.example O-1 c\ndup.example O-1 c\n")
	v3 := listText("a", 3, "other.example\n")

	f := newFixture(t)
	f.write("a.list", v1)
	f.set.Scan()
	f.write("a.1.delta", deltaText(t, v1, v2, nil))
	f.set.Scan() // a small list: compacted after the scan
	f.write("a.2.delta", deltaText(t, v2, v3, nil))
	f.set.Scan()
	f.expect("applied a 1", "applied a 2", "applied a 3")

	f = newFixture(t)
	f.write("a.list", v1)
	f.set.Scan()
	f.write("a.1.delta", deltaText(t, v1, v2, nil))
	f.write("a.2.delta", deltaText(t, v2, v3, nil))
	f.set.Scan()
	f.expect("applied a 1", "applied a 3")
	f.remove("a.1.delta")
	f.remove("a.2.delta")
	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 3 || !f.blocks("other.example.") || f.blocks("dup.example.") {
		t.Fatalf("after a restart: %+v, events %q", c, f.rec.take())
	}
}

// madeByDelta returns a fixture whose list a is at serial 2, made by the
// delta a.1.delta from a.list at serial 1, and the two versions' texts.
func madeByDelta(t *testing.T) (f *fixture, v1, v2 string) {
	f = newFixture(t)
	v1 = listText("a", 1, deltaFiller()+"old.example\n")
	v2 = listText("a", 2, deltaFiller()+"new.example\n")
	f.write("a.list", v1)
	f.set.Scan()
	f.write("a.1.delta", deltaText(t, v1, v2, nil))
	f.set.Scan()
	f.expect("applied a 1", "applied a 2")
	return f, v1, v2
}

// TestDeltaCrashBeforeRecord: the process stops after the state directory
// took the whole file of a version made by deltas, before its record: the
// record still names the deltas. The copy is that version, and a restart
// enforces it, whatever older file the lists directory holds.
func TestDeltaCrashBeforeRecord(t *testing.T) {
	f, v1, v2 := madeByDelta(t)
	f.remove("a.1.delta")
	// What save leaves when it stops before the record: the whole copy and
	// its signature in place.
	f.write("a.list", v2)
	for _, name := range []string{"a.list", "a.list.minisig"} {
		data, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(f.state, name), data, 0o640)
	}
	f.write("a.list", v1)
	f.start()
	if c := f.set.InForce("a"); c == nil || c.List.Serial != 2 || !f.blocks("new.example.") {
		t.Fatalf("after a restart: %+v, events %q", c, f.rec.take())
	}
}

// TestDeltaJunkNotReadWhole: a large file named like a delta, with a
// signature copied from a list (what anyone who can write the lists
// directory can put there), is refused after a streamed check, without
// being read into memory.
func TestDeltaJunkNotReadWhole(t *testing.T) {
	f := newFixture(t)
	f.cfg = func(c *Config) { c.MaxSize = 256 << 20 }
	f.start()
	f.write("a.list", listText("a", 1, ""))
	f.set.Scan()
	f.expect("applied a 1")
	junk := filepath.Join(f.dir, "a.1.delta")
	if err := os.WriteFile(junk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(junk, 200<<20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(filepath.Join(f.dir, "a.list.minisig"))
	os.WriteFile(junk+".minisig", sig, 0o644)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f.set.Scan()
	runtime.ReadMemStats(&after)
	f.expect("rejected a bad_signature")
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 50<<20 {
		t.Errorf("refusing a 200 MiB junk delta allocated %d MiB", grew>>20)
	}
}

// TestDeltaForgedSHA256: whoever holds the list's key signs a delta whose
// sha256 header names the whole file W of the real next version, while
// its entries make another set (target.example dropped). When W's whole
// file arrives, its entries are enforced and the chain is counted as
// delta_mismatch, rather than W being taken as unchanged with the forged
// entries in force.
func TestDeltaForgedSHA256(t *testing.T) {
	f := newFixture(t)
	v1 := listText("a", 1, deltaFiller()+"target.example ORDER-1\n")
	w := listText("a", 2, deltaFiller()+"target.example ORDER-1\nnew.example ORDER-2\n")
	forged := listText("a", 2, deltaFiller()+"new.example ORDER-2\n")
	f.write("a.list", v1)
	f.set.Scan()
	f.write("a.1.delta", deltaText(t, v1, forged, func(d *blocklist.Delta) { d.SHA256 = sha256.Sum256([]byte(w)) }))
	f.set.Scan()
	f.expect("applied a 1", "applied a 2")
	f.write("a.list", w)
	f.set.Scan()
	f.expect("rejected a delta_mismatch", "unchanged a, whole file of 103 entries in force") // the chain made 102
	if !f.blocks("target.example.") || !f.blocks("new.example.") {
		t.Error("W's whole file arrived, but its entries are not what is enforced")
	}
	if c := f.set.InForce("a"); len(c.deltas) != 0 {
		t.Error("the forged chain is still in force")
	}
	f.start()
	if !f.blocks("target.example.") {
		t.Error("after a restart, W is not enforced")
	}
}

// TestDeltaLostMarks: with the marks file lost, a restart rebuilds the
// mark of a version made by deltas from that version, not from its base:
// the base put back is then a rollback.
func TestDeltaLostMarks(t *testing.T) {
	f, v1, _ := madeByDelta(t)
	f.remove("a.1.delta")
	os.Remove(filepath.Join(f.state, marksFile))
	f.start()
	f.expect("applied a 2", "unchanged a")
	f.remove("a.list")
	f.set.Scan()
	f.expect("removed a: its file " + filepath.Join(f.dir, "a.list") + " was removed")
	f.write("a.list", v1)
	f.set.Scan()
	f.expect("rejected a rollback")
}

// TestDeltaNotForRPZ: a signed delta named after a list in force from an
// RPZ zone is refused: an RPZ zone has no deltas.
func TestDeltaNotForRPZ(t *testing.T) {
	f := newFixture(t)
	f.write("a.rpz", "$TTL 300\n@ SOA localhost. hostmaster.regulator.example. 1 3600 600 86400 300\n  NS localhost.\nold.example CNAME .\n")
	f.set.Scan()
	f.expect("applied a 1")
	f.write("a.1.delta", deltaText(t, listText("a", 1, ""), listText("a", 2, "new.example\n"), nil))
	f.set.Scan()
	f.expect("rejected a parse_error")
	if f.blocks("new.example.") || !f.blocks("old.example.") {
		t.Error("a delta changed a list in force from an RPZ zone")
	}
}

// TestWholeReloadDiffed checks that a whole new version of the list in
// force from a file, when it changes little, is diffed against the
// records in force (an overlay, no second index), that one that changes
// much is compiled, and that both answer and sum as the version does.
func TestWholeReloadDiffed(t *testing.T) {
	f := newFixture(t)
	names := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "n%d.example ORDER-%d\n", i, i%3)
		}
		return b.String()
	}
	f.write("a.list", listText("a", 1, names(0, 200)))
	f.set.Scan()
	f.expect("applied a 1")
	base := f.set.InForce("a").Index

	check := func(serial, overlay int, text string, blocked, passed string) {
		t.Helper()
		c := f.set.InForce("a")
		want, err := blockindex.ChecksumOf(fresh(t, "a.list", text).Lists()[0].Entries)
		if err != nil {
			t.Fatal(err)
		}
		if c.List.Serial != uint64(serial) || c.Index.OverlayLen() != overlay || c.Index.Checksum() != want {
			t.Errorf("in force: serial %d, %v, checksum %s; want serial %d, an overlay of %d, checksum %s",
				c.List.Serial, c.Index, c.Index.Checksum(), serial, overlay, want)
		}
		if !f.blocks(blocked) || f.blocks(passed) {
			t.Errorf("serial %d: %s must be blocked and %s pass", serial, blocked, passed)
		}
	}
	// Two removed, three added: an overlay of five on the records in force.
	v2 := listText("a", 2, names(2, 203))
	f.write("a.list", v2)
	f.set.Scan()
	f.expect("applied a 2")
	check(2, 5, v2, "n202.example.", "n1.example.")
	if c := f.set.InForce("a"); c.Index.String() != fmt.Sprintf("list %q: %d records, overlay of 5", "a", 201) {
		t.Errorf("diffed against the base of %v: %v", base, c.Index)
	}
	// Fifty changed, past a sixteenth of the list: compiled whole.
	v3 := listText("a", 3, names(50, 250))
	f.write("a.list", v3)
	f.set.Scan()
	f.expect("applied a 3")
	check(3, 0, v3, "n249.example.", "n49.example.")
	// A restart compiles the saved copy.
	f.start()
	f.expect("applied a 3", "unchanged a")
	check(3, 0, v3, "n249.example.", "n49.example.")
	v4 := listText("a", 4, names(50, 249))
	f.write("a.list", v4)
	f.set.Scan()
	f.expect("applied a 4")
	check(4, 1, v4, "n248.example.", "n249.example.")
}

// TestWholeReloadRPZCanary checks a diffed whole reload of an RPZ zone
// whose canary has a trigger too (as regblock export writes it): the
// canary answers as the header says, and once the header and trigger are
// gone, the canary name passes, as in a resolver started on that version.
func TestWholeReloadRPZCanary(t *testing.T) {
	f := newFixture(t)
	const canary = "canary.regblock.test"
	zone := func(serial, from int, withCanary bool) string {
		var b strings.Builder
		if withCanary {
			fmt.Fprintf(&b, ";$ canary: %s\n", canary)
		}
		fmt.Fprintf(&b, "$TTL 300\n@ SOA localhost. hostmaster.regulator.example. %d 3600 600 86400 300\n  NS localhost.\n", serial)
		for i := from; i < 160; i++ {
			fmt.Fprintf(&b, "n%d.example CNAME .\n", i)
		}
		if withCanary {
			b.WriteString(canary + " CNAME .\n")
		}
		return b.String()
	}
	check := func(text string) {
		t.Helper()
		want := fresh(t, "a.rpz", text)
		for _, q := range []string{canary + ".", "n1.example.", "n100.example."} {
			g, gok := f.index.Lookup(q)
			w, wok := want.Lookup(q)
			if gok != wok || g.Action != w.Action || g.Category != w.Category || g.Order != w.Order {
				t.Errorf("Lookup(%q) = %v %+v, a fresh compile says %v %+v", q, gok, g, wok, w)
			}
		}
	}
	f.write("a.rpz", zone(1, 0, true))
	f.set.Scan()
	f.expect("applied a 1")
	v2 := zone(2, 7, true)
	f.write("a.rpz", v2)
	f.set.Scan()
	f.expect("applied a 2")
	if n := f.set.InForce("a").Index.OverlayLen(); n != 7 {
		t.Errorf("serial 2 diffed into an overlay of %d, want the 7 triggers removed", n)
	}
	check(v2)
	v3 := zone(3, 7, false)
	f.write("a.rpz", v3)
	f.set.Scan()
	f.expect("applied a 3")
	check(v3)
}
