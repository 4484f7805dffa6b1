package report

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

// version is one published version of a list, from its whole file, from
// a delta that makes it, or both.
type version struct {
	serial uint64
	issued time.Time
	sha256 string // of the whole file, hex
	header blocklist.Header
	file   string // a file that holds or makes it, for messages

	// entries of the whole file, by entryKey, when it was published
	// whole; nil otherwise.
	entries map[string]int
	// count of entries (blocking or not), -1 until known.
	count int
	// delta from the version before, when one was published.
	delta *blocklist.Delta
}

// entryKey identifies an entry for counting changes: its pattern (a hashed
// list's is its digest), order reference and category.
func entryKey(e blocklist.Entry) string {
	return e.Pattern() + "\x00" + e.Order + "\x00" + e.Category
}

// orderOf returns the order reference of an entryKey.
func orderOf(key string) string {
	_, rest, _ := strings.Cut(key, "\x00")
	order, _, _ := strings.Cut(rest, "\x00")
	return order
}

// readPublished reads the publisher's directory: every signed *.list and
// *.delta in dir and in its NAME.d/ directories, with keys verified when
// keys are given. It returns each list's versions, oldest first, and a
// warning for each delta that does not start from the version before it.
func readPublished(dir string, keys []minisign.PublicKey, maxSize int64) (map[string][]*version, []string, error) {
	var files []string
	top, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range top {
		path := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 && strings.HasSuffix(e.Name(), ".d") {
			fi, err := os.Stat(path) // a NAME.d linked elsewhere is read too
			isDir = err == nil && fi.IsDir()
		}
		switch {
		case isDir && strings.HasSuffix(e.Name(), ".d"):
			sub, err := os.ReadDir(path)
			if err != nil {
				return nil, nil, err
			}
			for _, s := range sub {
				if blocklist.IsDelta(s.Name()) {
					files = append(files, filepath.Join(path, s.Name()))
				}
			}
		case blocklist.IsDelta(e.Name()) || blocklist.IsList(e.Name()) && !blocklist.IsRPZ(e.Name()):
			files = append(files, path)
		}
	}
	slices.Sort(files)

	byList := map[string]map[uint64]*version{}
	add := func(name string, v *version) error {
		if byList[name] == nil {
			byList[name] = map[uint64]*version{}
		}
		old := byList[name][v.serial]
		if old == nil {
			byList[name][v.serial] = v
			return nil
		}
		if old.sha256 != v.sha256 {
			return fmt.Errorf("%s and %s: two versions of list %q with serial %d and different contents", old.file, v.file, name, v.serial)
		}
		if v.entries != nil {
			old.entries, old.count = v.entries, v.count
		}
		if v.delta != nil {
			old.delta = v.delta
		}
		return nil
	}
	for _, path := range files {
		if _, err := os.Lstat(path + minisig.Suffix); err != nil {
			continue // not signed: not published
		}
		// Only regular files, read without waiting: a FIFO or a device
		// in the directory is an error that names it, not a hang.
		data, err := regularfile.Read(path, maxSize)
		if err != nil {
			return nil, nil, err
		}
		sig, err := minisig.Read(path)
		if err != nil {
			return nil, nil, err
		}
		if blocklist.IsDelta(path) {
			var d *blocklist.Delta
			if keys != nil {
				d, err = blocklist.OpenDelta(path, data, sig, keys)
			} else {
				d, err = blocklist.ParseDelta(path, data)
			}
			if err != nil {
				return nil, nil, err
			}
			v := &version{serial: d.Serial, issued: d.Issued, sha256: hex.EncodeToString(d.SHA256[:]), header: d.Header, file: path, count: -1, delta: d}
			if err := add(d.Name, v); err != nil {
				return nil, nil, err
			}
			continue
		}
		var l *blocklist.List
		if keys != nil {
			l, err = blocklist.Open(path, data, sig, keys)
		} else {
			l, err = blocklist.Parse(path, data)
		}
		if err != nil {
			return nil, nil, err
		}
		v := &version{serial: l.Serial, issued: l.Issued, sha256: hex.EncodeToString(l.SHA256[:]), header: l.Header, file: path,
			entries: make(map[string]int, len(l.Entries)), count: len(l.Entries)}
		for _, e := range l.Entries {
			v.entries[entryKey(e)]++
		}
		if err := add(l.Name, v); err != nil {
			return nil, nil, err
		}
	}

	out := map[string][]*version{}
	var warnings []string
	for name, m := range byList {
		var vs []*version
		for _, v := range m {
			vs = append(vs, v)
		}
		slices.SortFunc(vs, func(a, b *version) int { return cmp.Compare(a.serial, b.serial) })
		countEntries(vs)
		out[name] = vs
		for i, v := range vs {
			if v.delta != nil && (i == 0 || !follows(v, vs[i-1]) && (vs[i-1].entries == nil || v.entries == nil)) {
				warnings = append(warnings, fmt.Sprintf("%s: starts from serial %d, SHA-256 %x, which is not the version before it in %s: the entries it added and removed are not counted",
					v.delta.File, v.delta.From.Serial, v.delta.From.SHA256, dir))
			}
		}
	}
	slices.Sort(warnings)
	return out, warnings, nil
}

// follows reports whether v's delta starts from prev.
func follows(v, prev *version) bool {
	return v.delta != nil && v.delta.From.Serial == prev.serial && hex.EncodeToString(v.delta.From.SHA256[:]) == prev.sha256
}

// deltaFits says why v's delta cannot apply to prev, when prev is there
// whole and does not hold an entry the delta removes (a resolver would
// refuse it); "" when it fits, or cannot be checked.
func deltaFits(prev, v *version) string {
	if prev.entries == nil {
		return ""
	}
	left := map[string]int{}
	for _, e := range v.delta.Removed {
		k := entryKey(e)
		if left[k]++; left[k] > prev.entries[k] {
			return fmt.Sprintf("%s: removes %s, which serial %d does not hold: its counts are not taken", v.delta.File, e.Pattern(), prev.serial)
		}
	}
	return ""
}

// countEntries fills in the count of each version that was not published
// whole, following deltas forward and backward from those that were.
func countEntries(vs []*version) {
	for changed := true; changed; {
		changed = false
		for i := 1; i < len(vs); i++ {
			prev, v := vs[i-1], vs[i]
			if !follows(v, prev) || deltaFits(prev, v) != "" {
				continue
			}
			switch {
			case v.count < 0 && prev.count >= 0:
				v.count = prev.count + len(v.delta.Added) - len(v.delta.Removed)
				changed = true
			case prev.count < 0 && v.count >= 0:
				prev.count = v.count - len(v.delta.Added) + len(v.delta.Removed)
				changed = true
			}
		}
	}
}

// change returns the entries v added and removed against prev, the
// version before it that the directory holds, and the order references
// of those it added; ok is false when the directory cannot tell (no delta
// between them, and not both whole) or when a delta disagrees with the
// whole files, which warning then says.
func change(prev, v *version) (added, removed int, orders []string, ok bool, warning string) {
	if prev.entries != nil && v.entries != nil {
		for k, n := range v.entries {
			if more := n - prev.entries[k]; more > 0 {
				added += more
				orders = append(orders, orderOf(k))
			}
		}
		for k, n := range prev.entries {
			if fewer := n - v.entries[k]; fewer > 0 {
				removed += fewer
			}
		}
		if follows(v, prev) && (len(v.delta.Added) != added || len(v.delta.Removed) != removed) {
			warning = fmt.Sprintf("%s: %d added and %d removed, where the whole files differ by %d and %d: the whole files are counted",
				v.delta.File, len(v.delta.Added), len(v.delta.Removed), added, removed)
		}
		return added, removed, orders, true, warning
	}
	if !follows(v, prev) {
		return 0, 0, nil, false, ""
	}
	if why := deltaFits(prev, v); why != "" {
		return 0, 0, nil, false, why
	}
	for _, e := range v.delta.Added {
		orders = append(orders, e.Order)
	}
	return len(v.delta.Added), len(v.delta.Removed), orders, true, ""
}
