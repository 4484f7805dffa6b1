package regblock

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coredns/coredns/test"
)

// TestReadme starts a server for each Corefile example in README.md, with
// the example paths pointed at a signed test list, key and state directory
// and the metrics on a free loopback port, so that the
// documented syntax cannot drift from what the plugin accepts.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)~~~ corefile\n(.*?)~~~").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ~~~ corefile examples")
	}
	f := newFixture(t)
	paths := regexp.MustCompile(`/etc/regblock/\S+\.pub`)
	for i, b := range blocks {
		corefile := strings.ReplaceAll(b[1], ". {", ".:0 {\n    bind 127.0.0.1")
		corefile = paths.ReplaceAllString(corefile, f.pub)
		corefile = strings.ReplaceAll(corefile, "/etc/regblock/lists", f.dir)
		corefile = strings.ReplaceAll(corefile, "/etc/regblock/family", t.TempDir())
		corefile = strings.ReplaceAll(corefile, "/var/lib/regblock", t.TempDir())
		corefile = strings.ReplaceAll(corefile, "/var/log/regblock", t.TempDir())
		corefile = strings.ReplaceAll(corefile, "prometheus :9153", "prometheus 127.0.0.1:0")
		server, err := test.CoreDNSServer(corefile)
		if err != nil {
			t.Errorf("example %d does not start: %v\n%s", i+1, err, corefile)
			continue
		}
		server.Stop()
	}
}
