//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
)

// authority is a key made and used with the stock minisign CLI.
type authority struct {
	t        *testing.T
	ms       string
	pub, sec string
	line     string // the public key as a trust policy writes it
}

func newAuthority(t *testing.T, ms, dir, name string) authority {
	t.Helper()
	a := authority{t: t, ms: ms, pub: filepath.Join(dir, name+".pub"), sec: filepath.Join(dir, name+".key")}
	if out, err := exec.Command(ms, "-G", "-W", "-p", a.pub, "-s", a.sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(a.pub)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	a.line = lines[len(lines)-1]
	return a
}

// publish writes text to path, signed by each of signers with minisign -S,
// the signatures joined as cat joins them; signature first, then the file,
// each renamed into place.
func publish(t *testing.T, path, text string, signers ...authority) {
	t.Helper()
	staged := filepath.Join(t.TempDir(), filepath.Base(path))
	os.WriteFile(staged, []byte(text), 0o644)
	var sig []byte
	for i, a := range signers {
		one := fmt.Sprintf("%s.%d.minisig", staged, i)
		if out, err := exec.Command(a.ms, "-S", "-s", a.sec, "-m", staged, "-x", one).CombinedOutput(); err != nil {
			t.Fatalf("minisign -S: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(one)
		sig = append(sig, data...)
	}
	os.WriteFile(staged+".minisig", sig, 0o644)
	if err := os.Rename(staged+".minisig", path+".minisig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, path); err != nil {
		t.Fatal(err)
	}
}

func trustPolicy(serial int, lines ...string) string {
	return fmt.Sprintf("#! regblock-trust 1\n#! serial: %d\n#! issued: 2026-11-30T00:00:00Z\n#! expires: 2027-06-01T00:00:00Z\n%s\n", serial, strings.Join(lines, "\n"))
}

func namedList(name string, serial int, names ...string) string {
	return fmt.Sprintf("#! regblock-list 1\n#! name: %s\n#! serial: %d\n#! issued: 2026-11-30T06:00:00Z\n%s\n", name, serial, strings.Join(names, "\n"))
}

// TestTrustPolicyScenarios walks what docs/trust.md tells a regulator to
// do, with keys and signatures of the stock minisign CLI, against a
// running regblockd: several authorities, each signing only its own lists;
// a list that needs two signatures; a list key rotated with overlap; a
// stolen list key and a stolen root key recovered from; a three-step root
// rotation across restarts.
func TestTrustPolicyScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	keys := t.TempDir()
	rootA, rootB, rootC := newAuthority(t, ms, keys, "root-a"), newAuthority(t, ms, keys, "root-b"), newAuthority(t, ms, keys, "root-c")
	mcmc, mcmc2, police := newAuthority(t, ms, keys, "mcmc"), newAuthority(t, ms, keys, "mcmc-2"), newAuthority(t, ms, keys, "police")
	judge1, judge2, judge3 := newAuthority(t, ms, keys, "judge-1"), newAuthority(t, ms, keys, "judge-2"), newAuthority(t, ms, keys, "judge-3")

	lists, state, trustDir := t.TempDir(), t.TempDir(), t.TempDir()
	policyPath := filepath.Join(trustDir, "regblock.trust")
	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+lists+`
        pubkey `+rootA.pub+` `+rootB.pub+` `+rootC.pub+`
        trust `+policyPath+`
        state `+state+`
        notice 192.0.2.80
    }
    prometheus 127.0.0.1:`+metricsPort+`
}
`), 0o644)
	var cmd *exec.Cmd
	var logs *testenv.Output
	start := func() {
		t.Helper()
		if cmd != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		cmd = exec.Command(bin, "-conf", conf)
		logs = testenv.Process(t, "regblockd", cmd)
		testenv.Eventually(t, 20*time.Second, "regblockd answers", func() bool {
			_, err := query(addr, "probe.test.", dns.TypeA)
			return err == nil
		})
	}
	blocked := func(name string) bool {
		r, err := query(addr, name+".", dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	becomes := func(name string, want bool) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%s blocked: %v", name, want), func() bool { return blocked(name) == want })
	}
	counted := func(series string) float64 {
		return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))[series]
	}
	// refused publishes and waits for the reload metric to count one
	// more refusal of the list; the count is read before the file lands,
	// since the reload may be done before a scrape after it.
	refused := func(name string, result string, publish func()) {
		t.Helper()
		series := `coredns_regblock_reloads_total{list="` + name + `",result="` + result + `"}`
		before := counted(series)
		publish()
		testenv.Eventually(t, 10*time.Second, series+" counts one more", func() bool { return counted(series) > before })
	}
	root := func(threshold int, keys ...authority) string {
		line := fmt.Sprintf("root %d", threshold)
		for _, k := range keys {
			line += " " + k.line
		}
		return line
	}

	// Several authorities, each with its own lists.
	rootLine := root(2, rootA, rootB, rootC)
	publish(t, policyPath, trustPolicy(1, rootLine,
		"list mcmc-csam 1 "+mcmc.line,
		"list pdrm-* 1 "+police.line,
		"list court-* 2 "+judge1.line+" "+judge2.line+" "+judge3.line), rootA, rootB)
	publish(t, filepath.Join(lists, "mcmc-csam.list"), namedList("mcmc-csam", 1, "abuse.example"), mcmc)
	start()
	becomes("abuse.example", true)
	if got := counted("coredns_regblock_trust_serial"); got != 1 {
		t.Errorf("trust_serial %v, want 1", got)
	}
	publish(t, filepath.Join(lists, "pdrm-1.list"), namedList("pdrm-1", 1, "police.example"), police)
	becomes("police.example", true)

	// The police key cannot sign the regulator's list, nor a list no line
	// names.
	refused("mcmc-csam", "threshold", func() {
		publish(t, filepath.Join(lists, "mcmc-forged.list"), namedList("mcmc-csam", 99, "forged.example"), police)
	})
	refused("other", "untrusted", func() {
		publish(t, filepath.Join(lists, "other.list"), namedList("other", 1, "other.example"), police)
	})
	if blocked("forged.example") || blocked("other.example") {
		t.Error("a list signed outside its line is enforced")
	}
	os.Remove(filepath.Join(lists, "mcmc-forged.list"))
	os.Remove(filepath.Join(lists, "other.list"))

	// Two signatures: one judge is not enough, two joined are.
	court := namedList("court-7", 1, "court.example")
	refused("court-7", "threshold", func() {
		publish(t, filepath.Join(lists, "court-7.list"), court, judge1)
	})
	publish(t, filepath.Join(lists, "court-7.list"), court, judge1, judge3)
	becomes("court.example", true)

	// A list key rotated with overlap: both keys, then only the new one.
	publish(t, policyPath, trustPolicy(2, rootLine,
		"list mcmc-csam 1 "+mcmc.line+" "+mcmc2.line,
		"list pdrm-* 1 "+police.line,
		"list court-* 2 "+judge1.line+" "+judge2.line+" "+judge3.line), rootB, rootC)
	publish(t, filepath.Join(lists, "mcmc-csam.list"), namedList("mcmc-csam", 2, "abuse.example", "two.example"), mcmc2)
	becomes("two.example", true)

	// The old mcmc key is stolen: the thief pushes serial 999.
	publish(t, filepath.Join(lists, "mcmc-csam.list"), namedList("mcmc-csam", 999, "abuse.example", "thief.example"), mcmc)
	becomes("thief.example", true)
	// Recovery: a policy without the stolen key unloads what it signed...
	v3 := trustPolicy(3, rootLine,
		"list mcmc-csam 1 "+mcmc2.line,
		"list pdrm-* 1 "+police.line,
		"list court-* 2 "+judge1.line+" "+judge2.line+" "+judge3.line)
	publish(t, policyPath, v3, rootA, rootC)
	becomes("thief.example", false)
	// ... and the regulator's next serial counts, whatever the thief used.
	publish(t, filepath.Join(lists, "mcmc-csam.list"), namedList("mcmc-csam", 3, "abuse.example", "three.example"), mcmc2)
	becomes("three.example", true)

	// A stolen root key: alone it cannot sign a policy.
	before := counted(`coredns_regblock_trust_reloads_total{result="threshold"}`)
	publish(t, policyPath, trustPolicy(4, root(1, rootA), "list * 1 "+police.line), rootA)
	testenv.Eventually(t, 10*time.Second, "a policy signed by one root key is refused", func() bool {
		return counted(`coredns_regblock_trust_reloads_total{result="threshold"}`) > before
	})
	if !blocked("three.example") || counted("coredns_regblock_trust_serial") != 3 {
		t.Fatal("a refused policy changed what is enforced")
	}
	// Nor can an old policy come back.
	publish(t, policyPath, trustPolicy(1, rootLine, "list * 1 "+police.line), rootB, rootC)
	testenv.Eventually(t, 10*time.Second, "the old policy is refused as a rollback", func() bool {
		return counted(`coredns_regblock_trust_reloads_total{result="rollback"}`) > 0
	})

	// Three-step root rotation across restarts, away from the stolen root
	// key A: add D, drop A, then replace B and C by D and E.
	rootD, rootE := newAuthority(t, ms, keys, "root-d"), newAuthority(t, ms, keys, "root-e")
	lines := []string{"list mcmc-csam 1 " + mcmc2.line, "list pdrm-* 1 " + police.line, "list court-* 2 " + judge1.line + " " + judge2.line + " " + judge3.line}
	steps := []struct {
		root    string
		signers []authority
	}{
		{root(2, rootA, rootB, rootC, rootD), []authority{rootB, rootC}}, // 2 of the root in force, 2 of its own
		{root(2, rootB, rootC, rootD), []authority{rootB, rootD}},
		{root(2, rootD, rootE), []authority{rootB, rootD, rootE}},
	}
	for i, step := range steps {
		serial := 5 + i
		publish(t, policyPath, trustPolicy(serial, append([]string{step.root}, lines...)...), step.signers...)
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("policy serial %d is in force", serial), func() bool {
			return counted("coredns_regblock_trust_serial") == float64(serial)
		})
		start() // the state directory carries the policy over
		if got := counted("coredns_regblock_trust_serial"); got != float64(serial) || !blocked("three.example") || !blocked("court.example") {
			t.Fatalf("after restart %d: trust serial %v, lists in force: %v %v\n%s", i+1, got, blocked("three.example"), blocked("court.example"), logs)
		}
	}
	// The retired roots can no longer sign.
	publish(t, policyPath, trustPolicy(9, append([]string{rootLine}, lines...)...), rootA, rootB, rootC)
	testenv.Eventually(t, 10*time.Second, "a policy signed by retired roots is refused", func() bool {
		return strings.Contains(logs.String(), "Trust policy rejected (threshold)")
	})
	if got := counted("coredns_regblock_trust_serial"); got != 7 {
		t.Errorf("trust serial %v after a policy by retired roots, want 7", got)
	}
}

// withKeyID returns a public key or signature line (base64: two algorithm
// bytes, then the 8-byte key ID) carrying the key ID of other instead, as
// whoever makes a key or holds a signature can write it: the ID is not
// signed.
func withKeyID(t *testing.T, line, other string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(line)
	from, err2 := base64.StdEncoding.DecodeString(other)
	if err != nil || err2 != nil || len(raw) < 10 || len(from) < 10 {
		t.Fatalf("not a minisign key or signature line: %q, %q", line, other)
	}
	copy(raw[2:10], from[2:10])
	return base64.StdEncoding.EncodeToString(raw)
}

// reID rewrites every signature of path's .minisig to carry the key ID of
// the public key line id.
func reID(t *testing.T, path, id string) {
	t.Helper()
	data, _ := os.ReadFile(path + ".minisig")
	lines := strings.Split(string(data), "\n")
	for i := 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i-1], "untrusted comment: ") {
			lines[i] = withKeyID(t, lines[i], id)
		}
	}
	os.WriteFile(path+".minisig", []byte(strings.Join(lines, "\n")), 0o644)
}

// TestTrustKeyIdentity: a key is its whole public key. An authority that
// makes a key carrying the regulator's key ID gets no policy through with
// it, cannot sign the regulator's list, and does not stop the regulator's
// next version; one judge's key listed under two IDs does not meet a 2-of-3
// threshold alone; two pubkey files with one ID stop the resolver at setup.
func TestTrustKeyIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	keys := t.TempDir()
	root, mcmc, police := newAuthority(t, ms, keys, "root"), newAuthority(t, ms, keys, "mcmc"), newAuthority(t, ms, keys, "police")
	judge1, judge2, judge3 := newAuthority(t, ms, keys, "judge-1"), newAuthority(t, ms, keys, "judge-2"), newAuthority(t, ms, keys, "judge-3")
	courtLine := "list court-* 2 " + judge1.line + " " + judge2.line + " " + judge3.line

	lists, state, trustDir := t.TempDir(), t.TempDir(), t.TempDir()
	policyPath := filepath.Join(trustDir, "regblock.trust")
	port, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	conf := filepath.Join(t.TempDir(), "Corefile")
	corefile := func(pubkeys string) {
		os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+lists+`
        pubkey `+pubkeys+`
        trust `+policyPath+`
        state `+state+`
        notice 192.0.2.80
    }
    prometheus 127.0.0.1:`+metricsPort+`
}
`), 0o644)
	}
	blocked := func(name string) bool {
		r, err := query(addr, name+".", dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	counted := func(series string) float64 {
		return metricValues(scrape(t, "http://127.0.0.1:"+metricsPort+"/metrics"))[series]
	}
	countsOneMore := func(series string, publish func()) {
		t.Helper()
		before := counted(series)
		publish()
		testenv.Eventually(t, 10*time.Second, series+" counts one more", func() bool { return counted(series) > before })
	}

	corefile(root.pub)
	publish(t, policyPath, trustPolicy(1, "root 1 "+root.line, "list pdrm-* 1 "+police.line, "list mcmc-csam 1 "+mcmc.line, courtLine), root)
	mcmcPath := filepath.Join(lists, "mcmc-csam.list")
	publish(t, mcmcPath, namedList("mcmc-csam", 1, "abuse.example"), mcmc)
	logs := testenv.Process(t, "regblockd", exec.Command(bin, "-conf", conf))
	testenv.Eventually(t, 20*time.Second, "the regulator's list is enforced", func() bool { return blocked("abuse.example") })

	// The police make a key carrying the regulator's key ID, and get it
	// onto their own line: the policy is refused whole.
	forged := withKeyID(t, police.line, mcmc.line)
	countsOneMore(`coredns_regblock_trust_reloads_total{result="parse_error"}`, func() {
		publish(t, policyPath, trustPolicy(2, "root 1 "+root.line, "list pdrm-* 1 "+forged, "list mcmc-csam 1 "+mcmc.line, courtLine), root)
	})
	if got := counted("coredns_regblock_trust_serial"); got != 1 || !strings.Contains(logs.String(), "the same key ID") {
		t.Fatalf("a policy giving the regulator's key ID to the police key: trust serial %v\n%s", got, logs)
	}
	// Their list claiming the regulator's name, its signature carrying the
	// regulator's key ID, is refused...
	countsOneMore(`coredns_regblock_reloads_total{list="unknown",result="bad_signature"}`, func() {
		forgedPath := filepath.Join(lists, "mcmc-forged.list")
		publish(t, forgedPath, namedList("mcmc-csam", 50, "abuse.example", "forged.example"), police)
		reID(t, forgedPath, mcmc.line)
	})
	if blocked("forged.example") {
		t.Fatal("a list signed by the police under the regulator's key ID is enforced")
	}
	os.Remove(filepath.Join(lists, "mcmc-forged.list"))
	// ... and the regulator's next version is enforced.
	publish(t, mcmcPath, namedList("mcmc-csam", 2, "abuse.example", "two.example"), mcmc)
	testenv.Eventually(t, 10*time.Second, "the regulator's next version is enforced", func() bool { return blocked("two.example") })

	// One judge's key listed a second time under another judge's ID:
	// refused whole.
	countsOneMore(`coredns_regblock_trust_reloads_total{result="parse_error"}`, func() {
		publish(t, policyPath, trustPolicy(3, "root 1 "+root.line, "list mcmc-csam 1 "+mcmc.line,
			"list court-* 2 "+judge1.line+" "+withKeyID(t, judge1.line, judge3.line)+" "+judge2.line), root)
	})
	// The judge signs twice, the second block carrying judge 3's ID: one
	// key, one signature.
	countsOneMore(`coredns_regblock_reloads_total{list="court-7",result="threshold"}`, func() {
		court := filepath.Join(lists, "court-7.list")
		publish(t, court, namedList("court-7", 1, "court.example"), judge1, judge1)
		data, _ := os.ReadFile(court + ".minisig")
		lines := strings.Split(string(data), "\n")
		lines[5] = withKeyID(t, lines[5], judge3.line) // the second block's signature line
		os.WriteFile(court+".minisig", []byte(strings.Join(lines, "\n")), 0o644)
	})
	if blocked("court.example") || counted("coredns_regblock_trust_serial") != 1 {
		t.Fatalf("one judge met a 2-of-3 threshold alone\n%s", logs)
	}

	// Two pubkey files that give two public keys one ID: setup refuses.
	forgedRoot := filepath.Join(keys, "forged-root.pub")
	os.WriteFile(forgedRoot, []byte("untrusted comment: minisign public key\n"+withKeyID(t, police.line, root.line)+"\n"), 0o644)
	corefile(root.pub + " " + forgedRoot)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-conf", conf).CombinedOutput(); ctx.Err() != nil || !strings.Contains(string(out), "the same key ID") {
		t.Fatalf("regblockd with two pubkeys of one ID: %v\n%s", err, out)
	}
}

// TestRotationKeepsMark: a list key rotated with overlap, as docs/trust.md
// says (both keys, the next version by the new key, then the old key
// dropped), keeps the list's high-water mark: a version the new key signed
// before, put back after the list was deleted, is a rollback.
func TestRotationKeepsMark(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	keys := t.TempDir()
	root, old, next := newAuthority(t, ms, keys, "root"), newAuthority(t, ms, keys, "old"), newAuthority(t, ms, keys, "new")
	policyPath := filepath.Join(t.TempDir(), "regblock.trust")
	r := newTrustResolver(t, root.pub, policyPath)
	lists, blocked, counted := r.lists, r.blocked, r.counted
	serial := func(n int) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("trust policy serial %d is in force", n), func() bool { return counted("coredns_regblock_trust_serial") == float64(n) })
	}
	list := filepath.Join(lists, "mcmc-csam.list")

	publish(t, policyPath, trustPolicy(1, "root 1 "+root.line, "list mcmc-csam 1 "+old.line), root)
	publish(t, list, namedList("mcmc-csam", 5, "five.example"), old)
	r.start()
	testenv.Eventually(t, 20*time.Second, "serial 5 is enforced", func() bool { return blocked("five.example") })

	// Overlap: both keys; the new key signs serials 6 and 7.
	publish(t, policyPath, trustPolicy(2, "root 1 "+root.line, "list mcmc-csam 1 "+old.line+" "+next.line), root)
	serial(2)
	staged := t.TempDir()
	six := filepath.Join(staged, "six.list")
	publish(t, six, namedList("mcmc-csam", 6, "six.example"), next)
	publish(t, list, namedList("mcmc-csam", 7, "seven.example"), next)
	testenv.Eventually(t, 10*time.Second, "serial 7 is enforced", func() bool { return blocked("seven.example") })

	// The old key dropped; the list deleted; serial 6, signed by the new
	// key, put back: a rollback.
	publish(t, policyPath, trustPolicy(3, "root 1 "+root.line, "list mcmc-csam 1 "+next.line), root)
	serial(3)
	os.Remove(list)
	os.Remove(list + ".minisig")
	testenv.Eventually(t, 10*time.Second, "the deleted list is unloaded", func() bool { return !blocked("seven.example") })
	before := counted(`coredns_regblock_reloads_total{list="mcmc-csam",result="rollback"}`)
	os.Rename(six+".minisig", list+".minisig")
	os.Rename(six, list)
	testenv.Eventually(t, 10*time.Second, "serial 6 is refused as a rollback", func() bool {
		return counted(`coredns_regblock_reloads_total{list="mcmc-csam",result="rollback"}`) > before
	})
	if blocked("six.example") {
		t.Fatalf("serial 6 is enforced after serial 7: the rotation wiped the mark\n%s", r.logs)
	}
}

// TestIssuerBound: each list line grants an issuer. A judge's key signs a
// court list that claims the regulator's name: untrusted. A court list
// that claims no issuer takes the court's, and the EDE names it.
func TestIssuerBound(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	keys := t.TempDir()
	root, mcmc, judge := newAuthority(t, ms, keys, "root"), newAuthority(t, ms, keys, "mcmc"), newAuthority(t, ms, keys, "judge")
	policyPath := filepath.Join(t.TempDir(), "regblock.trust")
	r := newTrustResolver(t, root.pub, policyPath)
	lists := r.lists
	claiming := func(name, issuer string, names ...string) string {
		return strings.Replace(namedList(name, 1, names...), "#! serial:", "#! issuer: "+issuer+"\n#! serial:", 1)
	}
	publish(t, policyPath, trustPolicy(1, "root 1 "+root.line,
		`list mcmc-csam 1 `+mcmc.line+` "Example Communications Commission"`,
		`list court-* 1 `+judge.line+` "Example High Court"`), root)
	publish(t, filepath.Join(lists, "mcmc-csam.list"), claiming("mcmc-csam", "Example Communications Commission", "abuse.example"), mcmc)
	publish(t, filepath.Join(lists, "court-1.list"), claiming("court-1", "Example Communications Commission", "claimed.example"), judge)
	publish(t, filepath.Join(lists, "court-2.list"), namedList("court-2", 1, "ordered.example"), judge)
	r.start()
	says := func(name string) string {
		m, err := query(r.addr, name+".", dns.TypeA)
		if err != nil || len(m.Answer) != 1 || ede(m) == nil {
			return ""
		}
		return ede(m).ExtraText
	}
	testenv.Eventually(t, 20*time.Second, "the court's own list is enforced", func() bool { return says("ordered.example") != "" })
	if got := says("ordered.example"); !strings.Contains(got, "Blocked by order of Example High Court") {
		t.Errorf("the EDE of a court list that claims no issuer: %q", got)
	}
	if got := says("abuse.example"); !strings.Contains(got, "Blocked by order of Example Communications Commission") {
		t.Errorf("the EDE of the regulator's list: %q", got)
	}
	if got := says("claimed.example"); got != "" {
		t.Errorf("a court list claiming the regulator's name is enforced: %q", got)
	}
	if got := r.counted(`coredns_regblock_reloads_total{list="court-1",result="untrusted"}`); got != 1 {
		t.Errorf("court-1 counted untrusted %v times, want 1", got)
	}
}

// TestRecoveryWithoutGap: recovery from a stolen list key in the order
// docs/trust.md gives (the next version, signed by the key that stays,
// first; then the policy without the stolen key) never lets the list's
// names answer, polled every 50 ms. In the other order the thief's
// version is unloaded as soon as the policy lands (the exception: a
// version signed only by removed keys, with no successor in the
// directory), and the next version is enforced when it lands.
func TestRecoveryWithoutGap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	for _, listFirst := range []bool{true, false} {
		name := map[bool]string{true: "list first", false: "policy first"}[listFirst]
		t.Run(name, func(t *testing.T) {
			keys := t.TempDir()
			root, stolen, kept := newAuthority(t, ms, keys, "root"), newAuthority(t, ms, keys, "stolen"), newAuthority(t, ms, keys, "kept")
			lists, state, trustDir := t.TempDir(), t.TempDir(), t.TempDir()
			policyPath := filepath.Join(trustDir, "regblock.trust")
			port := testenv.FreePort(t)
			addr := "127.0.0.1:" + port
			conf := filepath.Join(t.TempDir(), "Corefile")
			os.WriteFile(conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+lists+`
        pubkey `+root.pub+`
        trust `+policyPath+`
        state `+state+`
        notice 192.0.2.80
    }
}
`), 0o644)
			blocked := func(name string) bool {
				r, err := query(addr, name+".", dns.TypeA)
				return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
			}
			list := filepath.Join(lists, "mcmc-csam.list")
			publish(t, policyPath, trustPolicy(1, "root 1 "+root.line, "list mcmc-csam 1 "+stolen.line+" "+kept.line), root)
			publish(t, list, namedList("mcmc-csam", 2, "abuse.example"), kept)
			testenv.Process(t, "regblockd", exec.Command(bin, "-conf", conf))
			testenv.Eventually(t, 20*time.Second, "serial 2 is enforced", func() bool { return blocked("abuse.example") })
			// The thief's serial 999 keeps the real name, to go unnoticed.
			publish(t, list, namedList("mcmc-csam", 999, "abuse.example", "thief.example"), stolen)
			testenv.Eventually(t, 10*time.Second, "the thief's version is enforced", func() bool { return blocked("thief.example") })

			recovery := trustPolicy(2, "root 1 "+root.line, "list mcmc-csam 1 "+kept.line)
			next := namedList("mcmc-csam", 3, "abuse.example", "three.example")
			// Poll every 50 ms from the first publication until serial 3 is
			// enforced, counting the answers in which abuse.example went
			// unblocked.
			gaps, polls := 0, 0
			poll := func(until func() bool) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for !until() {
					if time.Now().After(deadline) {
						t.Fatal("recovery did not complete in 20 s")
					}
					polls++
					if !blocked("abuse.example") {
						gaps++
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			if listFirst {
				publish(t, list, next, kept) // a rollback under the policy in force: waits in the directory
				time.Sleep(500 * time.Millisecond)
				publish(t, policyPath, recovery, root)
				poll(func() bool { return blocked("three.example") })
				if gaps > 0 {
					t.Errorf("abuse.example went unblocked in %d of %d polls during recovery", gaps, polls)
				}
			} else {
				publish(t, policyPath, recovery, root)
				testenv.Eventually(t, 10*time.Second, "the thief's version is unloaded", func() bool { return !blocked("thief.example") })
				publish(t, list, next, kept)
				testenv.Eventually(t, 10*time.Second, "serial 3 is enforced", func() bool { return blocked("three.example") })
			}
			if blocked("thief.example") {
				t.Error("the thief's name is blocked after recovery")
			}
		})
	}
}

// TestPolicyHistory: a resolver commissioned after two root rotations,
// pinned to the first root only, walks the published history (1.trust,
// 2.trust, 3.trust in a directory) to policy 3 and enforces a list its
// line allows. A junk file numbered higher than any hides no later
// version; a version signed by the retired first root is refused.
func TestPolicyHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	ms := testenv.Need(t, "minisign", "minisign")
	keys := t.TempDir()
	rootA, rootB, rootC := newAuthority(t, ms, keys, "root-a"), newAuthority(t, ms, keys, "root-b"), newAuthority(t, ms, keys, "root-c")
	mcmc := newAuthority(t, ms, keys, "mcmc")
	history := t.TempDir()
	r := newTrustResolver(t, rootA.pub, history)
	lists := r.lists
	line := "list mcmc-csam 1 " + mcmc.line
	publish(t, filepath.Join(history, "1.trust"), trustPolicy(1, "root 1 "+rootA.line, line), rootA)
	publish(t, filepath.Join(history, "2.trust"), trustPolicy(2, "root 1 "+rootB.line, line), rootA, rootB)
	publish(t, filepath.Join(history, "3.trust"), trustPolicy(3, "root 1 "+rootC.line, line), rootB, rootC)
	publish(t, filepath.Join(lists, "mcmc-csam.list"), namedList("mcmc-csam", 1, "abuse.example"), mcmc)

	r.start()
	counted := r.counted
	testenv.Eventually(t, 20*time.Second, "the list is enforced under policy 3", func() bool {
		return r.blocked("abuse.example") && counted("coredns_regblock_trust_serial") == 3
	})

	// A file planted under the highest number hides no version added after.
	os.WriteFile(filepath.Join(history, "18446744073709551615.trust"), []byte("junk\n"), 0o644)
	publish(t, filepath.Join(history, "4.trust"), trustPolicy(4, "root 1 "+rootC.line, line), rootC)
	testenv.Eventually(t, 10*time.Second, "policy 4 is in force, past a junk file numbered higher", func() bool {
		return counted("coredns_regblock_trust_serial") == 4
	})
	publish(t, filepath.Join(history, "5.trust"), trustPolicy(5, "root 1 "+rootA.line, line), rootA)
	testenv.Eventually(t, 10*time.Second, "policy 5, signed by a retired root, is refused", func() bool {
		return counted(`coredns_regblock_trust_reloads_total{result="threshold"}`) > 0
	})
	if got := counted("coredns_regblock_trust_serial"); got != 4 {
		t.Errorf("trust serial %v after a refused fifth version, want 4\n%s", got, r.logs)
	}
}

// trustResolver is a regblockd judging lists by a trust policy, for the
// tests above: its Corefile on loopback ports, the lists and state
// directories, and its answers and metrics.
type trustResolver struct {
	t                  *testing.T
	addr, metricsPort  string
	conf, lists, state string
	logs               *testenv.Output
}

// newTrustResolver writes the Corefile of a resolver pinning pubkeys
// (space-separated files) and reading the policy at trust (a file or a
// history directory); start runs it.
func newTrustResolver(t *testing.T, pubkeys, trust string) *trustResolver {
	r := &trustResolver{t: t, lists: t.TempDir(), state: t.TempDir(), metricsPort: testenv.FreePort(t), conf: filepath.Join(t.TempDir(), "Corefile")}
	port := testenv.FreePort(t)
	r.addr = "127.0.0.1:" + port
	os.WriteFile(r.conf, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+r.lists+`
        pubkey `+pubkeys+`
        trust `+trust+`
        state `+r.state+`
        notice 192.0.2.80
    }
    prometheus 127.0.0.1:`+r.metricsPort+`
}
`), 0o644)
	return r
}

func (r *trustResolver) start() {
	r.logs = testenv.Process(r.t, "regblockd", exec.Command(bin, "-conf", r.conf))
	testenv.Serving(r.t, r.logs)
}

// blocked reports whether name gets the block answer.
func (r *trustResolver) blocked(name string) bool {
	m, err := query(r.addr, name+".", dns.TypeA)
	return err == nil && len(m.Answer) == 1 && m.Answer[0].(*dns.A).A.String() == "192.0.2.80"
}

// counted returns a sample of the resolver's metrics.
func (r *trustResolver) counted(series string) float64 {
	return metricValues(scrape(r.t, "http://127.0.0.1:"+r.metricsPort+"/metrics"))[series]
}
