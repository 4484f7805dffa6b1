package regblock

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// current is a list in force.
type current struct {
	list    *blocklist.List
	path    string // the list file it was applied from
	applied time.Time
	took    time.Duration // reading, verifying and parsing it
	expired bool          // its expiry has been reported
}

// store holds the lists in force and decides which new versions to apply.
// Its methods run on one goroutine at a time (setup, then the watcher);
// queries see only the index it publishes, never the store itself.
type store struct {
	cfg     config
	inForce map[string]*current // by list name
	stamps  map[string]stamp    // by list file: the version last read
	waiting map[string]bool     // list files without a signature, reported once
	publish func(*blockindex.Index)
	emit    func(ledger.Event) // writes the enforcement ledger
	now     func() time.Time
}

func newStore(cfg config, publish func(*blockindex.Index), emit func(ledger.Event)) *store {
	return &store{
		cfg:     cfg,
		inForce: map[string]*current{},
		stamps:  map[string]stamp{},
		waiting: map[string]bool{},
		publish: publish,
		emit:    emit,
		now:     time.Now,
	}
}

// restore puts the copies kept in the state directory in force, so that a
// restart enforces the last good lists whatever the files now hold. A list
// whose file was deleted while the resolver was stopped is unloaded. Run it
// once, before the first scan.
func (s *store) restore() {
	if s.cfg.state == "" {
		return
	}
	lists, errs := s.cfg.state.load(s.cfg.keys, s.cfg.maxSize)
	for _, err := range errs {
		log.Errorf("Not restoring a saved list: %v", err)
	}
	for _, sv := range lists {
		l := sv.list
		if _, err := os.Stat(sv.source); errors.Is(err, os.ErrNotExist) {
			why := fmt.Sprintf("its file %s was removed while the resolver was stopped", sv.source)
			log.Warningf("List %q serial %d unloaded: %s", l.Name, l.Serial, why)
			if err := s.cfg.state.remove(l.Name); err != nil {
				log.Errorf("List %q: %v", l.Name, err)
			}
			e := s.event(ledger.ListRemoved, l)
			e.Reason, e.File = why, sv.source
			s.emit(e)
			continue
		}
		c := &current{list: l, path: sv.source, applied: sv.applied}
		s.inForce[l.Name] = c
		setListMetrics(c)
		e := s.event(ledger.ListApplied, l)
		e.File, e.Restored = sv.source, true
		s.emit(e)
		log.Infof("List %q serial %d restored from the state directory: %d blocking entries, in force since %s",
			l.Name, l.Serial, l.Blocking(), sv.applied.Format(time.RFC3339))
	}
	if len(lists) > 0 {
		s.build(nil)
	}
}

// scan reads the list files that changed since the last scan, applies the
// valid new versions, unloads the lists whose files are gone, and publishes
// a new index when anything in force changed.
func (s *store) scan() {
	present := map[string]bool{}
	var applied []*current
	for _, path := range s.listFiles() {
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
	for path := range s.stamps {
		if !present[path] {
			delete(s.stamps, path)
			delete(s.waiting, path)
		}
	}
	removed := false
	for name, c := range s.inForce {
		if !present[c.path] {
			s.unload(name, fmt.Sprintf("its file %s was removed", c.path))
			removed = true
		}
	}
	if len(applied) > 0 || removed {
		s.build(applied)
	}
	s.checkExpiry()
}

// build indexes the lists in force and publishes the index.
func (s *store) build(applied []*current) {
	start := time.Now()
	lists := make([]*blocklist.List, 0, len(s.inForce))
	for _, c := range s.inForce {
		lists = append(lists, c.list)
	}
	ix, err := blockindex.Build(lists)
	if err != nil {
		// consider keeps names unique and the count within bounds.
		panic(err)
	}
	s.publish(ix)
	took := time.Since(start)
	for _, c := range applied {
		l := c.list
		e := s.event(ledger.ListApplied, l)
		e.File = c.path
		s.emit(e)
		log.Infof("List %q serial %d applied from %s: %d blocking entries; read, verified and parsed in %v, index of all lists built and swapped in %v",
			l.Name, l.Serial, c.path, l.Blocking(), c.took.Round(time.Microsecond), took.Round(time.Microsecond))
	}
}

// consider reads the list file at path and puts it in force if it is valid
// and newer than the version in force. It returns the list applied, if any.
func (s *store) consider(path string) *current {
	start := time.Now()
	data, sig, err := blocklist.Read(path, s.cfg.maxSize)
	if errors.Is(err, blocklist.ErrNoSignature) && s.fromPath(path) == nil {
		// Not yet published whole: the signature may come next.
		if !s.waiting[path] {
			log.Infof("List file %s has no signature yet; waiting for %s", path, path+blocklist.SignatureSuffix)
			s.waiting[path] = true
		}
		return nil
	}
	delete(s.waiting, path)
	if err != nil {
		s.reject(path, "", err)
		return nil
	}
	if c := s.fromPath(path); c != nil && sha256.Sum256(data) == c.list.SHA256 {
		countReload(c.list.Name, resultUnchanged)
		return nil
	}
	l, err := blocklist.Open(path, data, sig, s.cfg.keys)
	if err != nil {
		s.reject(path, "", err)
		return nil
	}
	cur := s.inForce[l.Name]
	switch {
	case cur != nil && cur.list.SHA256 == l.SHA256:
		countReload(l.Name, resultUnchanged)
		return nil
	case cur != nil && l.Serial <= cur.list.Serial:
		s.reject(path, l.Name, &rollbackError{path: path, list: l, inForce: cur.list.Serial})
		return nil
	case cur == nil && len(s.inForce) >= blockindex.MaxLists:
		s.reject(path, l.Name, &blocklist.LoadError{Reason: blocklist.ReasonParseError,
			Err: fmt.Errorf("%s: list %q would be list number %d; at most %d are supported", path, l.Name, len(s.inForce)+1, blockindex.MaxLists)})
		return nil
	}

	// A file that now holds another list no longer provides the one it held.
	for name, old := range s.inForce {
		if old.path == path && name != l.Name {
			s.unload(name, fmt.Sprintf("its file %s now holds list %q", path, l.Name))
		}
	}
	c := &current{list: l, path: path, applied: s.now(), took: time.Since(start)}
	s.inForce[l.Name] = c
	if s.cfg.state != "" {
		if err := s.cfg.state.save(c, data, sig); err != nil {
			log.Errorf("List %q serial %d is in force but was not saved: %v", l.Name, l.Serial, err)
		}
	}
	setListMetrics(c)
	countReload(l.Name, resultApplied)
	return c
}

// rollbackError is a valid version that is not newer than the one in force.
type rollbackError struct {
	path    string
	list    *blocklist.List
	inForce uint64
}

func (e *rollbackError) Error() string {
	return fmt.Sprintf("%s: rollback: list %q serial %d is not newer than serial %d in force (a published serial never changes)",
		e.path, e.list.Name, e.list.Serial, e.inForce)
}

// rejectedSerial returns the serial of a rejected version, when it was read.
func rejectedSerial(err error) (uint64, bool) {
	var rb *rollbackError
	if errors.As(err, &rb) {
		return rb.list.Serial, true
	}
	return 0, false
}

// reject counts and logs a list version that was refused; the version in
// force, if any, stays.
func (s *store) reject(path, name string, err error) {
	if name == "" {
		if c := s.fromPath(path); c != nil {
			name = c.list.Name
		} else {
			name = strings.TrimSuffix(filepath.Base(path), ".list")
		}
	}
	result := string(blocklist.ReasonIOError)
	var le *blocklist.LoadError
	switch {
	case errors.As(err, new(*rollbackError)):
		result = resultRollback
	case errors.As(err, &le):
		result = string(le.Reason)
	}
	countReload(name, result)
	e := ledger.Event{Time: s.now().UTC(), Event: ledger.ListRejected, List: name, File: path, Reason: result, Error: err.Error()}
	if serial, ok := rejectedSerial(err); ok {
		e.Serial = &serial
	}
	if c := s.inForce[name]; c != nil {
		e.InForce = &c.list.Serial
	}
	s.emit(e)
	if c := s.inForce[name]; c != nil {
		log.Errorf("List %q rejected (%s): %v; serial %d from %s stays in force", name, result, err, c.list.Serial, c.path)
		return
	}
	log.Errorf("List %q rejected (%s): %v", name, result, err)
}

// unload takes list name out of force.
func (s *store) unload(name, why string) {
	c := s.inForce[name]
	delete(s.inForce, name)
	deleteListMetrics(name)
	if s.cfg.state != "" {
		if err := s.cfg.state.remove(name); err != nil {
			log.Errorf("List %q: %v", name, err)
		}
	}
	log.Warningf("List %q serial %d unloaded: %s", name, c.list.Serial, why)
	e := s.event(ledger.ListRemoved, c.list)
	e.Reason, e.File = why, c.path
	s.emit(e)
}

// event returns a ledger event of kind about list l.
func (s *store) event(kind string, l *blocklist.List) ledger.Event {
	serial, entries, issued := l.Serial, l.Blocking(), l.Issued
	e := ledger.Event{Time: s.now().UTC(), Event: kind, List: l.Name, Serial: &serial,
		SHA256: hex.EncodeToString(l.SHA256[:]), Issued: &issued, Entries: &entries}
	if !l.Expires.IsZero() {
		expires := l.Expires
		e.Expires = &expires
	}
	return e
}

// checkExpiry reports, once per version, each list in force that expired.
// An expired list stays enforced: blocking must not lapse because a re-signed
// list is late.
func (s *store) checkExpiry() {
	now := s.now()
	for _, c := range s.inForce {
		if !c.expired && c.list.Expired(now) {
			c.expired = true
			s.emit(s.event(ledger.ListExpired, c.list))
			log.Warningf("List %q serial %d expired at %s; it stays enforced until a newer serial arrives",
				c.list.Name, c.list.Serial, c.list.Expires.Format(time.RFC3339))
		}
	}
}

// fromPath returns the list in force that was applied from path, if any.
func (s *store) fromPath(path string) *current {
	for _, c := range s.inForce {
		if c.path == path {
			return c
		}
	}
	return nil
}

// listFiles returns the list files configured now: the files named, and the
// *.list files of the directories named.
func (s *store) listFiles() []string {
	var paths []string
	for _, path := range s.cfg.lists {
		if !isDir(path) {
			if _, err := os.Stat(path); err == nil {
				paths = append(paths, path)
			}
			continue // a file that is gone: the list it held is unloaded
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			log.Errorf("Reading list directory: %v", err)
			continue
		}
		for _, e := range entries {
			if blocklist.IsList(e.Name()) && !e.IsDir() {
				paths = append(paths, filepath.Join(path, e.Name()))
			}
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
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
	return stamp{idOf(path), idOf(path + blocklist.SignatureSuffix)}
}

func idOf(path string) fileID {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
