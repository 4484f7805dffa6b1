package admit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

const list = "#! regblock-list 1\n#! name: test-csam\n#! serial: 7\n#! issued: 2026-11-28T06:00:00Z\n#! expires: 2027-11-28T06:00:00Z\n#! authority: Test Authority\n#! appeal: https://appeal.example/\nabuse.example\n"

// policy returns a trust policy whose root is root and whose one line
// lets signer sign lists named name.
func policy(t *testing.T, root, signer *blocklisttest.Key, name string) *trust.Policy {
	t.Helper()
	text := fmt.Sprintf("#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-12-01T00:00:00Z\nroot 1 %s\nlist %s 1 %s \"Test Issuer\"\n", root.Public, name, signer.Public)
	p, _, err := trust.Open("policy.trust", []byte(text), root.Sign([]byte(text)), nil, []minisign.PublicKey{root.Public})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	root, signer, other := blocklisttest.NewKey(t), blocklisttest.NewKey(t), blocklisttest.NewKey(t)
	path := signer.WriteList(t, dir, "test-csam.list", list)

	var added []string
	v, err := admit.Open(path, 1<<20, admit.ByKeys([]minisign.PublicKey{signer.Public}), func(e blocklist.Entry) { added = append(added, e.Name) })
	if err != nil || v.List.Name != "test-csam" || v.List.Serial != 7 || len(v.Sig) == 0 || strings.Join(added, " ") != "abuse.example" {
		t.Fatalf("by its key: %+v %v, entries %q", v, err, added)
	}
	if v, err := admit.Open(path, 1<<20, admit.ByKeys([]minisign.PublicKey{signer.Public}), nil); err != nil || len(v.List.Entries) != 1 {
		t.Errorf("without add, the entries are kept: %v", err)
	}
	if _, err := admit.Open(path, 1<<20, admit.ByKeys([]minisign.PublicKey{other.Public}), nil); result.Of(err) != result.BadSignature {
		t.Errorf("by another key: %v, want bad_signature", err)
	}
	if _, err := admit.Open(path, 1<<20, admit.ByPolicy(nil), nil); !errors.Is(err, admit.ErrNoPolicy) || result.Of(err) != result.Untrusted {
		t.Errorf("no policy in force yet: %v, want untrusted", err)
	}
	v, err = admit.Open(path, 1<<20, admit.ByPolicy(policy(t, root, signer, "test-*")), nil)
	if err != nil || v.List.Issuer != "Test Issuer" {
		t.Errorf("by a policy line for it: %v; issuer %q (granted by the line)", err, v.List.Issuer)
	}
	// A valid signature by a key whose line names other lists: refused,
	// and the error says which version it was.
	_, err = admit.Open(path, 1<<20, admit.ByPolicy(policy(t, root, signer, "other")), nil)
	var rejected *admit.Rejected
	if !errors.As(err, &rejected) || rejected.List.Serial != 7 || result.Of(err) != result.Untrusted || !strings.Contains(err.Error(), path) {
		t.Errorf("no line for it: %v, want untrusted naming %s", err, path)
	}
	if _, err := admit.Open(dir+"/absent.list", 1<<20, admit.ByKeys([]minisign.PublicKey{signer.Public}), nil); !errors.Is(err, minisig.ErrNoSignature) {
		t.Errorf("no signature: %v", err)
	}
}
