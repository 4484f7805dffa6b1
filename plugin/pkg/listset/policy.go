package listset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// Policy returns the trust policy in force, or nil.
func (s *Set) Policy() *trust.Policy { return s.policy }

// judge returns how lists are judged now: by the configured keys, or with
// a trust policy by the policy in force.
func (s *Set) judge() admit.Judge {
	if s.cfg.Trust == "" {
		return admit.ByKeys(s.cfg.Keys)
	}
	return admit.ByPolicy(s.policy)
}

// policyStamp identifies the trust policy's version on disk: its file's,
// or for a history directory the directory's own (a version renamed into
// it changes it) with its newest version's, so that no file put there,
// however high its number, hides the versions added after it.
func policyStamp(path string) stamp {
	if isDir(path) {
		st := stamp{list: idOf(path)}
		if vs, err := trust.History(path); err == nil && len(vs) > 0 {
			st.sig = idOf(vs[len(vs)-1].Path)
		}
		return st
	}
	return stampOf(path)
}

// scanPolicy reads the trust policy again if its file or signature changed,
// and puts a valid new version in force: the lists in force are judged
// again (one that no longer meets its line is removed), the high-water
// mark of each list whose line lost keys starts again (a thief's serials
// stop counting), and every list file is read again under the new policy.
// It reports whether a list was removed.
func (s *Set) scanPolicy() (removed bool) {
	if s.cfg.Trust == "" {
		return false
	}
	st := policyStamp(s.cfg.Trust)
	if st == s.policyStamp {
		return false
	}
	s.policyStamp = st
	if _, err := os.Stat(s.cfg.Trust); errors.Is(err, os.ErrNotExist) {
		return false // the policy in force stays: a policy is replaced, not removed
	}
	p, unchanged, err := trust.Walk(s.cfg.Trust, s.policy, s.cfg.Keys)
	if errors.Is(err, trust.ErrEmptyHistory) {
		return false // as a policy file not written yet: lists wait, untrusted
	}
	if err != nil {
		// Versions of a history before the one refused stand.
		s.note(Change{Kind: PolicyRefused, Path: s.cfg.Trust, Result: result.Of(err), Err: err, Policy: s.policy})
	}
	if unchanged || p == nil || p == s.policy {
		return false
	}
	old := s.policy
	s.policy = p
	s.unsaved.policy = p
	s.saveState() // kept before it is reported in force, as before retries
	s.note(Change{Kind: PolicyApplied, Policy: p})

	for name, c := range s.inForce {
		if err := p.Judge(name, c.List.Issuer, c.List.Signers); err != nil {
			s.remove(name, fmt.Sprintf("no longer trusted under trust policy serial %d: %v", p.Serial, err))
			removed = true
		}
	}
	marksChanged := false
	for name, m := range s.marks {
		if !markStands(old, p, name, m) {
			delete(s.marks, name)
			marksChanged = true
		}
	}
	if marksChanged {
		s.unsaved.marks = true
	}
	s.saveState()
	clear(s.stamps) // every list and delta is judged again under the new policy
	clear(s.deltas)
	return removed
}

// markStands reports whether the high-water mark m of list name stays
// when policy next replaces prev: while the keys that signed the marked
// version still meet the threshold of the list's line in next. A key
// rotated with overlap keeps the mark; a thief's key taken off the line
// lets it start again (TUF's fast-forward recovery). A mark kept before
// signers were recorded stays unless the line lost a key of prev's.
func markStands(prev, next *trust.Policy, name string, m *admit.Mark) bool {
	after := next.RuleFor(name)
	if m.Signers == nil {
		return !lostKeys(prev, after, name)
	}
	if after == nil {
		return false
	}
	var signers []minisign.PublicKey
	for _, text := range m.Signers {
		var k minisign.PublicKey
		if k.UnmarshalText([]byte(text)) == nil {
			signers = append(signers, k)
		}
	}
	return after.Count(signers) >= after.Threshold
}

// lostKeys reports whether after, the line for list name in the next
// policy, lacks a key of its line in prev.
func lostKeys(prev *trust.Policy, after *trust.ListRule, name string) bool {
	if prev == nil {
		return false
	}
	before := prev.RuleFor(name)
	if before == nil {
		return false
	}
	for _, k := range before.Keys {
		if after == nil || !slices.ContainsFunc(after.Keys, func(x minisign.PublicKey) bool { return minisig.SameKey(x, k) }) {
			return true
		}
	}
	return false
}

// The state directory keeps the trust policy in force under names no list
// can have (a list's name starts with a letter or digit).
const (
	policyFile = ".trust"
	policySig  = policyFile + minisig.Suffix
)

// savePolicy keeps a copy of the policy in force, read again from path and
// checked against p's digest.
func (d stateDir) savePolicy(path string, p *trust.Policy) error {
	data, err := regularfile.Read(path, trust.MaxSize)
	if err != nil {
		return err
	}
	sig, err := minisig.Read(path)
	if err != nil {
		return err
	}
	if q, err := trust.OpenSaved(path, data, sig); err != nil || q.SHA256 != p.SHA256 {
		return fmt.Errorf("state: %s changed while it was copied; the next version will be saved", path)
	}
	if err := atomicfile.Write(filepath.Join(string(d), policySig), sig, 0o640); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(string(d), policyFile), data, 0o640); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// loadPolicy reads the saved policy back; nil when there is none.
func (d stateDir) loadPolicy() (*trust.Policy, error) {
	path := filepath.Join(string(d), policyFile)
	data, err := regularfile.Read(path, trust.MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	sig, err := minisig.Read(path)
	if err != nil {
		return nil, err
	}
	return trust.OpenSaved(path, data, sig)
}
