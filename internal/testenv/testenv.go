// Package testenv has what end-to-end tests share: outside tools that must
// be there under CI, free loopback ports, and binaries built from this
// module.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
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
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}
