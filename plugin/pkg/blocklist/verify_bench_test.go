package blocklist_test

import (
	"bytes"
	"fmt"
	"testing"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

// BenchmarkVerifyHostileSignature: a .minisig made to cost (one legacy
// block, then a 64 KiB of blocks carrying trusted key IDs and junk
// signatures) against the one good signature, on a 4 MB list, with 300
// trusted keys. Compare the two as a ratio: the hostile file must cost a
// few passes over the list, not one a block.
func BenchmarkVerifyHostileSignature(b *testing.B) {
	var keys []minisign.PublicKey
	var all []*blocklisttest.Key
	for range 300 {
		k := blocklisttest.NewKey(b)
		all = append(all, k)
		keys = append(keys, k.Public)
	}
	var text bytes.Buffer
	text.WriteString(`#! regblock-list 1
#! name: bench
#! serial: 1
#! issued: 2026-11-28T06:00:00Z
`)
	for i := 0; text.Len() < 4<<20; i++ {
		fmt.Fprintf(&text, "site%07d.example\n", i)
	}
	data := text.Bytes()
	good := all[0].Sign(data)
	hostile := all[1].SignLegacy([]byte("other"))
	junk := all[2].Sign([]byte("other"))
	for i := 0; len(hostile) < minisig.MaxSize-len(junk); i++ {
		hostile = append(hostile, blocklisttest.ReID(junk, keys[3+i%290].ID())...)
	}
	hostile = append(hostile, good...)
	for _, bc := range []struct {
		name string
		sig  []byte
	}{{"good", good}, {"hostile", hostile}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				minisig.Verify(data, bc.sig, keys)
			}
		})
	}
}
