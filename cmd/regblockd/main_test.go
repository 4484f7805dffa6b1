package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

const list = `#! regblock-list 1
#! name: e2e
#! issuer: Example Communications Commission
#! serial: 3
#! issued: 2026-11-28T06:00:00Z
#! appeal: https://complaints.regulator.example/
abuse.example ORDER-2026-0012 csam
`

// buildRegblockd builds the regblockd binary into a test directory.
func buildRegblockd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "regblockd")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a port that is free on 127.0.0.1 for both UDP and TCP,
// as far as one can tell before using it.
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			pc.Close()
			return strconv.Itoa(port)
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return ""
}

// TestRegblockd builds regblockd, runs it on a loopback port with a Corefile
// that forwards to a test upstream, and checks with a DNS client, and dig
// when it is installed, that a listed name is blocked and others resolve.
func TestRegblockd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the regblockd binary")
	}
	bin := buildRegblockd(t)

	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil || !slices.Contains(strings.Fields(string(out)), "regblock") {
		t.Errorf("regblockd -plugins: %v, does not list regblock:\n%s", err, out)
	}
	if out, err := exec.Command(bin, "-version").CombinedOutput(); err != nil || !strings.Contains(string(out), "CoreDNS-") {
		t.Errorf("regblockd -version: %v\n%s", err, out)
	}

	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "e2e.list", list)
	pub := key.WritePublic(t, t.TempDir())
	up := upstreamtest.Start(t)
	port := freePort(t)
	corefile := filepath.Join(t.TempDir(), "Corefile")
	os.WriteFile(corefile, []byte(`.:`+port+` {
    bind 127.0.0.1
    regblock {
        lists `+dir+`
        pubkey `+pub+`
        notice 192.0.2.80 2001:db8::80
    }
    cache
    forward . `+up.Addr+`
}
`), 0o644)

	var logs bytes.Buffer
	cmd := exec.Command(bin, "-conf", corefile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("regblockd output:\n%s", logs.String())
		}
	})

	addr := "127.0.0.1:" + port
	query := func(name string, qtype uint16) (*dns.Msg, error) {
		m := new(dns.Msg).SetQuestion(name, qtype)
		m.SetEdns0(1232, false)
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		r, _, err := c.Exchange(m, addr)
		return r, err
	}
	// Wait for the server to answer, at most 20 s.
	var r *dns.Msg
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, err = query("abuse.example.", dns.TypeA); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("regblockd does not answer on %s: %v", addr, err)
	}

	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
		t.Errorf("abuse.example A: %v, want the notice address", r.Answer)
	}
	if e := ede(r); e == nil || e.InfoCode != dns.ExtendedErrorCodeCensored || !strings.Contains(e.ExtraText, "ORDER-2026-0012") {
		t.Errorf("abuse.example: EDE %v, want Censored naming the order", e)
	}
	if r, err := query("www.abuse.example.", dns.TypeAAAA); err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::80" {
		t.Errorf("www.abuse.example AAAA: %v %v, want the notice address", r, err)
	}
	r, err = query("unlisted.test.", dns.TypeA)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != upstreamtest.Answer || ede(r) != nil {
		t.Errorf("unlisted.test A: %v %v, want the upstream's answer without EDE", r, err)
	}

	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dig is not installed; CI must install it (apt-get install dnsutils)")
		}
		t.Skip("dig is not installed (apt-get install dnsutils); skipping the dig checks")
	}
	out, err = exec.Command(dig, "@127.0.0.1", "-p", port, "+tries=1", "+time=2", "AbUsE.example", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	for _, want := range []string{"status: NOERROR", "AbUsE.example.\t\t60\tIN\tA\t192.0.2.80", "EDE: 16 (Censored)", "Example Communications Commission"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("dig output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(dig, "@127.0.0.1", "-p", port, "+tries=1", "+time=2", "+ednsopt=15:0000", "abuse.example", "TXT").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"c":["https://complaints.regulator.example/"]`)) {
		t.Errorf("dig with the structured-error signal: %v, want the draft's JSON:\n%s", err, out)
	}
}

func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}
