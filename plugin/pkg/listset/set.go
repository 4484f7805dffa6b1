// Package listset keeps the set of signed lists in force from list files
// and directories on disk: it admits each new version off the query path
// (package admit: verified, judged, decided), keeps the last good version
// of each list and its high-water mark, optionally in a state directory,
// records each change it decides through one function, and then publishes
// a lookup index of all lists in force. The resolver plugin and the notice
// server both use it, so both enforce exactly the same lists. The road of
// a list version is drawn in docs/architecture.md.
package listset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// Config says where the lists are and how to accept them.
type Config struct {
	Lists   []string // list files and directories of *.list files
	Keys    []minisign.PublicKey
	MaxSize int64  // bytes
	State   string // directory for the last accepted copies, "" for none
	// Trust is the trust policy file, "" for none. With a policy, Keys
	// are the pinned root keys that sign the first policy, and the policy
	// says which keys sign which lists.
	Trust string
}

// Current is a list in force.
type Current struct {
	List     *blocklist.List // without its entries, which Index holds
	Index    *blockindex.ListIndex
	Path     string // the list file it was applied from
	Applied  time.Time
	Took     time.Duration // reading, verifying and parsing it
	Restored bool          // put in force from the state directory at startup
	expired  bool          // its expiry has been reported
	// deltas are the deltas applied, in order, to the whole version base
	// (which Path held) to make this one; none for a version read whole.
	deltas []applied
	base   blocklist.Base
	// sig is the signature of the whole file Path held: this version's,
	// or for a version made by deltas, base's.
	sig []byte
	// chainSigners are the keys that signed base and the deltas before
	// the last: a restart verifies those parts with them, and judges only
	// the last delta's signers by the trust in force, as the running set
	// does (a key rotated out since must not lose the version).
	chainSigners []minisign.PublicKey
}

// Rejection is a list version that was refused.
type Rejection struct {
	Path    string
	List    string // the list's name, or the file's name without .list when unknown
	Unknown bool   // List is the file's name: nothing verified says which list it is
	Result  result.Result
	Err     error   // what is wrong, naming the file and line
	Serial  *uint64 // of the refused version, when it was read
	InForce *Current
}

// UnknownList is the metric label of a rejected file that no verified list
// names (a bad signature, a file that cannot be read).
const UnknownList = "unknown"

// Label returns the list label to count r under: the list's name, or
// UnknownList when only the file's name says which list it is, so that
// file names made up by whoever can write the lists directory add no
// series of their own.
func (r Rejection) Label() string {
	if r.Unknown {
		return UnknownList
	}
	return r.List
}

// Set holds the lists in force and decides which new versions to apply.
// Its methods must be called from one goroutine at a time (setup, then the
// watcher); readers see only the indexes it publishes.
type Set struct {
	cfg     Config
	inForce map[string]*Current    // by list name
	stamps  map[string]stamp       // by list file: the version last read
	read    map[string]version     // by list file: the verified list it held when last read
	deltas  map[string]deltaTry    // by delta file: what it was last considered against
	swapped bool                   // an index in force changed without a new version (rebase)
	marks   map[string]*admit.Mark // by list name: the highest version ever accepted, kept for good
	waiting map[string]bool        // list files without a signature, reported once
	// strayPolicies are policy files found in a lists directory, reported once.
	strayPolicies map[string]bool
	scanned       bool // the first Scan is done

	policy        *trust.Policy // in force, with cfg.Trust
	policyStamp   stamp
	policyExpired bool // its expiry has been reported
	publish       func(*blockindex.Index)
	record        func(Change)
	changes       []Change // noted since the last commit

	unsaved  unsaved      // what the state directory has yet to keep
	nUnsaved atomic.Int32 // its count, for readers on other goroutines

	// Now is the clock; tests set it.
	Now func() time.Time

	stop, done chan struct{}
}

// New returns a Set that publishes its indexes with publish and has record
// record each change it decides (for logs, metrics and the ledger), on the
// goroutine running the Set, before the index that holds the change is
// published. It reads nothing yet: call Restore, then Scan.
func New(cfg Config, publish func(*blockindex.Index), record func(Change)) *Set {
	return &Set{
		cfg:     cfg,
		inForce: map[string]*Current{},
		stamps:  map[string]stamp{},
		read:    map[string]version{},
		deltas:  map[string]deltaTry{},
		marks:   map[string]*admit.Mark{},
		waiting: map[string]bool{},
		unsaved: unsaved{copies: map[string]pendingCopy{}},

		strayPolicies: map[string]bool{},
		publish:       publish,
		record:        record,
		Now:           time.Now,
	}
}

// InForce returns the list in force under name, or nil.
func (s *Set) InForce(name string) *Current { return s.inForce[name] }

// Len returns the number of lists in force.
func (s *Set) Len() int { return len(s.inForce) }

// Restore puts the copies kept in the state directory in force, so that a
// restart enforces the last good lists whatever the files now hold. The
// first Scan, which must follow at once, removes those whose file was
// deleted while the program was stopped (and not renamed). Call it once.
func (s *Set) Restore() {
	if s.cfg.State == "" {
		return
	}
	state := stateDir(s.cfg.State)
	marks, err := state.loadMarks()
	if err != nil {
		s.note(Change{Kind: Problem, Err: fmt.Errorf("high-water marks not restored: %w", err)})
	}
	s.marks = marks
	if s.cfg.Trust != "" {
		p, err := state.loadPolicy()
		if err != nil {
			s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring the saved trust policy: %w", err)})
		} else if p != nil {
			s.policy = p
			s.note(Change{Kind: PolicyApplied, Policy: p})
		}
	}
	lists, errs := state.load(s.judge(), s.cfg.MaxSize)
	for _, err := range errs {
		s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring a saved list: %w", err)})
	}
	var restored []*Current
	for _, sv := range lists {
		// A copy below its mark is of a version since replaced by one whose
		// copy the disk refused: restoring it would be a rollback.
		if m := s.marks[sv.list.Name]; len(sv.deltas) == 0 && m.Above(sv.list) {
			s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring the saved copy of list %q: its serial %d is below the high-water mark %d (the newer version was never saved)", sv.list.Name, sv.list.Serial, m.Serial)})
			continue
		}
		li, err := compile(sv.list)
		if err != nil {
			s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring a saved list: %w", err)})
			continue
		}
		c := &Current{List: sv.list, Index: li, Path: sv.source, Applied: sv.applied, Restored: true, sig: sv.sig, chainSigners: sv.chainSigners}
		if len(sv.deltas) > 0 {
			c.base = blocklist.Base{Serial: sv.list.Serial, SHA256: sv.list.SHA256}
			if c.Index, c.List, c.deltas, err = restoreDeltas(li, sv.list, sv.deltas); err != nil {
				s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring the saved copy of list %q: %w", sv.list.Name, err)})
				continue
			}
			if c.List.Serial != sv.serial || fmt.Sprintf("%x", c.List.SHA256) != sv.sha256 {
				s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring the saved copy of list %q: its deltas make serial %d, its record says %d", sv.list.Name, c.List.Serial, sv.serial)})
				continue
			}
			if m := s.marks[c.List.Name]; m.Above(c.List) {
				s.note(Change{Kind: Problem, Err: fmt.Errorf("not restoring the saved copy of list %q: its serial %d is below the high-water mark %d (the newer version was never saved)", c.List.Name, c.List.Serial, m.Serial)})
				continue
			}
			c.dropDeltaBytes() // read from the state directory, which keeps them
		}
		s.inForce[sv.list.Name] = c
		if s.raiseMark(c.List) { // a lost marks file, or state from before marks were kept
			s.unsaved.marks = true
		}
		restored = append(restored, c)
	}
	var ix *blockindex.Index
	if len(restored) > 0 {
		ix = s.build(restored)
	}
	s.saveState()
	s.commit(ix)
}

// Scan reads the list files that changed since the last scan, applies the
// valid new versions, removes the lists whose files are gone, publishes a
// new index when anything in force changed, and reports expired lists.
func (s *Set) Scan() {
	removed := s.scanPolicy()
	present := map[string]bool{}
	var applied []*Current
	lists, deltas := s.listFiles()
	for _, path := range lists {
		present[path] = true
		st := stampOf(path)
		if old, ok := s.stamps[path]; ok && old == st {
			continue
		}
		s.stamps[path] = st
		if c := s.consider(path); c != nil {
			applied = append(applied, c)
		}
	}
	applied = append(applied, s.considerDeltas(deltas)...)
	for _, path := range deltas {
		present[path] = true
	}
	for path := range s.stamps {
		if !present[path] {
			delete(s.stamps, path)
			delete(s.read, path)
			delete(s.waiting, path)
		}
	}
	for path := range s.deltas {
		if !present[path] {
			delete(s.deltas, path)
			delete(s.waiting, path)
		}
	}
	for name, c := range s.inForce {
		if present[c.Path] {
			continue
		}
		// The same version under another file name is the same list: a
		// file renamed (mv, a ConfigMap key renamed, sync -name changed)
		// keeps it in force without a gap.
		if path := s.copyOf(c); path != "" {
			s.moved(c, path)
			continue
		}
		why := fmt.Sprintf("its file %s was removed", c.Path)
		if !s.scanned {
			why += " while stopped"
		}
		s.remove(name, why)
		removed = true
	}
	// A file provides one list: when another list is in force from it
	// (its files swapped, or two restored from the state directory after a
	// crash between a file's new list and the old one's removal), the one
	// it no longer holds goes.
	for name, c := range s.inForce {
		if other := s.read[c.Path].name; other != "" && other != name && s.inForce[other] != nil && s.inForce[other].Path == c.Path {
			s.remove(name, fmt.Sprintf("its file %s now holds list %q", c.Path, other))
			removed = true
		}
	}
	s.scanned = true
	var ix *blockindex.Index
	if len(applied) > 0 || removed || s.swapped {
		ix = s.build(applied)
		s.swapped = false
	}
	s.checkExpiry()
	s.saveState()
	s.commit(ix)
	if s.compact() {
		s.commit(s.build(nil))
	}
}

// build indexes the lists in force and notes the lists just applied.
func (s *Set) build(applied []*Current) *blockindex.Index {
	start := time.Now()
	lists := make([]*blockindex.ListIndex, 0, len(s.inForce))
	for _, c := range s.inForce {
		lists = append(lists, c.Index)
	}
	ix, err := blockindex.New(lists)
	if err != nil {
		// consider keeps names unique and the count within bounds.
		panic(err)
	}
	swap := time.Since(start)
	for _, c := range applied {
		// Of two versions of a list applied in one scan (two files), only
		// the later is in this index: the earlier was never enforced.
		if s.inForce[c.List.Name] == c {
			s.note(Change{Kind: Applied, List: c, Swap: swap})
		}
	}
	return ix
}

// consider reads the list file at path and puts it in force if it is valid
// and newer than the version in force. It returns the list applied, if any.
func (s *Set) consider(path string) *Current {
	return s.considerWith(path, true, time.Now())
}

// indexer is what a list file's entries stream into: a compiler, or a
// differ against the version in force.
type indexer interface {
	Add(blocklist.Entry)
	Finish(*blocklist.List) (*blockindex.ListIndex, error)
}

// considerWith is consider, from start; diff says whether a new version
// of the list in force from path may be diffed against it rather than
// compiled.
func (s *Set) considerWith(path string, diff bool, start time.Time) *Current {
	delete(s.read, path)
	// The file streams through the signature check and the parser, and
	// its entries straight into the index: a list being loaded is never
	// held whole, neither as text nor as entries. A new version of the
	// list in force from the file (a whole reload) is diffed against it,
	// which costs a bit per entry in force instead of a second index
	// beside it, unless it changes too much to be an overlay: then the
	// file is read again and compiled.
	var ix indexer
	if cur := s.fromPath(path); diff && cur != nil {
		if d := blockindex.NewDiffer(cur.Index, min(compactAt, cur.List.Blocking()/16)-1); d != nil {
			ix = d
		}
	}
	if ix == nil {
		var size int64 // sizes the index being built
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		ix = blockindex.NewCompilerFor(min(size, s.cfg.MaxSize))
	}
	pl := newPipeline(ix)
	defer pl.close()
	v, err := admit.Open(path, s.cfg.MaxSize, s.judge(), pl.Add)
	if errors.Is(err, minisig.ErrNoSignature) && s.fromPath(path) == nil {
		s.wait(path) // not yet published whole: the signature may come next
		return nil
	}
	delete(s.waiting, path)
	var rejected *admit.Rejected
	switch {
	case errors.As(err, &rejected): // verified, but its signers may not sign it
		s.reject(path, rejected.List.Name, err, &rejected.List.Serial)
		return nil
	case err != nil:
		s.reject(path, "", err, nil)
		return nil
	}
	l, sig := v.List, v.Sig
	s.read[path] = version{l.Name, l.SHA256}
	cur := s.inForce[l.Name]
	var inForce *blocklist.List
	if cur != nil {
		inForce = cur.List
	}
	switch unchanged, err := admit.Decide(inForce, s.marks[l.Name], l, s.Now()); {
	case unchanged || cur != nil && cur.passedThrough(l.SHA256):
		change := Change{Kind: Unchanged, Name: l.Name}
		if cur != nil && len(cur.deltas) > 0 && cur.List.SHA256 == l.SHA256 {
			li, err := pl.Finish(l)
			if errors.Is(err, blockindex.ErrTooDifferent) {
				return s.considerWith(path, false, start)
			}
			if err == nil { // else the chain stays; so does its state
				change.List = s.rebase(cur, path, l, sig, li)
			}
		}
		s.note(change)
		return nil
	case err != nil:
		s.reject(path, l.Name, err, &l.Serial)
		return nil
	case cur == nil && len(s.inForce) >= blockindex.MaxLists:
		s.reject(path, l.Name, &result.Error{Result: result.ParseError,
			Err: fmt.Errorf("%s: list %q would be list number %d; at most %d are supported", path, l.Name, len(s.inForce)+1, blockindex.MaxLists)}, &l.Serial)
		return nil
	}

	li, err := pl.Finish(l)
	if errors.Is(err, blockindex.ErrTooDifferent) {
		return s.considerWith(path, false, start)
	}
	if err != nil {
		s.reject(path, l.Name, &result.Error{Result: result.ParseError, Err: err}, &l.Serial)
		return nil
	}

	// A file that now holds another list no longer provides the one it held.
	for name, old := range s.inForce {
		if old.Path == path && name != l.Name {
			s.remove(name, fmt.Sprintf("its file %s now holds list %q", path, l.Name))
		}
	}
	c := &Current{List: l, Index: li, Path: path, Applied: s.Now(), Took: time.Since(start), sig: sig}
	s.inForce[l.Name] = c
	s.keep(c)
	return c
}

// rebase puts in force, in place of cur, a version made by deltas, the
// whole file of that version: l, read from path, indexed as li. Its index
// replaces the chain's (compacted for free when compiled), the state
// directory keeps it instead of the chain, and the next Scan publishes
// it. A delta's sha256 header is its signer's word: when the whole file's
// entries are not the chain's, the chain's signers lied about which
// version they made, and the whole file's entries are enforced from now.
// It returns the version now in force.
func (s *Set) rebase(cur *Current, path string, l *blocklist.List, sig []byte, li *blockindex.ListIndex) *Current {
	if li.Checksum() != cur.Index.Checksum() {
		s.reject(cur.Source(), l.Name, result.Errorf(result.DeltaMismatch, "%s: the deltas that made list %q serial %d give other entries (checksum %s) than its whole file %s (checksum %s), which has the SHA-256 they named: enforcing the whole file",
			cur.Source(), l.Name, l.Serial, cur.Index.Checksum(), path, li.Checksum()), &l.Serial)
	}
	whole := &Current{List: l, Index: li, Path: path, Applied: cur.Applied, Took: cur.Took, Restored: cur.Restored, sig: sig}
	s.inForce[l.Name] = whole
	s.keep(whole)
	s.swapped = true
	return whole
}

// keep raises the mark of c's list to c and saves c in the state
// directory (saveState says in which order).
func (s *Set) keep(c *Current) {
	name := c.List.Name
	p := pendingCopy{c: c, mark: s.marks[name]}
	if old, ok := s.unsaved.copies[name]; ok {
		p.mark = old.mark // the mark on disk is still the one before both
	}
	s.unsaved.copies[name] = p
	if s.raiseMark(c.List) {
		s.unsaved.marks = true
	}
	s.saveState()
}

// compile builds the lookup index of a list read whole (a saved copy) and
// frees its entries: the index is all a list in force needs, and a
// fraction of their memory.
func compile(l *blocklist.List) (*blockindex.ListIndex, error) {
	li, err := blockindex.Compile(l)
	if err != nil {
		return nil, &result.Error{Result: result.ParseError, Err: err}
	}
	l.DropEntries()
	return li, nil
}

// reject reports a list version that was refused; the version in force, if
// any, stays.
func (s *Set) reject(path, name string, err error, serial *uint64) {
	unknown := false
	if name == "" {
		if c := s.fromPath(path); c != nil {
			name = c.List.Name
		} else {
			name, unknown = blocklist.TrimSuffix(filepath.Base(path)), true
		}
	}
	s.note(Change{Kind: Refused, Refusal: Rejection{Path: path, List: name, Unknown: unknown, Result: result.Of(err), Err: err, Serial: serial, InForce: s.inForce[name]}})
}

// remove takes list name out of force.
// Its copy leaves the state directory only once the removal is recorded
// (commit): a crash before that restores it, and the next scan removes it
// again, on the record.
func (s *Set) remove(name, why string) {
	c := s.inForce[name]
	delete(s.inForce, name)
	s.note(Change{Kind: Removed, List: c, Why: why})
}

// CheckExpiry reports, once per version, each list in force that expired.
// An expired list stays in force: blocking must not lapse because a
// re-signed list is late.
func (s *Set) CheckExpiry() {
	s.checkExpiry()
	s.commit(nil)
}

func (s *Set) checkExpiry() {
	now := s.Now()
	if s.policy != nil && !s.policyExpired && s.policy.Expired(now) {
		s.policyExpired = true
		s.note(Change{Kind: PolicyExpired, Policy: s.policy})
	}
	for _, c := range s.inForce {
		if !c.expired && c.List.Expired(now) {
			c.expired = true
			s.note(Change{Kind: Expired, List: c})
		}
	}
}

// raiseMark raises the high-water mark of l's name to l, and reports
// whether it moved.
func (s *Set) raiseMark(l *blocklist.List) bool {
	if m := s.marks[l.Name]; m != nil && m.Serial >= l.Serial {
		return false
	}
	s.marks[l.Name] = admit.MarkOf(l)
	return true
}

// version identifies a verified version of a list.
type version struct {
	name   string
	sha256 [32]byte
}

// copyOf returns a list file, other than the one c was applied from, that
// held c's version when last read (or, for a version made by deltas, one it
// was made from), or "".
func (s *Set) copyOf(c *Current) string {
	for path, v := range s.read {
		if v.name == c.List.Name && path != c.Path && c.passedThrough(v.sha256) {
			return path
		}
	}
	return ""
}

// moved records that list c is now provided by the file at path.
func (s *Set) moved(c *Current, path string) {
	old := c.Path
	c.Path = path
	if s.cfg.State != "" {
		if err := stateDir(s.cfg.State).setSource(c); err != nil {
			s.note(Change{Kind: Problem, Err: err})
		}
	}
	s.note(Change{Kind: Moved, List: c, From: old})
}

// fromPath returns the list in force that was applied from path, if any.
func (s *Set) fromPath(path string) *Current {
	for _, c := range s.inForce {
		if c.Path == path {
			return c
		}
	}
	return nil
}

// listFiles returns the list files configured now: the files named, and the
// *.list files of the directories named; and the *.delta files of those
// directories.
func (s *Set) listFiles() (paths, deltas []string) {
	for _, path := range s.cfg.Lists {
		if !isDir(path) {
			if _, err := os.Stat(path); err == nil {
				paths = append(paths, path)
			}
			continue // a file that is gone: the list it held is removed
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			s.note(Change{Kind: Problem, Err: fmt.Errorf("reading list directory: %w", err)})
			continue
		}
		// Whatever is named like a list is considered, so that a directory
		// or a special file named so is refused once, logged and counted
		// (regularfile.Open never opens one) rather than ignored. Hidden
		// files are not lists: sync's and editors' temporary files, and
		// the ..data directories of Kubernetes volumes.
		for _, e := range entries {
			name := filepath.Join(path, e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "."):
			case blocklist.IsList(e.Name()):
				paths = append(paths, name)
			case blocklist.IsDelta(e.Name()):
				deltas = append(deltas, name)
			case strings.HasSuffix(e.Name(), trust.HistorySuffix) && name != s.cfg.Trust && !s.strayPolicies[name]:
				// A policy is read from 'trust FILE', never from a lists
				// directory: one put here by mistake would be ignored.
				s.strayPolicies[name] = true
				s.note(Change{Kind: Problem, Err: fmt.Errorf("%s is a trust policy in a lists directory: it is not read from here; name it with 'trust %s' (or its directory)", name, name)})
			}
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), deltas
}

// stamp identifies a version of a list file and its signature without
// reading them, following symbolic links: a scan re-reads a list only when
// its stamp changed.
type stamp struct{ list, sig fileID }

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func stampOf(path string) stamp {
	return stamp{idOf(path), idOf(path + minisig.Suffix)}
}

func idOf(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.dev, id.ino = inode(fi)
	return id
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// wait reports, once, a file whose signature is not there yet.
func (s *Set) wait(path string) {
	if !s.waiting[path] {
		s.note(Change{Kind: Waiting, Path: path})
		s.waiting[path] = true
	}
}
