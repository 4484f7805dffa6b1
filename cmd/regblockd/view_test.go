//go:build linux

package main

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestPerClientPolicy (Linux: every 127/8 address is local there) runs the
// plugin README's view and acl example in
// regblockd, with its networks mapped onto loopback: 127.0.0.2 stands for
// the family-filter subscribers (10.1.0.0/16), 127.0.0.0/30 for the ISP's
// networks (10.0.0.0/8), and 127.0.0.5 for a client outside them.
func TestPerClientPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	readme, err := os.ReadFile("../../plugin/regblock/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, b := range regexp.MustCompile("(?s)~~~ corefile\n(.*?)~~~").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(b[1], "view family") {
			example = b[1]
		}
	}
	if example == "" {
		t.Fatal("the plugin README has no example with view family")
	}
	national, family := t.TempDir(), t.TempDir()
	regulator, filter := blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	regulator.WriteList(t, national, "national.list", namedList("national", 1, "national.example"))
	filter.WriteList(t, family, "family.list", namedList("family", 1, "family.example"))
	keys := t.TempDir()
	up := upstreamtest.Start(t)
	port := testenv.FreePort(t)
	corefile := strings.NewReplacer(
		". {", ".:"+port+" {\n    bind 127.0.0.1 127.0.0.2 127.0.0.5",
		"/etc/regblock/regulator.pub", regulator.WritePublic(t, keys), // before the directories: the replacer takes the first match
		"/etc/regblock/family.pub", filter.WritePublic(t, t.TempDir()),
		"/etc/regblock/lists", national,
		"/etc/regblock/family", family,
		"10.1.0.0/16", "127.0.0.2/32",
		"10.0.0.0/8", "127.0.0.0/30",
		"/etc/resolv.conf", up.Addr,
	).Replace(example)
	testenv.Regblockd(t, bin, corefile, ".", "127.0.0.1:"+port, "national.example.")

	// ask sends a query from the loopback address from to the address of
	// the same number, as a subscriber of that network would.
	ask := func(from, name string) *dns.Msg {
		t.Helper()
		c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), from+":"+port)
		if err != nil {
			t.Fatalf("%s from %s: %v", name, from, err)
		}
		return r
	}
	answer := func(r *dns.Msg) string {
		if r.Rcode != dns.RcodeSuccess {
			return dns.RcodeToString[r.Rcode]
		}
		if len(r.Answer) == 0 {
			return "NODATA"
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	for _, c := range []struct{ from, name, want string }{
		{"127.0.0.2", "national.example.", "192.0.2.80"},
		{"127.0.0.2", "family.example.", "192.0.2.80"},
		{"127.0.0.2", "other.test.", upstreamtest.Answer},
		{"127.0.0.1", "national.example.", "192.0.2.80"},
		{"127.0.0.1", "family.example.", upstreamtest.Answer},
		{"127.0.0.5", "other.test.", "REFUSED"},
	} {
		if got := answer(ask(c.from, c.name)); got != c.want {
			t.Errorf("%s from %s: %s, want %s", c.name, c.from, got, c.want)
		}
	}
}
