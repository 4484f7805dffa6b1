package regblock

import (
	"testing"

	"github.com/coredns/caddy"

	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

const testList = `#! regblock-list 1
#! name: test-csam
#! issuer: Example Communications Commission
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
#! authority: Example Act 1998, section 263(2)
#! appeal: https://complaints.regulator.example/
#! contact: mailto:complaints@regulator.example
#! canary: canary.test-csam.regblock.test
abuse.example          ORDER-2026-0012  csam
=cdn7.hosting.example  ORDER-2026-0013  csam
!help.abuse.example    ORDER-2026-0014
*.bulk.example         -                csam
`

// fixture is a directory holding testList, signed, and the key's public half.
type fixture struct {
	dir, pub string
	key      *blocklisttest.Key
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	f := fixture{dir: t.TempDir(), key: blocklisttest.NewKey(t)}
	f.pub = f.key.WritePublic(t, t.TempDir())
	f.key.WriteList(t, f.dir, "test-csam.list", testList)
	return f
}

// plugin sets up regblock from a Corefile block with the fixture's lists and
// key, plus options.
func (f fixture) plugin(t testing.TB, options string) *Regblock {
	t.Helper()
	c := caddy.NewTestController("dns", "regblock {\nlists "+f.dir+"\npubkey "+f.pub+"\n"+options+"\n}")
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := newRegblock(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.shutdown() })
	return rb
}
