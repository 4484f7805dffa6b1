// Package deltatest makes deltas between list texts for tests.
package deltatest

import (
	"bytes"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Text is the delta from list text old to list text next, as
// 'regblock delta' writes it; tamper, when not nil, may change it before
// it is written.
func Text(t testing.TB, old, next string, tamper func(*blocklist.Delta)) string {
	t.Helper()
	o, err := blocklist.Parse("old.list", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	n, err := blocklist.Parse("new.list", []byte(next))
	if err != nil {
		t.Fatal(err)
	}
	d, err := blocklist.MakeDelta(o, n)
	if err != nil {
		t.Fatal(err)
	}
	if d.Checksum, err = blockindex.ChecksumOf(n.Entries); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(d)
	}
	var b bytes.Buffer
	if err := blocklist.WriteDelta(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
