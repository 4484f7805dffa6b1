package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestExportCommand runs the built binary: its output is a zone that
// regblock loads back with the list's signature rules, flags are checked,
// and an unverified list is not exported.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, dir)
	list := key.WriteList(t, dir, "example-csam.list", exampleList+"ip:198.51.100.0/24 ORDER-9\n")

	code, stdout, stderr := regblock(t, "export", "-format", "rpz", "-p", pub, "-notice", "192.0.2.80,2001:db8::80", list)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		";$ issuer: Example Communications Commission\n",
		"@ SOA blocked.regblock.invalid. hostmaster.regblock.invalid. 2026112801 ",
		"abuse.example A 192.0.2.80 ; order=ORDER-2026-0012 category=csam\n",
		"*.abuse.example AAAA 2001:db8::80 ; order=ORDER-2026-0012 category=csam\n",
		"help.abuse.example CNAME rpz-passthru. ; order=ORDER-2026-0014\n",
		"24.0.100.51.198.rpz-ip A 192.0.2.80 ; order=ORDER-9\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("export output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\ncdn7.hosting.example A") == false || strings.Contains(stdout, "*.cdn7.hosting.example") {
		t.Errorf("=cdn7.hosting.example is not exported as exactly that name:\n%s", stdout)
	}

	// -o writes the file; signed, it loads as a list.
	zone := filepath.Join(dir, "example-csam.rpz")
	if code, _, stderr := regblock(t, "export", "-format", "rpz", "-o", zone, list); code != 0 {
		t.Fatalf("export -o: exit %d\n%s", code, stderr)
	}
	data, err := os.ReadFile(zone)
	if err != nil {
		t.Fatal(err)
	}
	key.WriteList(t, dir, "example-csam.rpz", string(data))
	if l, err := loads(t, zone, pub); err != nil || l.Serial != 2026112801 || l.Blocking() != 5 {
		t.Errorf("the exported zone, signed, loads as %+v, %v", l, err)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-format", "bind", list}, 2, `unknown -format "bind"`},
		{[]string{list}, 2, "regblock: error: -format is required"},
		{[]string{"-format", "rpz", "-notice", "notice.example", list}, 2, `-notice "notice.example" is not an IPv4 or IPv6 address`},
		{[]string{"-format", "rpz", "-p", pub, writeFile(t, dir, "forged.list", exampleList)}, 1, "forged.list was not exported"},
	} {
		code, stdout, stderr := regblock(t, append([]string{"export"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("export %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}
}
