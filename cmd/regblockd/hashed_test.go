package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// confidential is a list whose names must never be written down on the
// resolver's side: every one holds "secret".
const confidential = `#! regblock-list 1
#! name: worst-of
#! issuer: Example Regulator
#! serial: 7
#! issued: 2026-11-28T06:00:00Z
#! canary: canary.worst-of.regblock.test
secret-a.example         ORDER-17  csam
!ok.secret-a.example     ORDER-18
=exact-secret.example    ORDER-19  csam
*.wild-secret.example    ORDER-20
`

// TestHashedListPrivacy enforces a hashed list beside a plain one and then
// searches every file the resolver wrote (audit log, state directory, its
// own output) and the lists directory for the listed names: none may be
// there, while the audit log still says which entry blocked, by digest.
func TestHashedListPrivacy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the regblockd binary")
	}
	plain, err := blocklist.Parse("worst-of.list", []byte(confidential))
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, blocklist.SaltSize)
	rand.Read(salt)
	hashed, err := blocklist.Hash(plain, salt)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := blocklist.Write(&text, hashed); err != nil {
		t.Fatal(err)
	}
	lists, state, logDir := t.TempDir(), t.TempDir(), t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, lists, "worst-of.list", text.String())
	key.WriteList(t, lists, "e2e.list", list) // plain, side by side
	pub := key.WritePublic(t, t.TempDir())
	audit := filepath.Join(logDir, "audit.jsonl")

	up := upstreamtest.Start(t)
	up.SetReply("via.test.", []string{"via.test. 60 IN CNAME deep.secret-a.example."}, nil)
	up.SetAddrs("ok.secret-a.example.", "198.51.100.7")
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	logs := testenv.Regblockd(t, bin, `.:`+port+` {
    bind 127.0.0.1
    errors
    regblock {
        lists `+lists+`
        pubkey `+pub+`
        notice 192.0.2.80
        audit `+audit+`
        state `+state+`
    }
    forward . `+up.Addr+`
}
`, ".", addr, "canary.worst-of.regblock.test.")

	blocked := map[string]string{ // query name: the name its entry lists
		"secret-a.example.":              "secret-a.example",
		"WWW.Secret-A.example.":          "secret-a.example",
		"exact-secret.example.":          "exact-secret.example",
		"a.wild-secret.example.":         "wild-secret.example",
		"via.test.":                      "deep.secret-a.example", // by its CNAME target, below secret-a.example
		"canary.worst-of.regblock.test.": "canary.worst-of.regblock.test",
		"abuse.example.":                 "", // the plain list
	}
	for name := range blocked {
		r, err := query(addr, name, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" || ede(r) == nil {
			t.Errorf("%s: %v, want the notice address with an EDE", name, r.Answer)
		}
	}
	// And as dig sees it: the notice address and the EDE naming the order.
	dig := testenv.Need(t, "dig", "dnsutils")
	out, err := exec.Command(dig, "@127.0.0.1", "-p", port, "+tries=1", "+time=2", "Deep.Secret-A.example", "A").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "192.0.2.80") || !strings.Contains(string(out), "order ORDER-17 (list worst-of serial 7)") {
		t.Errorf("dig of a name below a hashed entry: %v\n%s", err, out)
	}
	for _, name := range []string{"ok.secret-a.example.", "sub.exact-secret.example.", "wild-secret.example."} {
		r, err := query(addr, name, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if ede(r) != nil || len(r.Answer) > 0 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80" {
			t.Errorf("%s: blocked (%v), want the upstream's answer", name, r.Answer)
		}
	}

	// The audit log names each block of the hashed list by the digest of
	// its entry, and no query name.
	var events []ledger.Event
	testenv.Eventually(t, 5*time.Second, "the audit log holds every block", func() bool {
		events = readEvents(t, audit)
		n := 0
		for _, e := range events {
			if e.Event == ledger.Block {
				n++
			}
		}
		return n == len(blocked)+2 // the startup probe and dig too
	})
	want := map[string]bool{}
	for _, listed := range blocked {
		if listed != "" && !strings.HasPrefix(listed, "canary.") {
			want[blocklist.HashName(salt, strings.TrimPrefix(listed, "deep.")).String()] = true
		}
	}
	for _, e := range events {
		if e.Event != ledger.Block || e.List != "worst-of" {
			continue
		}
		if e.QName != "" {
			t.Errorf("block event of the hashed list keeps the query name: %+v", e)
		}
		digest := e.Pattern[strings.Index(e.Pattern, blocklist.HashPrefix)+len(blocklist.HashPrefix):]
		if e.Category != blocklist.CategoryCanary && !want[digest] {
			t.Errorf("block event pattern %q is not the digest of a listed name", e.Pattern)
		}
	}

	// A next version, signed, whose entries are malformed around names it
	// meant to hash: refused with the line of each, quoting none of them
	// in the log or the ledger.
	bad := strings.Replace(text.String(), "#! serial: 7", "#! serial: 8", 1) +
		"h:secretsite.example ORDER-21\n=h:secret0123456789abcdef0123456789\nip:secret.example\n?secret.example\n"
	badPath := key.WriteList(t, lists, "worst-of-next.list", bad)
	testenv.Eventually(t, 10*time.Second, "the malformed version is refused", func() bool {
		return strings.Contains(logs.String(), `"worst-of-next" rejected (parse_error)`) || strings.Contains(logs.String(), `"worst-of" rejected (parse_error)`)
	})
	os.Remove(badPath)
	os.Remove(badPath + ".minisig")

	// Nothing the resolver wrote, nor the lists it reads, holds a listed name.
	var files []string
	for _, dir := range []string{lists, state, logDir} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, path)
			}
			return err
		})
	}
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	check := func(what, text string) {
		for _, secret := range []string{"secret", "SECRET", "Secret"} {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("%s holds a listed name: …%s…", what, text[max(0, i-40):min(len(text), i+40)])
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(f, string(data))
	}
	check("regblockd's output", logs.String())
}

// readEvents reads every event of an audit log, block events included.
func readEvents(t *testing.T, path string) []ledger.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []ledger.Event
	for line := range strings.Lines(string(data)) {
		var e ledger.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s: %v: %q", path, err, line)
		}
		events = append(events, e)
	}
	return events
}
