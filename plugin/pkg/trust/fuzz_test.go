package trust

import (
	"testing"
)

// FuzzParse: no text makes the policy parser panic, and a policy it
// accepts can be met: each threshold is at least 1 and at most its keys.
func FuzzParse(f *testing.F) {
	key := "RWSGehzPXohYxvRFkoD3pM4a6CNZzicUdLJzpKDgciy6Yk2EeUzUPygq" // a public key made for this seed
	f.Add([]byte("#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-12-01T00:00:00Z\nroot 1 " + key + "\nlist a-* 1 " + key + "\n"))
	f.Add([]byte("#! regblock-trust 1\n#! serial: x\nroot 2 " + key + "\nlist * 0\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.trust", data)
		if err != nil {
			return
		}
		for _, r := range append([]Rule{p.Root}, func() (rs []Rule) {
			for _, l := range p.Lists {
				rs = append(rs, l.Rule)
			}
			return rs
		}()...) {
			if r.Threshold < 1 || r.Threshold > len(r.Keys) {
				t.Fatalf("accepted a rule that cannot be met: %+v", r)
			}
		}
	})
}
