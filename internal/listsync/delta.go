package listsync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
)

// A publisher serves BASE/NAME.list, always the newest whole version, and
// BASE/NAME.d/SERIAL.delta, the delta from serial SERIAL: immutable URLs.
// sync asks for the whole list's header only, conditionally, to learn the
// newest serial (an unchanged list costs one small request that any cache
// answers), then for each delta from the version the directory holds until
// it reaches that serial, and places each as DIR/NAME.SERIAL.delta for the
// resolver. A delta missing or refused, or a directory whose deltas add up
// to a quarter of the whole list, brings the whole list instead, which
// replaces the deltas.

// headerBytes is how much of the whole list the first request asks for:
// its header, which says its serial, fits many times over. (A list whose
// header runs past it is fetched whole each time it changes.)
const headerBytes = 8 << 10

// maxDeltaSteps bounds the deltas one run fetches; a resolver further
// behind than that takes the whole list.
const maxDeltaSteps = 1000

// head is what the lists directory holds of the list: NAME.list, and the
// deltas beside it that chain from it, each verified.
type head struct {
	whole      *blocklist.List // NAME.list's version
	list       *blocklist.List // the newest: whole's, or the last delta's
	sum        blockindex.Sum  // of list's entries
	size       int64           // of NAME.list
	deltaBytes int64           // of the deltas
}

// budget is how many bytes of deltas the directory may still take before
// they add up to a quarter of the whole list: past that, the whole list
// replaces them.
func (h *head) budget() int64 { return h.size/4 - h.deltaBytes }

// head returns what the directory holds of the list, or nil when it holds
// no valid NAME.list of the list named.
func (s *Syncer) head() *head {
	var sum blockindex.Sum
	o, err := s.onDisk(func(e blocklist.Entry) { sum.Add(e) })
	if err != nil || o.Name != s.name {
		return nil
	}
	h := &head{whole: o, list: o, sum: sum}
	if fi, err := os.Stat(s.listPath()); err == nil {
		h.size = fi.Size()
	}
	if blocklist.IsRPZ(s.file) {
		return h
	}
	for range maxDeltaSteps {
		v, err := admit.OpenDelta(s.deltaPath(h.list.Serial), s.MaxSize, s.judge())
		if err != nil || !follows(v.Delta, h.list) {
			break
		}
		next := h.sum
		if !next.Apply(v.Delta) {
			break // the resolver refuses it too: fetched again, it brings the whole list
		}
		h.list, h.sum, h.deltaBytes = v.Delta.List, next, h.deltaBytes+int64(len(v.Data))
	}
	return h
}

// follows reports whether delta d starts from version l.
func follows(d *blocklist.Delta, l *blocklist.List) bool {
	return d.Name == l.Name && d.From.Serial == l.Serial && d.From.SHA256 == l.SHA256
}

// deltaPath is where the delta from serial from goes in the directory.
func (s *Syncer) deltaPath(from uint64) string {
	return filepath.Join(s.Dir, fmt.Sprintf("%s.%d%s", s.name, from, blocklist.DeltaSuffix))
}

// update brings the directory from h to the publisher's newest version by
// deltas when it can, and reports done when the directory is then up to
// date. Otherwise the whole list is to be fetched; whole is its file when
// the publisher already sent it whole (it does not serve ranges), with
// its validators.
func (s *Syncer) update(ctx context.Context, h *head, v validators) (done bool, whole string, wv validators, err error) {
	tmp, pv, partial, err := s.get(ctx, s.file, v, s.MaxSize, headerBytes)
	switch {
	case err != nil:
		return false, "", pv, err
	case tmp == "": // 304: the publisher's list is the one v came with
		s.Log.Printf("%s: not modified", s.name)
		return true, "", pv, nil
	case !partial:
		s.Log.Printf("%s: the server sent the whole of %s to a range request for its header; taking it, without deltas", s.name, s.file)
		return false, tmp, pv, nil
	}
	target, ok := headerSerial(tmp)
	removeTemp(tmp)
	if !ok {
		s.Log.Printf("%s: the first %d bytes of %s name no serial; fetching it whole", s.name, headerBytes, s.file)
		return false, "", validators{}, nil
	}
	save := func() error {
		pv.SHA256, pv.Serial = fmt.Sprintf("%x", h.list.SHA256), target
		return s.saveValidators(pv)
	}
	switch {
	case target < h.list.Serial:
		// A cache behind the publisher, or a rollback: nothing to fetch.
		return false, "", pv, &syncError{string(result.Rollback), fmt.Errorf("%s: the server offers serial %d, not newer than serial %d in %s: refusing a rollback",
			s.name, target, h.list.Serial, s.Dir)}
	case h.budget() <= 0:
		s.Log.Printf("%s: the deltas in %s add up to %d bytes, a quarter of the whole list's %d or more; fetching it whole", s.name, s.Dir, h.deltaBytes, h.size)
	case target == h.list.Serial:
		s.Log.Printf("%s: serial %d already in %s", s.name, target, s.Dir)
		return true, "", pv, save()
	case target > h.list.Serial:
		err := s.followDeltas(ctx, h, target)
		if err == nil {
			return true, "", pv, save()
		}
		var se *syncError
		if errors.As(err, &se) && se.reason == "write" {
			return false, "", pv, err
		}
		s.Log.Printf("%s: %v; fetching the whole list", s.name, err)
	}
	return false, "", validators{}, nil
}

// followDeltas fetches, checks and places the deltas from h.list up to
// serial target, advancing h.list; an error says why it stopped short.
// The deltas of one run, like those in the directory, stay under a
// quarter of the whole list: each is fetched with what is left of that
// as its limit, and verified as a stream before it is read whole.
func (s *Syncer) followDeltas(ctx context.Context, h *head, target uint64) error {
	missing := func(what string, err error) error {
		var se *syncError
		switch {
		case errors.As(err, &se) && se.reason == "too_large": // served, but past its limit
			s.deltas.WithLabelValues(s.name, "too_large").Inc()
		case se == nil || se.reason != "write":
			s.deltas.WithLabelValues(s.name, "missing").Inc()
		}
		return fmt.Errorf("%s from serial %d: %w", what, h.list.Serial, err)
	}
	for step := 0; h.list.Serial < target; step++ {
		budget := min(h.budget(), s.MaxSize)
		switch {
		case step == maxDeltaSteps:
			return fmt.Errorf("%d deltas fetched and serial %d not reached", step, target)
		case budget <= 0:
			return fmt.Errorf("the deltas add up to a quarter of the whole list at serial %d", h.list.Serial)
		}
		name := fmt.Sprintf("%s.d/%d%s", s.name, h.list.Serial, blocklist.DeltaSuffix)
		u := s.Base.ResolveReference(&url.URL{Path: name}).String()
		tmp, _, err := s.fetch(ctx, name, validators{}, budget)
		if err != nil {
			return missing("the delta", err)
		}
		defer removeTemp(tmp)
		sigTmp, _, err := s.fetch(ctx, name+minisig.Suffix, validators{}, minisig.MaxSize)
		if err != nil {
			return missing("the signature of the delta", err)
		}
		defer removeTemp(sigTmp)
		sig, err := regularfile.Read(sigTmp, minisig.MaxSize)
		if err != nil {
			return &syncError{"write", err}
		}
		if err := blocklist.CheckSigned(tmp, budget, sig, s.judge().Keys()); err != nil {
			s.deltas.WithLabelValues(s.name, string(result.Of(err))).Inc()
			return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), tmp, u))
		}
		data, err := regularfile.Read(tmp, budget)
		if err != nil {
			return &syncError{"write", err}
		}
		d, err := s.checkDelta(u, data, sig, h)
		if err != nil {
			s.deltas.WithLabelValues(s.name, string(result.Of(err))).Inc()
			return err
		}
		// As for the whole list: the signature first, so that the
		// resolver never reads the delta without it.
		final := s.deltaPath(h.list.Serial)
		if err := os.Rename(sigTmp, final+minisig.Suffix); err != nil {
			return &syncError{"write", err}
		}
		if err := os.Rename(tmp, final); err != nil {
			return &syncError{"write", err}
		}
		s.Log.Printf("%s: the delta from serial %d to %d (%d added, %d removed) written to %s", s.name, d.From.Serial, d.Serial, len(d.Added), len(d.Removed), final)
		s.deltas.WithLabelValues(s.name, "written").Inc()
		s.serial.WithLabelValues(s.name).Set(float64(d.Serial))
		h.list, h.deltaBytes = d.List, h.deltaBytes+int64(len(data))
	}
	return nil
}

// checkDelta verifies a delta fetched from u and checks that the resolver
// would apply it to the version h holds, h's checksum then following it.
func (s *Syncer) checkDelta(u string, data, sig []byte, h *head) (*blocklist.Delta, error) {
	from := h.list
	v, err := admit.VerifyDelta(u, data, sig, s.judge())
	if err != nil {
		return nil, err
	}
	d := v.Delta
	if string(d.Salt) != string(from.Salt) {
		return nil, result.Errorf(result.DeltaMismatch, "%s: the delta's list is hashed under another salt than serial %d in %s", u, from.Serial, s.Dir)
	}
	if !follows(d, from) {
		return nil, result.Errorf(result.DeltaBase, "%s: the delta starts from list %q serial %d (SHA-256 %x), not from serial %d (SHA-256 %x) in %s",
			u, d.Name, d.From.Serial, d.From.SHA256, from.Serial, from.SHA256, s.Dir)
	}
	if _, err := admit.Decide(from, admit.MarkOf(from), d.List, time.Now()); err != nil {
		return nil, err
	}
	next := h.sum
	if !next.Apply(d) {
		return nil, result.Errorf(result.DeltaMismatch, "%s: the entries after applying it do not have the checksum its digest header says", u)
	}
	h.sum = next
	return d, nil
}

// pruneDeltas removes the deltas in the directory that start from a serial
// below serial, which the whole list there replaces.
func (s *Syncer) pruneDeltas(serial uint64) {
	paths, _ := filepath.Glob(filepath.Join(s.Dir, s.name+".*"+blocklist.DeltaSuffix))
	for _, p := range paths {
		from, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), s.name+"."), blocklist.DeltaSuffix), 10, 64)
		if err == nil && from < serial {
			os.Remove(p)
			os.Remove(p + minisig.Suffix)
		}
	}
}

// headerSerial reads the serial from the header at the start of a list
// file (cut anywhere): a hint of which version the publisher's whole list
// is, checked when the version arrives.
func headerSerial(path string) (uint64, bool) {
	data, err := regularfile.Read(path, headerBytes+1)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			break // the header is over
		}
		header, ok := strings.CutPrefix(line, "#!")
		key, value, found := strings.Cut(header, ":")
		if ok && found && strings.EqualFold(strings.TrimSpace(key), "serial") {
			n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
