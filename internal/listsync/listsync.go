// Package listsync is the client of regblock sync: it fetches a signed
// list from a publisher into a lists directory, verifying it and refusing
// what the resolver would refuse before anything touches the directory.
package listsync

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

// Config says what to fetch from where, into which directory, and how.
type Config struct {
	Base       *url.URL // the lists are published under it; ends in /
	Name       string   // the list's name: NAME.list, or NAME.rpz for an RPZ zone
	History    bool     // instead of Name: a policy's history, Base/1.trust, 2.trust, ...
	Dir        string   // the lists directory to write into
	Keys       []minisign.PublicKey
	MaxSize    int64 // bytes
	Timeout    time.Duration
	Retries    int
	RetryWait  time.Duration // the first; doubles each time, with jitter
	Insecure   bool          // http:// allowed, for the base and redirects
	OtherHosts bool          // redirects to another host followed
	Log        *log.Logger
	// Policy, when set, judges the list as the resolver does under it:
	// Keys are then unused, and the list must meet the policy's line for
	// its name.
	Policy *trust.Policy
}

// Syncer fetches one list into a directory. Make one with New.
type Syncer struct {
	Config
	name   string // the list's name
	file   string // NAME.list, or NAME.rpz for an RPZ zone
	client *http.Client

	reg         *prometheus.Registry
	lastSuccess *prometheus.GaugeVec
	lastRun     *prometheus.GaugeVec // time and result of the last Run, for a oneshot's textfile
	lastRunOK   *prometheus.GaugeVec
	failures    *prometheus.CounterVec
	serial      *prometheus.GaugeVec
	deltas      *prometheus.CounterVec
}

// New returns a syncer for cfg.
func New(cfg Config) *Syncer {
	s := &Syncer{Config: cfg, name: cfg.Name, file: cfg.Name + blocklist.ListSuffix}
	switch {
	case blocklist.IsRPZ(cfg.Name):
		s.name, s.file = blocklist.TrimSuffix(cfg.Name), cfg.Name
	case IsPolicyName(cfg.Name):
		s.file = cfg.Name
	case cfg.History:
		s.name = historyName
	}
	s.client = &http.Client{Timeout: cfg.Timeout, CheckRedirect: s.checkRedirect}
	s.reg = s.newMetrics()
	return s
}

// validators are what a conditional GET sends back; kept beside the list
// so that a run from cron remembers them.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// SHA256 is the digest of the version they vouch for, the newest the
	// directory holds (the list's, or the last delta's): a file replaced in
	// the directory since is not vouched for by a 304.
	SHA256 string `json:"sha256,omitempty"`
	// Serial is the serial of the publisher's whole list they came with.
	Serial uint64 `json:"serial,omitempty"`
	// Checked is when the publisher last answered without them.
	Checked time.Time `json:"checked,omitzero"`
}

// revalidate is how often sync asks without validators all the same.
const revalidate = time.Hour

// validatorsOf returns the validators of a response that a later request
// may send back: a well-formed entity tag, and a date not in the future
// ("*" or a date in 2100 would make every later answer 304).
func validatorsOf(h http.Header) validators {
	return validators{ETag: h.Get("ETag"), LastModified: h.Get("Last-Modified"), Checked: time.Now().UTC()}.sane()
}

// sane returns v without what a later request must not send back: a tag
// that is not an entity tag, a date in the future; and without a Checked
// time in the future. The validators file lies in the lists directory,
// which others may write: it is read through this too.
func (v validators) sane() validators {
	if !validETag(v.ETag) {
		v.ETag = ""
	}
	if t, err := http.ParseTime(v.LastModified); err != nil || t.After(time.Now().Add(time.Minute)) {
		v.LastModified = ""
	}
	if v.Checked.After(time.Now().Add(time.Minute)) {
		v.Checked = time.Time{}
	}
	return v
}

// validETag reports whether tag is an entity tag: "...", or W/"...",
// with no quote inside.
func validETag(tag string) bool {
	tag = strings.TrimPrefix(tag, "W/")
	return len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' && !strings.Contains(tag[1:len(tag)-1], `"`)
}

// syncError is a failed sync: the reason is the failures metric's label.
type syncError struct {
	reason string
	err    error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// refusal is a file that arrived whole and was refused.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// errNotFound is a 404 from the publisher: for a history, the end.
var errNotFound = errors.New("404 Not Found")

// Metrics returns the registry of the syncer's metrics.
func (s *Syncer) Metrics() *prometheus.Registry { return s.reg }

func (s *Syncer) newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	s.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_last_success_timestamp_seconds",
		Help: "Time of the last sync that left the newest valid list in the directory."}, []string{"list"})
	s.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_sync_failures_total",
		Help: "Syncs that failed, by reason (fetch, http_status, redirect, bad_signature, parse_error, too_large, wrong_name, rollback, write, policy)."}, []string{"list", "reason"})
	s.serial = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_serial",
		Help: "Serial of the list last fetched and verified."}, []string{"list"})
	s.lastRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_last_run_timestamp_seconds",
		Help: "Time the last sync ended, whatever its result."}, []string{"list"})
	s.lastRunOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_last_run_success",
		Help: "1 when the last sync left the newest valid list in the directory, 0 when it failed."}, []string{"list"})
	s.deltas = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_sync_deltas_total",
		Help: "Deltas asked for, by result: written, missing (no 200 answer, or none in time: the whole list is fetched instead), too_large (the delta past what is left of a quarter of the whole list, or its signature past 64 KiB: the whole list too), or why one was refused (bad_signature, delta_base, rollback, ...)."}, []string{"list", "result"})
	reg.MustRegister(s.lastSuccess, s.lastRun, s.lastRunOK, s.failures, s.serial, s.deltas)
	return reg
}

// Run syncs once, retrying fetch failures with back-off.
func (s *Syncer) Run(ctx context.Context) error {
	err := s.run(ctx)
	s.lastRun.WithLabelValues(s.name).SetToCurrentTime()
	ok := 0.0
	if err == nil {
		ok = 1
	}
	s.lastRunOK.WithLabelValues(s.name).Set(ok)
	return err
}

// Failed records a run that could not start (its trust policy
// unreadable, reason "policy") as a failed run, for the alerts on syncs.
func (s *Syncer) Failed() {
	s.failures.WithLabelValues(s.name, "policy").Inc()
	s.lastRun.WithLabelValues(s.name).SetToCurrentTime()
	s.lastRunOK.WithLabelValues(s.name).Set(0)
}

func (s *Syncer) run(ctx context.Context) error {
	wait := s.RetryWait
	for attempt := 0; ; attempt++ {
		err := s.syncOnce(ctx)
		if err == nil {
			s.lastSuccess.WithLabelValues(s.name).SetToCurrentTime()
			return nil
		}
		var se *syncError
		reason := "fetch"
		if errors.As(err, &se) {
			reason = se.reason
		}
		s.failures.WithLabelValues(s.name, reason).Inc()
		if reason != "fetch" || attempt >= s.Retries {
			if attempt > 0 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return err
		}
		d := time.Duration(float64(wait) * (0.5 + rand.Float64())) // jitter: 50% to 150%
		s.Log.Printf("%v; retrying in %v", err, d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, time.Minute)
	}
}

func (s *Syncer) listPath() string       { return filepath.Join(s.Dir, s.file) }
func (s *Syncer) validatorsPath() string { return filepath.Join(s.Dir, "."+s.file+".sync.json") }

// syncOnce fetches the list, and its signature when the list changed,
// into temporary files in the directory, verifies them there, and renames
// them into place. The list is streamed to disk under the size limit and
// through the signature check, never held in memory.
func (s *Syncer) syncOnce(ctx context.Context) error {
	s.removeStaleTemps()
	if s.History {
		return s.syncHistory(ctx)
	}
	if IsPolicyName(s.Name) {
		return s.syncPolicy(ctx)
	}
	// The version in the directory, if it still verifies and is the list
	// named: only then is a conditional request sent, so that "not
	// modified" never vouches for a file that was altered meanwhile.
	h := s.head()
	var v validators
	if h != nil {
		if data, err := regularfile.Read(s.validatorsPath(), 4<<10); err == nil {
			json.Unmarshal(data, &v)
			v = v.sane()
		}
		if v.SHA256 != hex.EncodeToString(h.list.SHA256[:]) {
			v = validators{}
		}
		// Validators come from an unsigned answer: an hourly request
		// without them, and one whenever the list in the directory has
		// expired, bound how long a wrong one can hold sync back.
		if time.Since(v.Checked) > revalidate || h.list.Expired(time.Now()) {
			v.ETag, v.LastModified = "", ""
		}
	}
	listURL := s.Base.ResolveReference(&url.URL{Path: s.file}).String()
	var listTmp string
	var newV validators
	if h != nil && !blocklist.IsRPZ(s.file) {
		done, whole, wv, err := s.update(ctx, h, v)
		if err != nil || done {
			return err
		}
		listTmp, newV = whole, wv
	} else {
		tmp, tv, err := s.fetch(ctx, s.file, v, s.MaxSize)
		if err != nil {
			return err
		}
		if tmp == "" {
			s.Log.Printf("%s: not modified", s.name)
			return nil
		}
		listTmp, newV = tmp, tv
	}
	if listTmp == "" {
		tmp, tv, err := s.fetch(ctx, s.file, validators{}, s.MaxSize)
		if err != nil {
			return err
		}
		listTmp, newV = tmp, tv
	}
	defer removeTemp(listTmp) // once renamed into place, only its directory
	sigTmp, _, err := s.fetch(ctx, s.file+minisig.Suffix, validators{}, minisig.MaxSize)
	if err != nil {
		return err
	}
	defer removeTemp(sigTmp)
	sig, err := regularfile.Read(sigTmp, minisig.MaxSize)
	if err != nil {
		return &syncError{"write", err}
	}
	// Verified and parsed as it streams from the file; the entries are
	// not kept.
	fetched, err := admit.Verify(listTmp, sig, s.MaxSize, s.judge(), func(blocklist.Entry) {})
	if err != nil {
		return &syncError{string(result.Of(err)), fmt.Errorf("%s", strings.ReplaceAll(err.Error(), listTmp, listURL))}
	}
	l := fetched.List
	l.File = listURL
	newV.SHA256, newV.Serial = hex.EncodeToString(l.SHA256[:]), l.Serial
	s.serial.WithLabelValues(s.name).Set(float64(l.Serial))
	if l.Name != s.name {
		return &syncError{"wrong_name", fmt.Errorf("%s holds list %q, not %q: refusing it (a publisher must not replace one list with another)", listURL, l.Name, s.name)}
	}
	var old *blocklist.List
	var mark *admit.Mark
	if h != nil {
		old, mark = h.list, admit.MarkOf(h.list)
	}
	switch unchanged, err := admit.Decide(old, mark, l, time.Now()); {
	case unchanged && h.whole.SHA256 == l.SHA256:
		s.Log.Printf("%s: serial %d already in %s", s.name, l.Serial, s.Dir)
		return s.saveValidators(newV)
	case unchanged:
		// The whole file of the version deltas made: it replaces them.
	case errors.Is(err, admit.ErrRollback):
		return &syncError{string(result.Rollback), fmt.Errorf("%s: the server offers serial %d, not newer than serial %d in %s: refusing a rollback",
			s.name, l.Serial, old.Serial, s.Dir)}
	case err != nil:
		return &syncError{string(result.Of(err)), err}
	}
	// Both files are complete beside their final names before either is
	// renamed, and the two renames follow each other at once.
	if err := os.Rename(sigTmp, s.listPath()+minisig.Suffix); err != nil {
		return &syncError{"write", err}
	}
	if err := os.Rename(listTmp, s.listPath()); err != nil {
		return &syncError{"write", err}
	}
	s.Log.Printf("%s: serial %d (%d blocking entries) written to %s", s.name, l.Serial, l.Blocking(), s.listPath())
	s.pruneDeltas(l.Serial)
	return s.saveValidators(newV)
}

// IsPolicyName reports whether name, given to -name, is a trust policy's
// (NAME.trust) rather than a list's.
func IsPolicyName(name string) bool { return strings.HasSuffix(name, trust.HistorySuffix) }

// syncPolicy fetches a trust policy (NAME.trust and its signature) and
// writes both into the directory if the resolver would accept it: signed
// by the roots of the policy already there (itself accepted from the
// pinned keys, or nothing is written), or by the pinned keys when there is
// none; never a rollback.
func (s *Syncer) syncPolicy(ctx context.Context) error {
	var inForce *trust.Policy
	if _, err := os.Lstat(s.listPath()); err == nil {
		p, _, err := trust.Load(s.listPath(), nil, s.Keys)
		if err != nil {
			// Without it, a version signed by any pinned key would do,
			// though the policy here may have rotated those roots out.
			return &syncError{string(result.Of(err)), fmt.Errorf("the trust policy in %s is not accepted from the pinned keys (-p), so a new one cannot be judged against it: %w", s.Dir, err)}
		}
		inForce = p
	}
	p, unchanged, err := s.fetchPolicy(ctx, s.file, inForce)
	if err != nil {
		return err
	}
	defer p.drop()
	switch {
	case unchanged:
		s.Log.Printf("%s: serial %d already in %s", s.name, inForce.Serial, s.Dir)
		return nil
	}
	if n, nerr := strconv.ParseUint(strings.TrimSuffix(s.Name, trust.HistorySuffix), 10, 64); nerr == nil && n != p.Serial {
		// A history's N.trust must hold serial N, or the walk stops there.
		return &syncError{"wrong_name", fmt.Errorf("%s holds trust policy serial %d, not %d: refusing it", p.File, p.Serial, n)}
	}
	return s.install(p, s.file)
}

// historyName labels the metrics of a history's sync (list="trust-history").
const historyName = "trust-history"

// maxHistoryStep bounds the versions one run fetches, so that a publisher
// cannot keep a run going for ever.
const maxHistoryStep = 1000

// syncHistory mirrors a trust policy's history into the directory, as TUF
// clients fetch root versions: from the newest version there (the
// directory walked from the pinned keys), it fetches N+1.trust, N+2.trust,
// ... until the publisher has no next one (404), each accepted by the one
// before it, and writes each beside the others, where a resolver's
// 'trust DIR' walks them. With none in the directory, it starts at
// 1.trust, passing by versions the pinned keys do not accept (signed by
// roots since rotated) until one they do. A version refused stops the
// run; those before it stay written.
func (s *Syncer) syncHistory(ctx context.Context) error {
	inForce, _, err := trust.Walk(s.Dir, nil, s.Keys)
	if err != nil && !errors.Is(err, trust.ErrEmptyHistory) {
		// A version refused here (half copied, damaged) is fetched again
		// and written over: everything fetched is judged from the pinned
		// keys' chain, whatever the directory holds.
		from := "the first version"
		if inForce != nil {
			from = fmt.Sprintf("serial %d, the last version accepted", inForce.Serial)
		}
		s.Log.Printf("warning: %v; going on from %s", err, from)
	}
	next := uint64(1)
	if inForce != nil {
		next = inForce.Serial + 1
	}
	var skipped error // the first version the pinned keys refused, none accepted yet
	for range maxHistoryStep {
		name := strconv.FormatUint(next, 10) + trust.HistorySuffix
		p, _, err := s.fetchPolicy(ctx, name, inForce)
		switch {
		case errors.Is(err, errNotFound) && inForce == nil && skipped != nil:
			return skipped
		case errors.Is(err, errNotFound) && inForce == nil:
			return &syncError{"http_status", fmt.Errorf("no trust policy history published under %s: %w", s.Base, err)}
		case errors.Is(err, errNotFound):
			s.Log.Printf("%s: serial %d is the newest, in %s", s.name, inForce.Serial, s.Dir)
			s.serial.WithLabelValues(s.name).Set(float64(inForce.Serial))
			return nil
		case err != nil && inForce == nil:
			if !errors.As(err, new(refusal)) {
				return err
			}
			if skipped == nil {
				skipped = err
			}
			next++
			continue
		case err != nil:
			return err
		case p.Serial != next:
			p.drop()
			return &syncError{"wrong_name", fmt.Errorf("%s holds trust policy serial %d, not %d: refusing it", p.File, p.Serial, next)}
		}
		err = s.install(p, name)
		p.drop()
		if err != nil {
			return err
		}
		inForce = p.Policy
		next++
	}
	return &syncError{"too_large", fmt.Errorf("more than %d new trust policy versions under %s in one run", maxHistoryStep, s.Base)}
}

// fetchedPolicy is a policy fetched into temporary files and judged.
type fetchedPolicy struct {
	*trust.Policy
	tmp, sigTmp string // removed by drop unless installed
}

func (f fetchedPolicy) drop() { removeTemp(f.tmp); removeTemp(f.sigTmp) }

// fetchPolicy fetches name and its signature into temporary files and
// judges the policy as the resolver would against inForce (the pinned
// keys when nil); unchanged when it is inForce. The policy's File is its
// URL. Unless err, the caller drops what was fetched.
func (s *Syncer) fetchPolicy(ctx context.Context, name string, inForce *trust.Policy) (f fetchedPolicy, unchanged bool, err error) {
	defer func() {
		if err != nil {
			f.drop()
		}
	}()
	if f.tmp, _, err = s.fetch(ctx, name, validators{}, trust.MaxSize); err != nil {
		return f, false, err
	}
	if f.sigTmp, _, err = s.fetch(ctx, name+minisig.Suffix, validators{}, minisig.MaxSize); err != nil {
		return f, false, err
	}
	data, err := regularfile.Read(f.tmp, trust.MaxSize)
	if err != nil {
		return f, false, &syncError{"write", err}
	}
	sig, err := regularfile.Read(f.sigTmp, minisig.MaxSize)
	if err != nil {
		return f, false, &syncError{"write", err}
	}
	policyURL := s.Base.ResolveReference(&url.URL{Path: name}).String()
	if f.Policy, unchanged, err = trust.Open(policyURL, data, sig, inForce, s.Keys); err != nil {
		return f, false, &syncError{string(result.Of(err)), refusal{err}}
	}
	return f, unchanged, nil
}

// install renames a policy fetched into the directory as name: its
// signature first, so that a resolver watching the directory never reads
// the policy without it.
func (s *Syncer) install(f fetchedPolicy, name string) error {
	final := filepath.Join(s.Dir, name)
	if err := os.Rename(f.sigTmp, final+minisig.Suffix); err != nil {
		return &syncError{"write", err}
	}
	if err := os.Rename(f.tmp, final); err != nil {
		return &syncError{"write", err}
	}
	s.serial.WithLabelValues(s.name).Set(float64(f.Serial))
	s.Log.Printf("%s: trust policy serial %d written to %s", s.name, f.Serial, final)
	return nil
}

func (s *Syncer) saveValidators(v validators) error {
	data, _ := json.Marshal(v)
	if err := atomicfile.Write(s.validatorsPath(), data, 0o644); err != nil {
		return &syncError{"write", err}
	}
	return nil
}

// fetch GETs name under the base URL, conditionally when v is set, into
// a temporary file in the directory, of at most limit bytes, and returns
// its path, to be removed with its directory (removeTemp) unless renamed
// into place; "" for 304 Not Modified to a conditional request.
func (s *Syncer) fetch(ctx context.Context, name string, v validators, limit int64) (string, validators, error) {
	path, v, _, err := s.get(ctx, name, v, limit, 0)
	return path, v, err
}

// get is fetch, asking only for the first head bytes when head > 0:
// partial is then true when the server sent only those (206), and false
// when it sent the whole file.
func (s *Syncer) get(ctx context.Context, name string, v validators, limit, head int64) (file string, _ validators, partial bool, err error) {
	u := s.Base.ResolveReference(&url.URL{Path: name})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", v, false, err
	}
	req.Header.Set("User-Agent", "regblock-sync")
	if head > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", head-1))
	}
	conditional := v.ETag != "" || v.LastModified != ""
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	resp, err := s.client.Do(req)
	var refused *redirectError
	switch {
	case errors.As(err, &refused):
		return "", v, false, &syncError{"redirect", fmt.Errorf("GET %s: %v", u, refused)}
	case err != nil:
		return "", v, false, err // reason "fetch": retried
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return "", v, false, nil
	case resp.StatusCode == http.StatusPartialContent && head > 0:
		partial, limit = true, head
	case resp.StatusCode >= 500:
		return "", v, false, fmt.Errorf("GET %s: %s", u, resp.Status) // retried
	case resp.StatusCode == http.StatusNotFound:
		return "", v, false, &syncError{"http_status", fmt.Errorf("GET %s: %w", u, errNotFound)}
	case resp.StatusCode != http.StatusOK && !partial:
		return "", v, false, &syncError{"http_status", fmt.Errorf("GET %s: %s", u, resp.Status)}
	case resp.ContentLength > limit:
		return "", v, false, &syncError{"too_large", fmt.Errorf("GET %s: %d bytes, larger than %d", u, resp.ContentLength, limit)}
	}
	// The file has its final name, which says its format (and an RPZ
	// zone's default list name), in a directory of its own in DIR whose
	// name starts with a dot, so that the resolver passes it by.
	tmp, err := os.MkdirTemp(s.Dir, ".regblock-sync-*")
	if err != nil {
		return "", v, false, &syncError{"write", err}
	}
	f, err := os.Create(filepath.Join(tmp, path.Base(name)))
	if err != nil {
		os.RemoveAll(tmp)
		return "", v, false, &syncError{"write", err}
	}
	n, err := io.Copy(diskWriter{f}, io.LimitReader(resp.Body, limit+1))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var disk *diskError
	switch {
	case errors.As(err, &disk):
		os.RemoveAll(tmp)
		return "", v, false, &syncError{"write", disk.error} // a full disk: not retried
	case err != nil:
		os.RemoveAll(tmp)
		return "", v, false, fmt.Errorf("GET %s: %w", u, err) // retried
	case n > limit && !partial:
		os.RemoveAll(tmp)
		return "", v, false, &syncError{"too_large", fmt.Errorf("GET %s: larger than %d bytes", u, limit)}
	}
	return f.Name(), validatorsOf(resp.Header), partial, nil
}

// diskWriter tells a failed write (a full disk, a quota) from a failed
// read of the response.
type diskWriter struct{ f *os.File }

type diskError struct{ error }

func (w diskWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = &diskError{err}
	}
	return n, err
}

// onDisk reads the list in the directory, verified as it streams through
// the parser, its entries not kept: only its header and digest count here.
func (s *Syncer) onDisk(add func(blocklist.Entry)) (*blocklist.List, error) {
	v, err := admit.Open(s.listPath(), s.MaxSize, s.judge(), add)
	if err != nil {
		return nil, err
	}
	return v.List, nil
}

// judge returns how lists are judged: by the policy, or by the keys.
func (s *Syncer) judge() admit.Judge {
	if s.Policy != nil {
		return admit.ByPolicy(s.Policy)
	}
	return admit.ByKeys(s.Keys)
}

// staleTemp is how long a temporary directory of sync's must have been
// left alone before a run takes it for a dead run's and removes it.
const staleTemp = time.Hour

// removeStaleTemps removes what runs that died (killed, out of memory)
// left in the directory: temporary directories nothing has written to
// for staleTemp. A run in progress, of this list or another synced into
// the same directory, writes to its own as it downloads.
func (s *Syncer) removeStaleTemps() {
	dirs, _ := filepath.Glob(filepath.Join(s.Dir, ".regblock-sync-*"))
	for _, dir := range dirs {
		newest := time.Time{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		if time.Since(newest) > staleTemp {
			os.RemoveAll(dir)
		}
	}
}

// removeTemp removes a file fetch made, and its directory.
func removeTemp(path string) {
	if dir := filepath.Dir(path); path != "" && strings.HasPrefix(filepath.Base(dir), ".regblock-sync-") {
		os.RemoveAll(dir)
	}
}

// redirectError is a redirect sync does not follow.
type redirectError struct{ to, why string }

func (e *redirectError) Error() string { return fmt.Sprintf("redirected to %s, %s", e.to, e.why) }

// checkRedirect follows a redirect only to https (or to http with
// -insecure-http), only on the base URL's host unless -allow-redirect-host,
// and at most 5 times.
func (s *Syncer) checkRedirect(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= 5:
		return &redirectError{req.URL.String(), "after 5 redirects"}
	case req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && s.Insecure):
		return &redirectError{req.URL.String(), "which is not https"}
	case !strings.EqualFold(req.URL.Host, s.Base.Host) && !s.OtherHosts:
		return &redirectError{req.URL.String(), "another host than " + s.Base.Host + " (-allow-redirect-host follows it)"}
	}
	return nil
}
