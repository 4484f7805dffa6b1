// Package testenv has what end-to-end tests share: outside tools that must
// be there under CI, free loopback ports, and binaries built from this
// module.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Need returns the path of an outside tool. When it is missing the test is
// skipped with a message naming the Debian package, except under CI=true,
// where it fails: CI must install it.
func Need(t testing.TB, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI must install it (apt-get install %s)", tool, pkg)
		}
		t.Skipf("%s is not installed (apt-get install %s); skipping", tool, pkg)
	}
	return path
}

// FreePort returns a port that is free on 127.0.0.1 for both UDP and TCP,
// as far as one can tell before using it.
func FreePort(t testing.TB) string {
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
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return ""
}

// Build builds the command in directory pkg (relative to the test's
// package) into dir, and returns the binary's path. Tests build binaries
// to see exit codes and output as users do.
func Build(dir, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	// The go command that runs the tests is the one on PATH.
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Main is a TestMain that builds the command in pkg, stores its path in
// *bin, runs the tests, and removes the binary.
func Main(m *testing.M, pkg, name string, bin *string) {
	dir, err := os.MkdirTemp("", name+"-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bin, err = Build(dir, pkg, name); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Output is what a process wrote to its stdout and stderr so far.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns the output so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Process starts cmd, a server the test needs (what names it), and kills
// it when the test ends; its output is logged if the test failed.
func Process(t testing.TB, what string, cmd *exec.Cmd) *Output {
	t.Helper()
	logs := new(Output)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", what, logs.String())
		}
	})
	return logs
}

// Regblockd runs the regblockd binary at bin with corefile, in the working
// directory wd, until the test ends, and returns once the server at addr
// answers a query for probe (at most 20 s). Its output is logged when the
// test fails, and returned.
func Regblockd(t testing.TB, bin, corefile, wd, addr, probe string) *Output {
	t.Helper()
	return RegblockdEnv(t, bin, corefile, wd, addr, probe, nil)
}

// RegblockdEnv is Regblockd with env (NAME=VALUE) added to the process's
// environment: a test that runs in parallel cannot set its own.
func RegblockdEnv(t testing.TB, bin, corefile, wd, addr, probe string, env []string) *Output {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Dir = wd
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	logs := Process(t, "regblockd", cmd)
	Serving(t, logs)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	Eventually(t, 20*time.Second, "regblockd answers on "+addr, func() bool {
		_, _, err := c.Exchange(new(dns.Msg).SetQuestion(probe, dns.TypeA), addr)
		return err == nil
	})
	return logs
}

// Serving waits (at most 60 s) until the regblockd whose output is logs
// has printed CoreDNS's startup banner: every listener of this very
// process (DNS, metrics, ready) is then open. An answer on the DNS port
// alone does not prove it: after a restart, another test's process can
// hold a port this one was given, and /metrics may not be open yet. (A
// resolver that decrypts its receipts key, scrypt under the race detector
// on a busy 2-core machine, once took over 20 s to start.)
func Serving(t testing.TB, logs *Output) {
	t.Helper()
	Eventually(t, 60*time.Second, "regblockd prints its startup banner", func() bool {
		return strings.Contains(logs.String(), "CoreDNS-")
	})
}

// Eventually polls cond every 10 ms until it holds, for at most timeout,
// and fails the test, saying what did not happen, if it never does.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
	}
}
