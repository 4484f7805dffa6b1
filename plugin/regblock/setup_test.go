package regblock

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/coredns/caddy"
)

func TestParse(t *testing.T) {
	f := newFixture(t)
	base := "lists " + f.dir + "\npubkey " + f.pub + "\n"
	keys := t.TempDir()
	plainKey, sealedKey := filepath.Join(keys, "plain.key"), filepath.Join(keys, "sealed.key")
	_, priv, _ := minisign.GenerateKey(nil)
	text, _ := priv.MarshalText()
	os.WriteFile(plainKey, text, 0o600)
	// Made once with minisign.EncryptKey (password "secret"): encrypting and
	// decrypting cost seconds of scrypt, minutes under -race. TestReceipts
	// runs an encrypted key with its password through regblockd.
	os.WriteFile(sealedKey, []byte(sealedTestKey), 0o600)
	t.Setenv("REGBLOCK_PASSWORD", "")
	os.Unsetenv("REGBLOCK_PASSWORD")
	tests := []struct {
		name      string
		input     string
		shouldErr bool
		errText   string
	}{
		{"minimal", "regblock {\n" + base + "}", false, ""},
		{"all options", "regblock {\n" + base + "notice 192.0.2.80 2001:db8::80\nnotice 192.0.2.81\nttl 300\nmax_size 10M\n}", false, ""},
		{"no lists", "regblock {\npubkey " + f.pub + "\n}", true, "no lists"},
		{"no pubkey", "regblock {\nlists " + f.dir + "\n}", true, "no public key"},
		{"no block", "regblock", true, "no lists"},
		{"arguments", "regblock example.test {\n" + base + "}", true, "takes no arguments"},
		{"unknown option", "regblock {\n" + base + "notise 192.0.2.80\n}", true, `unknown property "notise"`},
		{"option without value", "regblock {\n" + base + "notice\n}", true, "Wrong argument count"},
		{"missing list path", "regblock {\nlists " + filepath.Join(f.dir, "absent") + "\npubkey " + f.pub + "\n}", true, "absent"},
		{"missing key", "regblock {\nlists " + f.dir + "\npubkey " + filepath.Join(f.dir, "absent.pub") + "\n}", true, "absent.pub"},
		{"not a key", "regblock {\nlists " + f.dir + "\npubkey " + filepath.Join(f.dir, "test-csam.list") + "\n}", true, "not a minisign public key"},
		{"bad address", "regblock {\n" + base + "notice 192.0.2.300\n}", true, `notice "192.0.2.300" is not an IPv4 or IPv6 address`},
		{"address with zone", "regblock {\n" + base + "notice fe80::1%eth0\n}", true, "is not an IPv4 or IPv6 address"},
		{"bad ttl", "regblock {\n" + base + "ttl -1\n}", true, `ttl "-1"`},
		{"ttl too large", "regblock {\n" + base + "ttl 2147483648\n}", true, "ttl"},
		{"two ttls", "regblock {\n" + base + "ttl 1 2\n}", true, "Wrong argument count"},
		{"bad size", "regblock {\n" + base + "max_size 10X\n}", true, `max_size "10X"`},
		{"zero size", "regblock {\n" + base + "max_size 0\n}", true, "positive"},
		{"state", "regblock {\n" + base + "state " + filepath.Join(t.TempDir(), "new", "state") + "\n}", false, ""},
		{"state is a lists directory", "regblock {\n" + base + "state " + f.dir + "\n}", true, "also a lists directory"},
		{"two state directories", "regblock {\n" + base + "state a b\n}", true, "Wrong argument count"},
		{"audit budget", "regblock {\n" + base + "audit_budget 500\n}", false, ""},
		{"bad audit budget", "regblock {\n" + base + "audit_budget -1\n}", true, `audit_budget "-1"`},
		{"receipts", "regblock {\n" + base + "receipts https://receipts.regulator.example/ " + plainKey + " r1\nreceipts_every 30s\n}", false, ""},
		{"receipts over http to loopback", "regblock {\n" + base + "receipts_every 5s\nreceipts http://127.0.0.1:8444/ " + plainKey + " r1\n}", false, ""},
		{"receipts over plain http", "regblock {\n" + base + "receipts http://receipts.regulator.example/ " + plainKey + " r1\n}", true, "use https"},
		{"receipts with an encrypted key and no password", "regblock {\n" + base + "receipts https://receipts.regulator.example/ " + sealedKey + " r1\n}", true, "REGBLOCK_PASSWORD"},
		{"receipts with a path for a name", "regblock {\n" + base + "receipts https://receipts.regulator.example/ " + plainKey + " ../r1\n}", true, "resolver name"},
		{"trust without state", "regblock {\n" + base + "trust " + filepath.Join(t.TempDir(), "regblock.trust") + "\n}", true, "trust without state"},
		{"receipts named unknown", "regblock {\n" + base + "receipts https://receipts.regulator.example/ " + plainKey + " unknown\n}", true, "receiver calls the resolvers it does not know"},
		{"receipts without a key", "regblock {\n" + base + "receipts https://receipts.regulator.example/\n}", true, "URL KEY [ID]"},
		{"receipts_every without receipts", "regblock {\n" + base + "receipts_every 1m\n}", true, "receipts_every without receipts"},
		{"receipts_every too short", "regblock {\n" + base + "receipts_every 10ms\n}", true, "at least 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(caddy.NewTestController("dns", tc.input))
			if tc.shouldErr != (err != nil) {
				t.Fatalf("parse error = %v, want error: %v", err, tc.shouldErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("error %q does not contain %q", err, tc.errText)
			}
		})
	}
}

func TestParseErrorNamesLine(t *testing.T) {
	f := newFixture(t)
	input := "regblock {\nlists " + f.dir + "\npubkey " + f.pub + "\nttl soon\n}"
	_, err := parse(caddy.NewTestController("dns", input))
	if err == nil || !strings.Contains(err.Error(), ":4 -") {
		t.Errorf("error %v does not name Corefile line 4", err)
	}
}

func TestParseValues(t *testing.T) {
	f := newFixture(t)
	in := "regblock {\nlists " + f.dir + "\npubkey " + f.pub + " " + f.pub + "\nnotice 192.0.2.80 2001:db8::80\nnotice ::ffff:192.0.2.81\nttl 300\nmax_size 2K\n}"
	cfg, err := parse(caddy.NewTestController("dns", in))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.80"), netip.MustParseAddr("2001:db8::80"), netip.MustParseAddr("192.0.2.81")}
	if len(cfg.notice) != 3 || cfg.notice[0] != want[0] || cfg.notice[1] != want[1] || cfg.notice[2] != want[2] {
		t.Errorf("notice = %v, want %v", cfg.notice, want)
	}
	if cfg.ttl != 300 || cfg.maxSize != 2048 || len(cfg.keys) != 2 || len(cfg.lists) != 1 {
		t.Errorf("cfg = %+v", cfg)
	}
	if def := newConfig(); def.ttl != 60 || def.maxSize != 1<<30 {
		t.Errorf("defaults: %+v", def)
	}
}

func TestSetupOnce(t *testing.T) {
	f := newFixture(t)
	block := "regblock {\nlists " + f.dir + "\npubkey " + f.pub + "\n}\n"
	if _, err := parse(caddy.NewTestController("dns", block+block)); err == nil || !strings.Contains(err.Error(), "once") {
		t.Errorf("two regblock blocks: %v", err)
	}
}

const sealedTestKey = `untrusted comment: minisign encrypted secret key
RWRTY0IynbZl8dvKS4QmEW0P/jtXZss92NJNFX06OdnGYXXguqQAAAACAAAAAAAAAEAAAAAAa9N3caVxTuxb9Zx4VxyqOt9cLM5KYM9OBJMb5XwrHrmibeNSr4xeaMq5RISe44QPtHLn/WK4GSezvH22AAvMg1CpOba7xdVjOP6zlcikO7HHQxoMjLEyRmMGzSO2XDxic41oF8076K8=
`
