package minisig_test

import (
	"slices"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

// list is the signed text of the fuzz targets: any bytes will do.
const list = "#! regblock-list 1\nabuse.example\n"

// FuzzVerify: no signature text makes verification panic, and nothing but
// a text holding the real signature verifies, by its key alone.
func FuzzVerify(f *testing.F) {
	pub, priv, _ := minisign.GenerateKey(nil)
	_, otherPriv, _ := minisign.GenerateKey(nil)
	data := []byte(list)
	good := minisign.Sign(priv, data)
	goodLine := strings.TrimSpace(strings.Split(string(good), "\n")[1])
	f.Add(good)
	f.Add(append(append(minisign.Sign(otherPriv, data), "garbage\n"...), good...))
	f.Add(append(slices.Clone(good), good...))
	f.Add([]byte("untrusted comment: x\nRWQ\ntrusted comment: y\nAAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sig []byte) {
		signers, err := minisig.Verify(data, sig, []minisign.PublicKey{pub})
		if err != nil {
			return
		}
		// Another encoding of the same signature (comments, line endings)
		// may verify; what matters is that it is the one.
		if !strings.Contains(string(sig), goodLine) || len(signers) != 1 || !minisig.SameKey(signers[0], pub) {
			t.Fatalf("%q verified, signers %X", sig, signers)
		}
	})
}

// FuzzVerifyCollidingIDs: with trusted keys whose IDs collide (another key
// written under the real key's ID, and the real key under a second ID), no
// signature text makes a key count that did not sign, or one key count
// twice: the signers are distinct public keys, each of a key that signed.
func FuzzVerifyCollidingIDs(f *testing.F) {
	real, other := blocklisttest.NewKey(f), blocklisttest.NewKey(f)
	impostor := blocklisttest.WithID(other.Public, real.Public.ID())
	alias := blocklisttest.WithID(real.Public, other.Public.ID())
	keys := []minisign.PublicKey{real.Public, impostor, alias}
	data := []byte(list)
	good := real.Sign(data)
	f.Add(good)
	f.Add(append(slices.Clone(good), blocklisttest.ReID(good, other.Public.ID())...))
	f.Add(blocklisttest.ReID(other.Sign(data), real.Public.ID()))
	f.Add(append(blocklisttest.ReID(other.SignLegacy(data), real.Public.ID()), real.SignLegacy(data)...))
	f.Fuzz(func(t *testing.T, sig []byte) {
		signers, err := minisig.Verify(data, sig, keys)
		if err != nil {
			return
		}
		for i, s := range signers {
			if !minisig.SameKey(s, real.Public) && !minisig.SameKey(s, other.Public) {
				t.Fatalf("signer %v made no signature", s)
			}
			for _, p := range signers[:i] {
				if minisig.SameKey(p, s) {
					t.Fatalf("key %v counted twice in %q", s, sig)
				}
			}
		}
	})
}
