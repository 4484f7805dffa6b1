package listset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// stateDir keeps the last accepted copy of each list: NAME.list and
// NAME.list.minisig (NAME.rpz and NAME.rpz.minisig for an RPZ zone), byte
// for byte, and NAME.json saying where it came from
// and when it was applied. A restart enforces these copies until the files
// on disk offer a valid newer version, and refuses rollback below them.
type stateDir string

// saved is a list read back from the state directory.
type saved struct {
	list         *blocklist.List
	sig          []byte
	chainSigners []minisign.PublicKey
	source       string // the list file it was applied from
	applied      time.Time
	// deltas make the version in force from list, the whole copy.
	deltas []*admit.DeltaVersion
	serial uint64 // of the version in force, as its record says
	sha256 string
}

// record is the content of NAME.json.
type record struct {
	Name    string    `json:"name"`
	Serial  uint64    `json:"serial"`
	SHA256  string    `json:"sha256"`
	Source  string    `json:"source"`
	Applied time.Time `json:"applied"`
	File    string    `json:"file,omitempty"` // the copy's name in the directory; NAME.list when absent
	// Deltas name the copies, in the directory, of the deltas that made
	// the version in force from the whole copy, in order.
	Deltas []string `json:"deltas,omitempty"`
	// ChainSigners are the keys that signed the whole copy and the deltas
	// before the last (Current.chainSigners).
	ChainSigners []string `json:"chain_signers,omitempty"`
}

// save stores a copy of an accepted list, read again from c.Path (the list
// was not held whole) and checked against the digest of the version
// accepted. Each file is written to a temporary name and renamed into
// place, the record last, so that a crash leaves either the old copy or
// the new one.
func (d stateDir) save(c *Current) error {
	if len(c.deltas) > 0 {
		return d.saveDeltas(c)
	}
	l := c.List
	base := filepath.Join(string(d), l.Name)
	file, rec := recordOf(c)
	stale := d.deltasOf(l.Name)
	src, _, err := regularfile.Open(c.Path)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer src.Close()
	digest := sha256.New()
	copied, err := atomicfile.TempFrom(string(d), io.TeeReader(src, digest), 0o640)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(copied) // a no-op once renamed into place
	if !bytes.Equal(digest.Sum(nil), l.SHA256[:]) {
		return fmt.Errorf("state: %s changed while it was copied; the next version will be saved", c.Path)
	}
	// A copy in the other format is stale now.
	for _, ext := range []string{blocklist.ListSuffix, blocklist.RPZSuffix} {
		if old := base + ext; old != filepath.Join(string(d), file) {
			os.Remove(old)
			os.Remove(old + minisig.Suffix)
		}
	}
	if err := os.Rename(copied, filepath.Join(string(d), file)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{filepath.Join(string(d), file) + minisig.Suffix, c.sig}, {base + ".json", rec}} {
		if err := atomicfile.Write(f.path, f.data, 0o640); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	d.removeDeltas(stale, nil)
	return nil
}

// saveDeltas stores a version made by deltas: the whole copy they start
// from (saved when it was applied, or copied again from c.Path if that
// still holds it), then a copy of each delta not yet kept, then the
// record.
func (d stateDir) saveDeltas(c *Current) error {
	l := c.List
	whole := filepath.Join(string(d), l.Name+blocklist.ListSuffix)
	if sum, err := fileSHA256(whole); err != nil || sum != c.base.SHA256 {
		base := &Current{List: &blocklist.List{Header: blocklist.Header{Name: l.Name, Serial: c.base.Serial}, SHA256: c.base.SHA256}, Path: c.Path, Applied: c.Applied, sig: c.sig}
		if err := d.save(base); err != nil {
			return fmt.Errorf("state: the whole copy list %q serial %d starts from: %w", l.Name, c.base.Serial, err)
		}
	}
	stale := d.deltasOf(l.Name)
	var names []string
	for _, a := range c.deltas {
		name := fmt.Sprintf("%s.%d%s", l.Name, a.delta.From.Serial, blocklist.DeltaSuffix)
		names = append(names, name)
		path := filepath.Join(string(d), name)
		if a.data == nil {
			continue // saved with an earlier version of the chain, and dropped from memory
		}
		if kept, err := regularfile.Read(path, int64(len(a.data))+1); err == nil && bytes.Equal(kept, a.data) {
			if sig, err := minisig.Read(path); err == nil && bytes.Equal(sig, a.sig) {
				continue // kept when an earlier version of the chain was saved
			}
		}
		if err := atomicfile.Write(path, a.data, 0o640); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if err := atomicfile.Write(path+minisig.Suffix, a.sig, 0o640); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	_, rec := recordOf(c)
	if err := atomicfile.Write(filepath.Join(string(d), l.Name+".json"), rec, 0o640); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	d.removeDeltas(stale, names)
	return nil
}

// deltasOf returns the delta copies the record of list name names now.
func (d stateDir) deltasOf(name string) []string {
	data, err := regularfile.Read(filepath.Join(string(d), name+".json"), maxRecordSize)
	if err != nil {
		return nil
	}
	var rec record
	json.Unmarshal(data, &rec)
	return rec.Deltas
}

// removeDeltas removes the delta copies in stale that keep does not name.
func (d stateDir) removeDeltas(stale, keep []string) {
	for _, name := range stale {
		if !slices.Contains(keep, name) {
			path := filepath.Join(string(d), filepath.Base(name))
			os.Remove(path)
			os.Remove(path + minisig.Suffix)
		}
	}
}

// keysOf parses public keys kept as text, passing by any that do not parse.
func keysOf(texts []string) []minisign.PublicKey {
	var keys []minisign.PublicKey
	for _, t := range texts {
		var k minisign.PublicKey
		if k.UnmarshalText([]byte(t)) == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

func fileSHA256(path string) ([32]byte, error) {
	f, _, err := regularfile.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// maxRecordSize bounds a NAME.json record, which takes a few hundred bytes.
const maxRecordSize = 64 << 10

// recordOf returns the name of the copy of c in the directory, and its
// record.
func recordOf(c *Current) (file string, rec []byte) {
	l := c.List
	file = l.Name + blocklist.ListSuffix
	if blocklist.IsRPZ(c.Path) {
		file = l.Name + blocklist.RPZSuffix
	}
	var deltas, signers []string
	for _, a := range c.deltas {
		deltas = append(deltas, fmt.Sprintf("%s.%d%s", l.Name, a.delta.From.Serial, blocklist.DeltaSuffix))
	}
	for _, k := range c.chainSigners {
		signers = append(signers, k.String())
	}
	rec, err := json.Marshal(record{l.Name, l.Serial, hex.EncodeToString(l.SHA256[:]), c.Path, c.Applied.UTC(), file, deltas, signers})
	if err != nil {
		panic(err) // a record of strings, a number and a time always marshals
	}
	return file, rec
}

// setSource records that the copy of c now comes from c.Path, as after a
// rename of its file: the copy itself is the same.
func (d stateDir) setSource(c *Current) error {
	_, rec := recordOf(c)
	if err := atomicfile.Write(filepath.Join(string(d), c.List.Name+".json"), rec, 0o640); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// remove deletes the copy of list name.
func (d stateDir) remove(name string) error {
	d.removeDeltas(d.deltasOf(name), nil)
	base := filepath.Join(string(d), name)
	for _, p := range []string{base + ".json", base + ".list", base + ".list" + minisig.Suffix, base + ".rpz", base + ".rpz" + minisig.Suffix} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("state: %w", err)
		}
	}
	return nil
}

// load reads every saved list back, verifying it again against keys. A copy
// that no longer verifies (its key is no longer trusted, or it was altered)
// is skipped and reported in errs.
func (d stateDir) load(j admit.Judge, maxSize int64) (lists []saved, errs []error) {
	records, err := filepath.Glob(filepath.Join(string(d), "*.json"))
	if err != nil {
		return nil, []error{err}
	}
	for _, path := range records {
		data, err := regularfile.Read(path, maxRecordSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("state: %w", err))
			continue
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil {
			errs = append(errs, fmt.Errorf("state: %s: %v", path, err))
			continue
		}
		file := strings.TrimSuffix(path, ".json") + blocklist.ListSuffix
		if rec.File != "" {
			file = filepath.Join(string(d), filepath.Base(rec.File))
		}
		// The parts of a chain before its last delta are verified with
		// the keys that signed them; the last is judged by j.
		chainJudge, chainSigners := j, keysOf(rec.ChainSigners)
		if len(rec.Deltas) > 0 && len(chainSigners) > 0 {
			chainJudge = admit.ByKeys(chainSigners)
		}
		v, err := admit.Open(file, maxSize, chainJudge, nil)
		if err == nil && len(rec.Deltas) > 0 && hex.EncodeToString(v.List.SHA256[:]) == rec.SHA256 {
			// The whole file of the version made by the deltas, saved by
			// a run that stopped before its record: the copy is the
			// version, judged as one.
			rec.Deltas, chainSigners = nil, nil
			v, err = admit.Open(file, maxSize, j, nil)
		}
		var rejected *admit.Rejected
		if errors.As(err, &rejected) { // as before: judged after the copy was read
			errs = append(errs, err)
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("state: %w", err))
			continue
		}
		l := v.List
		if l.Name != rec.Name || l.Serial < rec.Serial && len(rec.Deltas) == 0 {
			errs = append(errs, fmt.Errorf("state: %s holds list %q serial %d, its record says %q serial %d", l.File, l.Name, l.Serial, rec.Name, rec.Serial))
			continue
		}
		sv := saved{list: l, sig: v.Sig, chainSigners: chainSigners, source: rec.Source, applied: rec.Applied, serial: rec.Serial, sha256: rec.SHA256}
		for i, name := range rec.Deltas {
			dj := chainJudge
			if i == len(rec.Deltas)-1 {
				dj = j
			}
			dv, err := admit.OpenDelta(filepath.Join(string(d), filepath.Base(name)), maxSize, dj)
			if err != nil {
				errs = append(errs, fmt.Errorf("state: %w", err))
				sv.list = nil
				break
			}
			sv.deltas = append(sv.deltas, dv)
		}
		if sv.list == nil {
			continue
		}
		lists = append(lists, sv)
	}
	return lists, errs
}

// marksFile holds the high-water mark of every list name ever accepted, as
// JSON. Its name cannot be a list's (they start with a letter or digit) and
// does not end in .json, where the records are.
const marksFile = ".high-water-marks"

// markRecord is a mark as marksFile keeps it.
type markRecord struct {
	Serial  uint64   `json:"serial"`
	SHA256  string   `json:"sha256"`
	Signers []string `json:"signers,omitempty"` // absent in state written before signers were kept
}

// loadMarks reads the high-water marks; none when the file is missing.
func (d stateDir) loadMarks() (map[string]*admit.Mark, error) {
	marks := map[string]*admit.Mark{}
	data, err := regularfile.Read(filepath.Join(string(d), marksFile), 64<<20)
	if errors.Is(err, os.ErrNotExist) {
		return marks, nil
	} else if err != nil {
		return marks, fmt.Errorf("state: %w", err)
	}
	var records map[string]markRecord
	if err := json.Unmarshal(data, &records); err != nil {
		return marks, fmt.Errorf("state: %s: %v", filepath.Join(string(d), marksFile), err)
	}
	for name, r := range records {
		m := &admit.Mark{Serial: r.Serial, Signers: r.Signers}
		if b, err := hex.DecodeString(r.SHA256); err == nil && len(b) == len(m.SHA256) {
			copy(m.SHA256[:], b)
		}
		marks[name] = m
	}
	return marks, nil
}

// saveMarks replaces the high-water marks.
func (d stateDir) saveMarks(marks map[string]*admit.Mark) error {
	records := make(map[string]markRecord, len(marks))
	for name, m := range marks {
		records[name] = markRecord{m.Serial, hex.EncodeToString(m.SHA256[:]), m.Signers}
	}
	data, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(string(d), marksFile), append(data, '\n'), 0o640); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// unsaved is what the state directory has yet to keep: the high-water
// marks, copies of versions in force, the policy in force. A version is
// safe across a restart only once its mark is on disk; until then it is
// retried (saveState), and Unsaved says how many things wait.
type unsaved struct {
	marks    bool
	copies   map[string]pendingCopy // by list name
	policy   *trust.Policy
	reported bool // the first failure of this run of failures was reported
}

// pendingCopy is a version in force to copy into the state directory,
// and the mark of its list on disk before it (none for a new list).
type pendingCopy struct {
	c    *Current
	mark *admit.Mark
}

func (u *unsaved) count() int {
	n := len(u.copies)
	if u.marks {
		n++
	}
	if u.policy != nil {
		n++
	}
	return n
}

// saveState writes what the state directory has yet to keep, and reports
// the first failure of a run of them (not each retry) and every change in
// how many things wait.
func (s *Set) saveState() {
	if s.cfg.State == "" {
		return
	}
	d := stateDir(s.cfg.State)
	var errs []error
	for name, p := range s.unsaved.copies {
		if s.inForce[name] != p.c {
			delete(s.unsaved.copies, name) // removed since (keep carries a replaced one's mark)
			continue
		}
		if err := d.save(p.c); err != nil {
			errs = append(errs, fmt.Errorf("list %q serial %d is in force but was not saved: %w", name, p.c.List.Serial, err))
		} else {
			delete(s.unsaved.copies, name)
			p.c.dropDeltaBytes() // the state directory has them now
		}
	}
	if s.unsaved.marks {
		// The mark of a version made by deltas waits for its copy: saved
		// alone, it would refuse at a restart the older copy the directory
		// holds, and the deltas beside the list would have no base to start
		// from: the list would be lost. (Its copy comes from memory, so
		// it is saved once there is room.) A version read whole raises its
		// mark at once: a restart refuses the older copy, and its file, if
		// still there, is read again.
		marks, held := maps.Clone(s.marks), false
		for name, p := range s.unsaved.copies {
			if len(p.c.deltas) == 0 {
				continue
			}
			held = true
			if p.mark == nil {
				delete(marks, name)
			} else {
				marks[name] = p.mark
			}
		}
		if err := d.saveMarks(marks); err != nil {
			errs = append(errs, fmt.Errorf("high-water marks not saved: %w", err))
		} else {
			s.unsaved.marks = held // saved again with the copies it waits for
		}
	}
	if p := s.unsaved.policy; p != nil && p != s.policy {
		s.unsaved.policy = nil
	} else if p != nil {
		if err := d.savePolicy(p.File, p); err != nil {
			errs = append(errs, fmt.Errorf("trust policy serial %d is in force but was not saved: %w", p.Serial, err))
		} else {
			s.unsaved.policy = nil
		}
	}
	if len(errs) > 0 && !s.unsaved.reported {
		s.unsaved.reported = true
		s.note(Change{Kind: Problem, Err: fmt.Errorf("state directory %s: %w; retrying every %v, not ready meanwhile", s.cfg.State, errors.Join(errs...), SaveRetry)})
	}
	n := s.unsaved.count()
	if n == 0 {
		s.unsaved.reported = false
	}
	if int32(n) != s.nUnsaved.Load() {
		s.nUnsaved.Store(int32(n))
		s.note(Change{Kind: Unsaved, N: n})
	}
}

// SaveRetry is how often what the state directory refused is tried again.
const SaveRetry = 2 * time.Second

// Unsaved returns how many things the state directory has yet to keep
// (see saveState); safe on any goroutine.
func (s *Set) Unsaved() int { return int(s.nUnsaved.Load()) }
