package listset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

// recorder is an event sink that keeps what a Set reports, one line an
// event: "applied NAME SERIAL", "rejected NAME RESULT", and so on.
type recorder struct{ events []string }

func (r *recorder) add(format string, args ...any) {
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) record(c Change) {
	switch c.Kind {
	case Applied:
		r.add("applied %s %d", c.List.List.Name, c.List.List.Serial)
	case Unchanged:
		if c.List != nil {
			r.add("unchanged %s, whole file of %d entries in force", c.Name, c.List.List.Blocking())
		} else {
			r.add("unchanged %s", c.Name)
		}
	case Refused:
		r.add("rejected %s %s", c.Refusal.List, c.Refusal.Result)
	case Removed:
		r.add("removed %s: %s", c.List.List.Name, c.Why)
	case Moved:
		r.add("moved %s from %s to %s", c.List.List.Name, filepath.Base(c.From), filepath.Base(c.List.Path))
	case PolicyApplied:
		r.add("policy applied %d", c.Policy.Serial)
	case PolicyRefused:
		r.add("policy rejected %s", c.Result)
	case PolicyExpired:
		r.add("policy expired %d", c.Policy.Serial)
	case Expired:
		r.add("expired %s %d", c.List.List.Name, c.List.List.Serial)
	case Waiting:
		r.add("waiting %s", filepath.Base(c.Path))
	case Problem:
		r.add("error %v", c.Err)
	}
}
func (r *recorder) take() (got []string) { got, r.events = r.events, nil; return got }

// fixture is a lists directory, a state directory, a key and a Set over
// them with a recorder and a fake clock.
type fixture struct {
	t          *testing.T
	dir, state string
	key        *blocklisttest.Key
	rec        *recorder
	set        *Set
	index      *blockindex.Index
	now        time.Time
	cfg        func(*Config) // changes the configuration start makes, when set
	policy     string        // a directory for the trust policy, when cfg names one
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), state: t.TempDir(), key: blocklisttest.NewKey(t),
		now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	f.start()
	return f
}

// start makes a new Set, as a restart does, restores and scans.
func (f *fixture) start() {
	f.rec = &recorder{}
	cfg := Config{Lists: []string{f.dir}, Keys: []minisign.PublicKey{f.key.Public}, MaxSize: 1 << 20, State: f.state}
	if f.cfg != nil {
		f.cfg(&cfg)
	}
	f.set = New(cfg, func(ix *blockindex.Index) { f.index = ix }, f.rec.record)
	f.set.Now = func() time.Time { return f.now }
	f.set.Restore()
	f.set.Scan()
}

func listText(name string, serial int, extra string) string {
	return fmt.Sprintf("#! regblock-list 1\n#! name: %s\n#! serial: %d\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2026-12-05T06:00:00Z\nabuse.example\n%s", name, serial, extra)
}

func (f *fixture) write(file, text string) { f.key.WriteList(f.t, f.dir, file, text) }

func (f *fixture) rename(from, to string) {
	f.t.Helper()
	for _, suffix := range []string{minisig.Suffix, ""} {
		if err := os.Rename(filepath.Join(f.dir, from+suffix), filepath.Join(f.dir, to+suffix)); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) remove(file string) {
	os.Remove(filepath.Join(f.dir, file))
	os.Remove(filepath.Join(f.dir, file+minisig.Suffix))
}

// expect checks the events since the last check.
func (f *fixture) expect(want ...string) {
	f.t.Helper()
	if got := f.rec.take(); !slices.Equal(got, want) {
		f.t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (f *fixture) blocks(name string) bool {
	if f.index == nil {
		return false
	}
	_, ok := f.index.Lookup(name)
	return ok
}

func TestSetVersions(t *testing.T) {
	f := newFixture(t)
	f.write("a.list", listText("a", 2, ""))
	f.set.Scan()
	f.expect("applied a 2")

	f.write("a.list", listText("a", 2, "")) // the same bytes again
	f.set.Scan()
	f.expect("unchanged a")

	f.write("a.list", listText("a", 1, "older.example\n"))
	f.set.Scan()
	f.expect("rejected a rollback")

	f.write("a.list", listText("a", 2, "other.example\n"))
	f.set.Scan()
	f.expect("rejected a rollback")

	os.WriteFile(filepath.Join(f.dir, "a.list"), []byte(listText("a", 3, "forged.example\n")), 0o644)
	f.set.Scan()
	f.expect("rejected a bad_signature")
	if !f.blocks("abuse.example.") || f.blocks("forged.example.") || f.blocks("older.example.") {
		t.Error("a rejected version changed what is blocked")
	}

	f.write("a.list", listText("a", 3, "three.example\n"))
	f.set.Scan()
	f.expect("applied a 3")
	if !f.blocks("three.example.") {
		t.Error("version 3 is not in force")
	}

	// Expiry, on the fake clock: reported once, and the list stays.
	f.set.CheckExpiry()
	f.expect()
	f.now = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f.set.CheckExpiry()
	f.set.Scan()
	f.expect("expired a 3")
	if !f.blocks("three.example.") {
		t.Error("an expired list is no longer enforced")
	}

	f.remove("a.list")
	f.set.Scan()
	f.expect("removed a: its file " + filepath.Join(f.dir, "a.list") + " was removed")
	if f.blocks("abuse.example.") {
		t.Error("a removed list is still enforced")
	}
}

// TestSetRename moves and copies a list's files: the same bytes under
// another name are the same list and stay in force without being unloaded,
// also across a restart.
func TestSetRename(t *testing.T) {
	f := newFixture(t)
	f.write("a.list", listText("a", 2, ""))
	f.set.Scan()
	f.expect("applied a 2")

	f.rename("a.list", "b.list")
	f.set.Scan()
	f.expect("unchanged a", "moved a from a.list to b.list")
	if !f.blocks("abuse.example.") {
		t.Fatal("a renamed list is no longer enforced")
	}

	// A copy, then the original removed.
	data, _ := os.ReadFile(filepath.Join(f.dir, "b.list"))
	f.write("c.list", string(data))
	f.set.Scan()
	f.expect("unchanged a")
	f.remove("b.list")
	f.set.Scan()
	f.expect("moved a from b.list to c.list")

	// Renamed while stopped: the restart restores it and keeps it.
	f.rename("c.list", "d.list")
	f.start()
	f.expect("applied a 2", "unchanged a", "moved a from c.list to d.list")
	if !f.blocks("abuse.example.") {
		t.Fatal("a list renamed while stopped is not enforced after the restart")
	}

	// Removed while stopped: unloaded at the restart, saying so.
	f.remove("d.list")
	f.start()
	f.expect("applied a 2", "removed a: its file "+filepath.Join(f.dir, "d.list")+" was removed while stopped")
	if _, err := os.Stat(filepath.Join(f.state, "a.json")); !os.IsNotExist(err) {
		t.Errorf("the saved copy of a removed list is still there: %v", err)
	}
}

// TestSetHighWaterMarks deletes, renames and replaces a list's file and
// restarts: a serial below the highest ever accepted for the list's name is
// a rollback whatever file it arrives in.
func TestSetHighWaterMarks(t *testing.T) {
	f := newFixture(t)
	f.write("a.list", listText("a", 5, ""))
	f.set.Scan()
	f.expect("applied a 5")

	// Deleted, then an older version under the same file name.
	f.remove("a.list")
	f.set.Scan()
	f.expect("removed a: its file " + filepath.Join(f.dir, "a.list") + " was removed")
	f.write("a.list", listText("a", 4, "older.example\n"))
	f.set.Scan()
	f.expect("rejected a rollback")

	// Under another file name, and after a restart.
	f.remove("a.list")
	f.write("other-name.list", listText("a", 3, "older.example\n"))
	f.start()
	f.expect("rejected a rollback")
	if f.blocks("older.example.") {
		t.Error("an older version is enforced")
	}

	// The marked version itself may come back, and newer ones apply.
	f.write("other-name.list", listText("a", 5, ""))
	f.set.Scan()
	f.expect("applied a 5")
	f.write("other-name.list", listText("a", 6, "six.example\n"))
	f.set.Scan()
	f.expect("applied a 6")
	if !f.blocks("six.example.") {
		t.Error("version 6 is not enforced")
	}
}

// keyLine returns a key as a trust policy writes it.
func keyLine(k *blocklisttest.Key) string {
	text, _ := k.Public.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	return lines[len(lines)-1]
}

// TestSetTrustPolicy runs a set under a trust policy: lists are refused
// until a policy is in force, then judged by the line for their name; a
// policy that takes a stolen key away unloads what the key signed and lets
// the real issuer's next serial in, whatever serial the thief used; a
// restart restores policy and lists.
func TestSetTrustPolicy(t *testing.T) {
	root, mcmc, mcmc2, police := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	f := &fixture{t: t, dir: t.TempDir(), state: t.TempDir(), key: mcmc, now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	policyPath := filepath.Join(t.TempDir(), "regblock.trust")
	start := func() {
		f.rec = &recorder{}
		cfg := Config{Lists: []string{f.dir}, Keys: []minisign.PublicKey{root.Public}, MaxSize: 1 << 20, State: f.state, Trust: policyPath}
		f.set = New(cfg, func(ix *blockindex.Index) { f.index = ix }, f.rec.record)
		f.set.Now = func() time.Time { return f.now }
		f.set.Restore()
		f.set.Scan()
	}
	publishPolicy := func(serial int, lines string, signers ...*blocklisttest.Key) {
		text := fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-11-30T00:00:00Z\nroot 1 %s\n%s", serial, keyLine(root), lines)
		var sig []byte
		for _, k := range signers {
			sig = append(sig, k.Sign([]byte(text))...)
		}
		os.WriteFile(policyPath+".minisig", sig, 0o644)
		os.WriteFile(policyPath, []byte(text), 0o644)
	}
	writeBy := func(k *blocklisttest.Key, file, text string) { k.WriteList(t, f.dir, file, text) }

	start()
	writeBy(mcmc, "mcmc.list", listText("mcmc-csam", 1, ""))
	f.set.Scan()
	f.expect("rejected mcmc untrusted") // no policy yet: the file's name stands for the list

	v1 := "list mcmc-csam 1 " + keyLine(mcmc) + "\nlist pdrm-* 1 " + keyLine(police) + "\n"
	publishPolicy(1, v1, mcmc) // not a root key
	f.set.Scan()
	f.expect("policy rejected bad_signature")
	publishPolicy(1, "root 1 "+keyLine(mcmc)+"\n"+v1, root, mcmc) // a second root line
	f.set.Scan()
	f.expect("policy rejected parse_error")
	publishPolicy(1, v1, root)
	f.set.Scan()
	f.expect("policy applied 1", "applied mcmc-csam 1")

	// Another authority's key, and a name no line names.
	writeBy(police, "forged.list", listText("mcmc-csam", 99, "forged.example\n"))
	writeBy(police, "pdrm-1.list", listText("pdrm-1", 1, "police.example\n"))
	writeBy(mcmc, "other.list", listText("other", 1, "other.example\n"))
	f.set.Scan()
	f.expect("rejected mcmc-csam threshold", "rejected other untrusted", "applied pdrm-1 1")
	if f.blocks("forged.example.") || f.blocks("other.example.") || !f.blocks("police.example.") {
		t.Error("what is enforced does not follow the policy")
	}
	os.Remove(filepath.Join(f.dir, "forged.list"))
	os.Remove(filepath.Join(f.dir, "other.list"))

	// The mcmc key is stolen: the thief pushes serial 999.
	writeBy(mcmc, "mcmc.list", listText("mcmc-csam", 999, "thief.example\n"))
	f.set.Scan()
	f.expect("applied mcmc-csam 999")
	// Recovery: a policy without the stolen key.
	publishPolicy(2, "list mcmc-csam 1 "+keyLine(mcmc2)+"\nlist pdrm-* 1 "+keyLine(police)+"\n", root)
	f.set.Scan()
	got := strings.Join(f.rec.take(), "; ")
	// The thief's file is read again: signed by a key the policy no longer
	// has, it verifies with none.
	if !strings.HasPrefix(got, "policy applied 2; removed mcmc-csam: no longer trusted under trust policy serial 2") || !strings.Contains(got, "rejected mcmc bad_signature") {
		t.Errorf("after the recovery policy: %s", got)
	}
	if f.blocks("thief.example.") {
		t.Error("the thief's list is still enforced")
	}
	writeBy(mcmc2, "mcmc.list", listText("mcmc-csam", 2, "real.example\n"))
	f.set.Scan()
	f.expect("applied mcmc-csam 2")
	if !f.blocks("real.example.") {
		t.Error("the real issuer's serial 2 is not enforced after the recovery")
	}

	// The old policy again: a rollback.
	publishPolicy(1, v1, root)
	f.set.Scan()
	f.expect("policy rejected rollback")

	// A restart restores the policy in force (serial 2) and its lists.
	publishPolicy(2, "list mcmc-csam 1 "+keyLine(mcmc2)+"\nlist pdrm-* 1 "+keyLine(police)+"\n", root)
	start()
	got = strings.Join(f.rec.take(), "; ")
	if !strings.HasPrefix(got, "policy applied 2; applied ") || !f.blocks("real.example.") || !f.blocks("police.example.") {
		t.Errorf("after a restart: %s", got)
	}
}

// TestTrustFileInListsDir: a policy put into a lists directory is reported
// once (it is read only from 'trust'), not silently passed by.
func TestTrustFileInListsDir(t *testing.T) {
	key := blocklisttest.NewKey(t)
	dir := t.TempDir()
	key.WriteList(t, dir, "example.list", listText("example", 1, ""))
	os.WriteFile(filepath.Join(dir, "regblock.trust"), []byte("#! regblock-trust 1\n"), 0o644)
	rec := &recorder{}
	set := New(Config{Lists: []string{dir}, Keys: []minisign.PublicKey{key.Public}, MaxSize: 1 << 20}, func(*blockindex.Index) {}, rec.record)
	set.Scan()
	set.Scan()
	n := 0
	for _, e := range rec.take() {
		if strings.Contains(e, "regblock.trust is a trust policy in a lists directory") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the policy in the lists directory was reported %d times, want once", n)
	}
}

// TestTwoVersionsInOneScan: two files carrying versions of one list, read
// in one scan: only the later, the one in the index published, is
// recorded as applied.
func TestTwoVersionsInOneScan(t *testing.T) {
	f := newFixture(t)
	f.write("a.list", listText("x", 6, "six.example\n"))
	f.write("b.list", listText("x", 7, "seven.example\n"))
	f.set.Scan()
	f.expect("applied x 7")
	if f.blocks("six.example.") || !f.blocks("seven.example.") {
		t.Error("the index holds serial 6, or not serial 7")
	}
}

// TestCrashBeforeCommit: a scan that dies after it decided to remove a list
// but before it recorded the removal (an out-of-memory kill while a later
// file is parsed) leaves the list's copy in the state directory, so that
// the restart removes it again, on the record.
func TestCrashBeforeCommit(t *testing.T) {
	f := newFixture(t)
	f.write("a.list", listText("x", 1, ""))
	f.set.Scan()
	f.expect("applied x 1")
	f.write("a.list", listText("y", 1, "")) // the file now holds another list
	clear(f.set.stamps)
	f.set.consider(filepath.Join(f.dir, "a.list")) // decided, not committed: the crash
	if _, err := os.Stat(filepath.Join(f.state, "x.json")); err != nil {
		t.Fatalf("x's copy left the state directory before its removal was recorded: %v", err)
	}
	f.start()
	f.expect("applied x 1", "applied y 1", "unchanged y", "removed x: its file "+filepath.Join(f.dir, "a.list")+" now holds list \"y\"")
	if _, err := os.Stat(filepath.Join(f.state, "x.json")); err == nil {
		t.Error("x's copy stays in the state directory after its removal was recorded")
	}
}

// TestSwappedFiles: two lists' files swapped, then one deleted: the list
// whose bytes went with it is removed, the other stays, whatever order the
// scan meets them in.
func TestSwappedFiles(t *testing.T) {
	for range 5 { // map order varies between runs
		f := newFixture(t)
		f.write("alpha.list", listText("alpha", 1, "alpha.example\n"))
		f.write("beta.list", listText("beta", 1, "beta.example\n"))
		f.set.Scan()
		f.rec.take()
		f.rename("alpha.list", "tmp.list")
		f.rename("beta.list", "alpha.list")
		f.rename("tmp.list", "beta.list")
		f.set.Scan()
		f.rec.take()
		f.remove("alpha.list") // holds beta
		f.set.Scan()
		if f.blocks("beta.example.") || !f.blocks("alpha.example.") {
			t.Fatalf("after deleting the file that holds beta: blocks beta %v, alpha %v; events %q", f.blocks("beta.example."), f.blocks("alpha.example."), f.rec.take())
		}
	}
}
