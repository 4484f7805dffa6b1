package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/regblock/regblock/internal/audit"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
)

var (
	regblockdOnce sync.Once
	regblockdBin  string
	regblockdErr  error
)

// regblockd builds the resolver once for the audit tests.
func regblockd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs regblockd")
	}
	regblockdOnce.Do(func() {
		regblockdBin, regblockdErr = testenv.Build(filepath.Dir(bin), "../regblockd", "regblockd")
	})
	if regblockdErr != nil {
		t.Fatal(regblockdErr)
	}
	return regblockdBin
}

// resolver runs regblockd with the plugin block given (none: plain
// forwarding) and any other Corefile lines in front of a test upstream, and
// returns its address.
func resolver(t *testing.T, pluginBlock string, lines ...string) string {
	t.Helper()
	return resolverEnv(t, nil, pluginBlock, lines...)
}

// resolverEnv is resolver with env (NAME=VALUE) added to regblockd's
// environment.
func resolverEnv(t *testing.T, env []string, pluginBlock string, lines ...string) string {
	t.Helper()
	up := upstreamtest.Start(t)
	port := testenv.FreePort(t)
	corefile := ".:" + port + " {\n bind 127.0.0.1\n" + pluginBlock + "\n" + strings.Join(lines, "\n") + "\n forward . " + up.Addr + "\n}\n"
	addr := "127.0.0.1:" + port
	testenv.RegblockdEnv(t, regblockd(t), corefile, "", addr, "ready.test.", env)
	return addr
}

// auditFixture is a key and two signed versions of a list: v2 adds
// added.example.
type auditFixture struct {
	dir, pub, v1, v2 string
}

func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	f := auditFixture{dir: t.TempDir()}
	f.pub = filepath.Join(f.dir, "r.pub")
	sec := filepath.Join(f.dir, "r.key")
	regblock(t, "keygen", "-W", "-p", f.pub, "-s", sec)
	withCanary := strings.Replace(exampleList, "#! appeal:", "#! canary: canary.example-csam.regblock.test\n#! appeal:", 1)
	for _, v := range []struct {
		path      *string
		dir, text string
	}{
		{&f.v1, "v1", withCanary},
		{&f.v2, "v2", strings.Replace(withCanary, "2026112801", "2026112802", 1) + "added.example ORDER-2026-0015 csam\n"},
	} {
		dir := filepath.Join(f.dir, v.dir)
		os.MkdirAll(dir, 0o755)
		*v.path = writeFile(t, dir, "example.list", v.text)
		if code, _, stderr := regblock(t, "sign", "-s", sec, *v.path); code != 0 {
			t.Fatalf("sign: %s", stderr)
		}
	}
	return f
}

func (f auditFixture) pluginBlock(list string, extra ...string) string {
	return "regblock {\n lists " + strings.Join(append([]string{list}, extra...), " ") + "\n pubkey " + f.pub + "\n notice 192.0.2.80\n}"
}

func TestAudit(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	good := resolver(t, f.pluginBlock(f.v2))
	base := []string{"audit", "-p", f.pub, "-notice", "192.0.2.80", "-rate", "1000", "-timeout", "500ms"}

	t.Run("compliant", func(t *testing.T) {
		code, stdout, stderr := regblock(t, append(base, "-server", good, f.v2)...)
		if code != 0 || !strings.Contains(stdout, "compliance: 100.0%") || !strings.Contains(stdout, "COMPLIANT") {
			t.Errorf("exit %d\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("canary", func(t *testing.T) {
		code, stdout, _ := regblock(t, append(base, "-server", good, "-canary", f.v2)...)
		if code != 0 || !strings.Contains(stdout, "queries:    2: 2 blocked") {
			t.Errorf("exit %d\n%s", code, stdout)
		}
	})
	t.Run("canary of another version", func(t *testing.T) {
		old := resolver(t, f.pluginBlock(f.v1))
		code, stdout, _ := regblock(t, append(base, "-server", old, "-canary", f.v2)...)
		if code != 1 || !strings.Contains(stdout, "serial 2026112801 of list example-csam in force, not 2026112802") {
			t.Errorf("a canary answered by serial 2026112801, audited against 2026112802: exit %d\n%s", code, stdout)
		}
		// The same name and serial from another issuer.
		dir := t.TempDir()
		other := writeFile(t, dir, "example.list", strings.Replace(mustRead(t, f.v2), "Example Communications Commission", "Someone Else", 1))
		if code, _, stderr := regblock(t, "sign", "-s", filepath.Join(f.dir, "r.key"), other); code != 0 {
			t.Fatal(stderr)
		}
		code, stdout, _ = regblock(t, append(base, "-server", resolver(t, f.pluginBlock(other)), "-canary", f.v2)...)
		if code != 1 || !strings.Contains(stdout, `another issuer than "Example Communications Commission"`) {
			t.Errorf("a canary answered under another issuer: exit %d\n%s", code, stdout)
		}
	})
	t.Run("older list", func(t *testing.T) {
		old := resolver(t, f.pluginBlock(f.v1))
		html := filepath.Join(t.TempDir(), "report.html")
		code, stdout, _ := regblock(t, append(base, "-server", old, "-html", html, f.v2)...)
		if code != 1 || !strings.Contains(stdout, "NOT COMPLIANT") {
			t.Fatalf("exit %d\n%s", code, stdout)
		}
		for _, want := range []string{"added.example.                           A    expected blocked     got not-blocked", "added.example.                           AAAA expected blocked"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the report does not list %q:\n%s", want, stdout)
			}
		}
		page, err := os.ReadFile(html)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<html lang="en">`, "Not compliant", "<code>added.example.</code>", "example-csam serial 2026112802", old} {
			if !bytes.Contains(page, []byte(want)) {
				t.Errorf("HTML report lacks %q", want)
			}
		}
		if bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte("http://")) && !bytes.Contains(page, []byte("complaints.regulator.example")) {
			t.Error("the HTML report is not self-contained")
		}
	})
	t.Run("without the plugin", func(t *testing.T) {
		plain := resolver(t, "")
		code, stdout, _ := regblock(t, append(base, "-server", plain, "-json", f.v2)...)
		var r audit.Report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("exit %d, -json output: %v\n%s", code, err, stdout)
		}
		if code != 1 || r.Compliant || r.Counts[audit.ClassBlocked] != 0 {
			t.Errorf("exit %d, counts %v", code, r.Counts)
		}
		missing := map[string]bool{}
		for _, p := range r.Probes {
			if !p.Pass {
				missing[p.Name] = true
			}
		}
		for _, name := range []string{"abuse.example.", "cdn7.hosting.example.", "added.example.", "canary.example-csam.regblock.test."} {
			if !missing[name] {
				t.Errorf("%s is not reported as not blocked", name)
			}
		}
	})
	t.Run("over-blocking", func(t *testing.T) {
		extra := writeFile(t, t.TempDir(), "extra.list", "#! regblock-list 1\n#! name: extra\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\ncontrol.test\n")
		regblock(t, "sign", "-s", filepath.Join(f.dir, "r.key"), extra)
		over := resolver(t, f.pluginBlock(f.v2, extra))
		controls := writeFile(t, t.TempDir(), "controls", "# names that must resolve\ncontrol.test\nwww.other.test\n")
		code, stdout, _ := regblock(t, append(base, "-server", over, "-controls", controls, f.v2)...)
		if code != 1 || !strings.Contains(stdout, "control.test.                            A    expected not-blocked got blocked") {
			t.Errorf("exit %d\n%s", code, stdout)
		}
		if strings.Contains(stdout, "www.other.test.") {
			t.Errorf("a control name that resolves is reported:\n%s", stdout)
		}
	})
	t.Run("could not audit", func(t *testing.T) {
		code, _, stderr := regblock(t, append(base, "-server", "127.0.0.1:"+testenv.FreePort(t), "-canary", f.v2)...)
		if code != 2 || !strings.Contains(stderr, "no answer") {
			t.Errorf("unreachable resolver: exit %d, %q", code, stderr)
		}
		os.WriteFile(f.v1, []byte(exampleList+"tampered.example\n"), 0o644)
		if code, _, stderr := regblock(t, append(base, "-server", good, f.v1)...); code != 2 || !strings.Contains(stderr, "does not match") {
			t.Errorf("a list that does not verify: exit %d, %q", code, stderr)
		}
	})
}
