package listset

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// A delta in a lists directory is a file NAME.SERIAL.delta (and its
// .minisig), SERIAL being the serial it starts from. The set applies it to
// the version in force when that is the exact version it names, checks the
// result, and records the new version as if its whole file had arrived.
// The version in force then remembers the deltas it was made with, so that
// the state directory can keep them beside the whole copy they start from.

// applied is a delta applied to make a version in force.
type applied struct {
	delta     *blocklist.Delta
	data, sig []byte
}

// passedThrough reports whether the version whose file has the SHA-256 sum
// is c's, or one c was made from by deltas: a file holding it, read again,
// is unchanged rather than a rollback.
func (c *Current) passedThrough(sum [32]byte) bool {
	if c.List.SHA256 == sum || len(c.deltas) > 0 && c.base.SHA256 == sum {
		return true
	}
	return slices.ContainsFunc(c.deltas, func(a applied) bool { return a.delta.From.SHA256 == sum })
}

// deltaSerial returns the serial in a delta file's name, NAME.SERIAL.delta,
// and the list name before it.
func deltaSerial(path string) (name string, serial uint64) {
	base := strings.TrimSuffix(filepath.Base(path), blocklist.DeltaSuffix)
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return base, 0
	}
	serial, _ = strconv.ParseUint(base[i+1:], 10, 64)
	return base[:i], serial
}

// sortDeltas orders delta files by list name, then by the serial they start
// from, so that a chain applies in one scan.
func sortDeltas(paths []string) {
	slices.SortFunc(paths, func(a, b string) int {
		na, sa := deltaSerial(a)
		nb, sb := deltaSerial(b)
		return cmp.Or(cmp.Compare(na, nb), cmp.Compare(sa, sb), cmp.Compare(a, b))
	})
}

// deltaTry is what a delta file was last considered against: its stamp
// and the version in force of the list its name names. A delta is
// considered again when either changes (a delta refused for its base
// applies once its base is in force).
type deltaTry struct {
	stamp   stamp
	inForce [32]byte
}

// considerDeltas considers the delta files that changed, or whose list's
// version in force changed, since they were last considered.
func (s *Set) considerDeltas(paths []string) []*Current {
	sortDeltas(paths)
	var out []*Current
	for _, path := range paths {
		name, from := deltaSerial(path)
		try := deltaTry{stamp: stampOf(path)}
		c := s.inForce[name]
		if c != nil {
			try.inForce = c.List.SHA256
		}
		// One read is enough for a delta that starts, by its name, from a
		// serial older than the one in force: it can never apply.
		if old, ok := s.deltas[path]; ok && old.stamp == try.stamp && (old.inForce == try.inForce || c != nil && from < c.List.Serial) {
			continue
		}
		if c = s.considerDelta(path); c != nil {
			out = append(out, c)
			try.inForce = c.List.SHA256
		}
		s.deltas[path] = try
	}
	return out
}

// considerDelta reads the delta at path and puts the version it makes in
// force if it is valid, newer than the version in force and starts from
// it. It returns the list applied, if any.
func (s *Set) considerDelta(path string) *Current {
	start := time.Now()
	v, err := admit.OpenDelta(path, s.cfg.MaxSize, s.judge())
	if errors.Is(err, minisig.ErrNoSignature) {
		s.wait(path)
		return nil
	}
	delete(s.waiting, path)
	var rejected *admit.Rejected
	switch {
	case errors.As(err, &rejected):
		s.reject(path, rejected.List.Name, err, &rejected.List.Serial)
		return nil
	case err != nil:
		s.rejectDelta(path, err)
		return nil
	}
	d := v.Delta
	if name, from := deltaSerial(path); name != d.Name || from != d.From.Serial {
		s.reject(path, d.Name, result.Errorf(result.ParseError, "%s: the file's name says list %q from serial %d, but it holds the delta of list %q from serial %d; name it %s.%d%s",
			path, name, from, d.Name, d.From.Serial, d.Name, d.From.Serial, blocklist.DeltaSuffix), &d.Serial)
		return nil
	}
	cur := s.inForce[d.Name]
	if cur != nil && cur.passedThrough(d.SHA256) {
		s.note(Change{Kind: Unchanged, Name: d.Name})
		return nil
	}
	var inForce *blocklist.List
	if cur != nil {
		inForce = cur.List
	}
	if _, err := admit.Decide(inForce, s.marks[d.Name], d.List, s.Now()); err != nil {
		s.reject(path, d.Name, err, &d.Serial)
		return nil
	}
	if cur != nil && blocklist.IsRPZ(cur.Path) {
		s.reject(path, d.Name, result.Errorf(result.ParseError, "%s: list %q is in force from an RPZ zone, %s; deltas apply only to regblock lists: publish the zone whole",
			path, d.Name, cur.Path), &d.Serial)
		return nil
	}
	if cur == nil || cur.List.Serial != d.From.Serial || cur.List.SHA256 != d.From.SHA256 {
		held := "no version of the list is in force"
		if cur != nil {
			held = fmt.Sprintf("serial %d (SHA-256 %x) is in force", cur.List.Serial, cur.List.SHA256)
		}
		s.reject(path, d.Name, result.Errorf(result.DeltaBase, "%s: the delta starts from serial %d (SHA-256 %x), but %s; waiting for the right delta or the whole list",
			path, d.From.Serial, d.From.SHA256, held), &d.Serial)
		return nil
	}
	li, err := cur.Index.Apply(d)
	if err != nil {
		s.reject(path, d.Name, err, &d.Serial)
		return nil
	}
	d.CountFrom(cur.List)
	d.Added, d.Removed = nil, nil // the overlay holds what it needs
	c := &Current{List: d.List, Index: li, Path: cur.Path, Applied: s.Now(), Took: time.Since(start),
		base: cur.base, sig: cur.sig, deltas: append(slices.Clip(cur.deltas), applied{d, v.Data, v.Sig}),
		chainSigners: addKeys(cur.chainSigners, cur.List.Signers)}
	if len(cur.deltas) == 0 {
		c.base = blocklist.Base{Serial: cur.List.Serial, SHA256: cur.List.SHA256}
	}
	s.inForce[d.Name] = c
	s.keep(c)
	if s.cfg.State == "" {
		c.dropDeltaBytes() // kept only for the state directory
	}
	return c
}

// dropDeltaBytes forgets the bytes of the deltas that made c, once the
// state directory keeps them: a chain's memory is then its overlay's.
func (c *Current) dropDeltaBytes() {
	for i := range c.deltas {
		c.deltas[i].data, c.deltas[i].sig = nil, nil
	}
}

// addKeys returns keys with those of more it does not hold added.
func addKeys(keys, more []minisign.PublicKey) []minisign.PublicKey {
	keys = slices.Clip(keys)
	for _, k := range more {
		if !slices.ContainsFunc(keys, func(x minisign.PublicKey) bool { return minisig.SameKey(x, k) }) {
			keys = append(keys, k)
		}
	}
	return keys
}

// rejectDelta reports a delta that could not be verified or read, under
// UnknownList: nothing verified says which list it is, and a file name
// made up by whoever can write the lists directory must not count
// against a list in force.
func (s *Set) rejectDelta(path string, err error) {
	name, _ := deltaSerial(path)
	s.note(Change{Kind: Refused, Refusal: Rejection{Path: path, List: name, Unknown: true, Result: result.Of(err), Err: err}})
}

// compactAt is when an overlay is folded into new records: past this many
// changed entries, or a sixteenth of the list's.
const compactAt = 1 << 16

// compact folds the overlays of lists that grew past compactAt into new
// records, after the version that carries them is published, and reports
// whether any was.
func (s *Set) compact() bool {
	done := false
	for _, c := range s.inForce {
		if crowded(c.Index, c.List) {
			c.Index = c.Index.Compact()
			done = true
		}
	}
	return done
}

// crowded reports whether the overlay of li, which holds l, is due to be
// folded into new records.
func crowded(li *blockindex.ListIndex, l *blocklist.List) bool {
	n := li.OverlayLen()
	return n > 0 && (n >= compactAt || n >= l.Blocking()/16)
}

// restoreDeltas applies again the deltas a saved copy was made with.
func restoreDeltas(li *blockindex.ListIndex, l *blocklist.List, deltas []*admit.DeltaVersion) (*blockindex.ListIndex, *blocklist.List, []applied, error) {
	var chain []applied
	for _, v := range deltas {
		d := v.Delta
		if d.Name != l.Name || d.From.Serial != l.Serial || d.From.SHA256 != l.SHA256 {
			return nil, nil, nil, fmt.Errorf("state: %s does not start from list %q serial %d", d.File, l.Name, l.Serial)
		}
		next, err := li.Apply(d)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("state: %w", err)
		}
		d.CountFrom(l)
		d.Added, d.Removed = nil, nil
		li, l = next, d.List
		if crowded(li, l) { // as the set does after each scan
			li = li.Compact()
		}
		chain = append(chain, applied{d, v.Data, v.Sig})
	}
	return li, l, chain, nil
}

// Source returns the file c was applied from: the last delta that made
// it, or the list file.
func (c *Current) Source() string {
	if n := len(c.deltas); n > 0 {
		return c.deltas[n-1].delta.File
	}
	return c.Path
}
