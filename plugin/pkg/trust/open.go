package trust

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"aead.dev/minisign"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// Open parses the policy data, read from path, and checks that it may
// replace inForce (nil when no policy was ever accepted) given its
// signatures sig (a .minisig file's text, one signature or several):
//
//   - the same bytes as inForce: unchanged;
//   - a serial not above inForce's: an error wrapping ErrRollback;
//   - the threshold of inForce's root line, and of its own root line, in
//     valid signatures by distinct keys (root rotation one step at a time,
//     as in TUF); without inForce, a majority of the pinned keys (the
//     resolver's pubkey), and no fewer than its own root threshold, and the
//     threshold of its own root line: else an error wrapping ErrThreshold.
//
// A parse error is a *result.Error with reason parse_error, a file
// without any valid signature by those keys one with bad_signature.
func Open(path string, data, sig []byte, inForce *Policy, pinned []minisign.PublicKey) (p *Policy, unchanged bool, err error) {
	if p, err = parse(path, data); err != nil {
		return nil, false, err
	}
	if inForce != nil {
		if inForce.SHA256 == p.SHA256 {
			return inForce, true, nil
		}
		if p.Serial <= inForce.Serial {
			return nil, false, fmt.Errorf("%s: %w: trust policy serial %d is not newer than serial %d in force", path, ErrRollback, p.Serial, inForce.Serial)
		}
	}
	// The keys that may sign it: those in force (or pinned) and its own
	// root keys. A new root key may not reuse the ID of a key in force for
	// another public key: the ID would find the wrong key.
	signers := append(inForce.rootKeys(pinned), p.Root.Keys...)
	names := make([]string, len(signers))
	for i := range names {
		names[i] = fmt.Sprintf("the root line of serial %d", p.Serial)
		if i < len(signers)-len(p.Root.Keys) {
			names[i] = "a root key in force"
		}
	}
	if err := minisig.CheckKeys(signers, names); err != nil {
		return nil, false, &result.Error{Result: result.ParseError, Err: fmt.Errorf("%s: %v", path, err)}
	}
	ids, err := minisig.Verify(data, sig, signers)
	if err != nil {
		return nil, false, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	p.Signers = ids
	if inForce == nil {
		// The first policy sets its own root threshold: taken alone, one
		// pinned key could sign a policy of "root 1" with itself. So it
		// needs a majority of the pinned keys too.
		pinnedRule := Rule{Keys: pinned}
		need := max(p.Root.Threshold, pinnedRule.distinct()/2+1)
		if n := pinnedRule.Count(ids); n < need {
			return nil, false, fmt.Errorf("%s: %w: the first trust policy needs %d valid signatures by the pinned root keys (pubkey): its root threshold, and a majority of the %d pinned; it has %d", path, ErrThreshold, need, pinnedRule.distinct(), n)
		}
	} else if n := inForce.Root.Count(ids); n < inForce.Root.Threshold {
		return nil, false, fmt.Errorf("%s: %w: trust policy serial %d needs %d valid signatures by the root keys of serial %d in force, it has %d", path, ErrThreshold, p.Serial, inForce.Root.Threshold, inForce.Serial, n)
	}
	if n := p.Root.Count(ids); n < p.Root.Threshold {
		return nil, false, fmt.Errorf("%s: %w: trust policy serial %d needs %d valid signatures by its own root keys (line %d), it has %d", path, ErrThreshold, p.Serial, p.Root.Threshold, p.Root.Line, n)
	}
	return p, false, nil
}

// OpenSaved parses a policy kept by the resolver itself (its state
// directory) and checks only that its own root line's threshold signed it:
// it was accepted under the rules of its time, which may have rotated away
// from the pinned keys since.
func OpenSaved(path string, data, sig []byte) (*Policy, error) {
	p, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	ids, err := minisig.Verify(data, sig, p.Root.Keys)
	if err != nil {
		return nil, &result.Error{Result: result.BadSignature, Err: fmt.Errorf("%s: %v", path+minisig.Suffix, err)}
	}
	if n := p.Root.Count(ids); n < p.Root.Threshold {
		return nil, fmt.Errorf("%s: %w: %d valid signatures by its root keys, it needs %d", path, ErrThreshold, n, p.Root.Threshold)
	}
	p.Signers = ids
	return p, nil
}

func parse(path string, data []byte) (*Policy, error) {
	p, err := Parse(path, data)
	if err != nil {
		return nil, &result.Error{Result: result.ParseError, Err: err}
	}
	return p, nil
}

// rootKeys returns the keys that sign the next policy: the root keys of p,
// or the pinned ones when p is nil.
func (p *Policy) rootKeys(pinned []minisign.PublicKey) []minisign.PublicKey {
	if p == nil {
		return slices.Clone(pinned)
	}
	return slices.Clone(p.Root.Keys)
}

// Load reads the policy at path and its signature, and opens it as Open
// does.
func Load(path string, inForce *Policy, pinned []minisign.PublicKey) (*Policy, bool, error) {
	data, err := regularfile.Read(path, MaxSize)
	if err != nil {
		return nil, false, err
	}
	sig, err := minisig.Read(path)
	if err != nil {
		return nil, false, err
	}
	return Open(path, data, sig, inForce, pinned)
}

// HistorySuffix ends the name of each version in a policy history
// directory: N.trust for serial N.
const HistorySuffix = ".trust"

// ErrEmptyHistory is Walk's error for a history directory that holds no
// version yet, as for a policy file not written yet.
var ErrEmptyHistory = errors.New("no trust policy version in the directory yet (versions are named 1" + HistorySuffix + ", 2" + HistorySuffix + ", ...)")

// Version is one published version of a policy history: N.trust.
type Version struct {
	Serial uint64
	Path   string
}

// History returns the versions in dir, a policy history directory (every
// published version as SERIAL.trust, each with its .minisig), in serial
// order. Files of other names are left out.
func History(dir string) ([]Version, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var vs []Version
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), HistorySuffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != num {
			continue
		}
		vs = append(vs, Version{n, filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(vs, func(a, b Version) int { return cmp.Compare(a.Serial, b.Serial) })
	return vs, nil
}

// Walk opens the policy at path, a file (as Load) or a history directory:
// from inForce, or from the pinned keys when there is none, it applies
// every newer version in serial order, each accepted by the one before it,
// as TUF clients walk root versions, so that a resolver commissioned after
// root rotations needs only the first roots. It returns the newest version
// accepted (inForce, unchanged, when none is newer). A version refused
// stops the walk: its error comes back with the last version accepted
// before it (nil when that is inForce), which stands.
//
// From the pinned keys alone, the walk starts at the first version they
// accept: one pinned to today's roots passes by the versions that earlier
// roots signed. When they accept none, the first refusal comes back.
func Walk(path string, inForce *Policy, pinned []minisign.PublicKey) (p *Policy, unchanged bool, err error) {
	if fi, serr := os.Stat(path); serr != nil || !fi.IsDir() {
		return Load(path, inForce, pinned)
	}
	vs, err := History(path)
	if err != nil {
		return nil, false, err
	}
	p = inForce
	var first error // the first version the pinned keys refused
	for _, v := range vs {
		if p != nil && v.Serial <= p.Serial {
			continue
		}
		next, _, err := Load(v.Path, p, pinned)
		if err == nil && next.Serial != v.Serial {
			err = fmt.Errorf("%s: %w: the file holds trust policy serial %d, not %d", v.Path, ErrRollback, next.Serial, v.Serial)
		}
		switch {
		case err == nil:
			p = next
		case p == nil:
			if first == nil {
				first = err
			}
		case p == inForce:
			return nil, false, err
		default:
			return p, false, err
		}
	}
	switch {
	case p == nil && first != nil:
		return nil, false, first
	case p == nil:
		return nil, false, fmt.Errorf("%s: %w", path, ErrEmptyHistory)
	case p == inForce:
		return inForce, true, nil
	}
	return p, false, nil
}
