// Package receipts is the regulator's receiver of enforcement receipts
// (regblock receipts): it verifies each receipt against the ISPs' keys,
// appends it to an append-only file per resolver, and exports what each
// resolver says it enforces as Prometheus metrics.
package receipts

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// Results of a receipt, the result label of regblock_receipts_total.
const (
	Accepted     = "accepted"
	BadSignature = "bad_signature"
	UnknownKey   = "unknown_key"
	Malformed    = "malformed"
	LedgerShrunk = "ledger_shrunk" // stored: the resolver's ledger has fewer events than it said before
	Replayed     = "replayed"      // not stored: no later than a receipt already stored
	Future       = "future"        // not stored: dated more than MaxAhead after the receiver's clock
	TooMany      = "too_many"      // not stored: past a bound (regblock_receipts_bounds_hit_total says which)
)

// MaxAhead is how far after the receiver's clock a receipt may be dated: a
// receipt from the far future would make every later one a replay.
const MaxAhead = 5 * time.Minute

// Bounds on what one stolen ISP key can make the receiver keep: resolvers
// (files and series) in all and per key, list series per key (a receipt
// names at most receipt.MaxLists lists), bytes on disk per resolver and
// per key, and receipts stored per resolver (a bucket of storeBurst,
// refilled one every storeEvery; a resolver sends one a minute and one
// after each change, and repeats are not stored). docs/receipts.md gives
// the figures they allow.
const (
	MaxResolvers          = 100_000
	MaxResolversPerKey    = 10_000
	MaxListSeriesPerKey   = 100_000
	MaxBytesPerResolver   = 256 << 20
	MaxBytesPerKey        = 64 << 30
	storeBurst            = 20
	storeEvery            = 5 * time.Second
	boundResolvers        = "resolvers"
	boundResolversPerKey  = "resolvers_per_key"
	boundListSeriesPerKey = "list_series_per_key"
	boundResolverBytes    = "resolver_bytes"
	boundKeyBytes         = "key_bytes"
	boundRate             = "rate"
)

// unknown labels what comes from no resolver known yet, so that made-up
// names add no series; no resolver may be named so.
const unknown = receipt.UnknownResolver

// Config is what a Server needs.
type Config struct {
	Dir  string
	Keys []minisign.PublicKey
	// KeyNames names keys by ID (the file a key came from, such as the ISP's
	// name) for the resolver_info metric; a key without a name shows its ID.
	KeyNames map[uint64]string
	Log      *log.Logger
	Now      func() time.Time // time.Now when nil
	// KeepEvery is how often a receipt that says nothing new is stored;
	// Heartbeat when 0.
	KeepEvery time.Duration
	// PerKey bounds the resolvers one key may report for;
	// MaxResolversPerKey when 0. The other bounds likewise.
	PerKey           int
	ListSeriesPerKey int
	BytesPerResolver int64
	BytesPerKey      int64
}

// Server receives receipts on POST and serves metrics.
type Server struct {
	cfg Config
	reg *prometheus.Registry

	total   *prometheus.CounterVec
	serial  *prometheus.GaugeVec
	applied *prometheus.GaugeVec
	blocked *prometheus.GaugeVec
	started *prometheus.GaugeVec
	last    *prometheus.GaugeVec
	events  *prometheus.GaugeVec
	info    *prometheus.GaugeVec
	bounds  *prometheus.CounterVec
	damaged prometheus.Counter

	mu        sync.Mutex
	resolvers map[string]*resolver
	perKey    map[uint64]*keyUse
}

// keyUse is what the resolvers bound to one key hold; Server.mu guards it.
type keyUse struct {
	resolvers int
	series    int   // list series of its resolvers
	bytes     int64 // in its resolvers' files
}

// resolver is what the server keeps of one resolver: a few words, whatever
// the number of its receipts.
type resolver struct {
	mu     sync.Mutex // orders the appends to its file
	key    uint64     // the key bound to it by its first receipt
	time   time.Time  // of its last receipt taken
	events uint64
	lists  []string // names with series
	bytes  int64    // in its file
	// unreadable: its file could not be read at start; its receipts are
	// refused rather than bound afresh.
	unreadable bool
	gone       bool // unbound: its first receipt was not stored

	said   [sha256.Size]byte // what its last receipt stored says (lists and ledger)
	stored time.Time         // when that receipt was stored
	tokens float64           // receipts it may have stored now
	filled time.Time         // when tokens was last refilled
}

// mayStore takes a token from the resolver's bucket, if there is one.
func (res *resolver) mayStore(now time.Time) bool {
	res.tokens = min(storeBurst, res.tokens+now.Sub(res.filled).Seconds()/storeEvery.Seconds())
	res.filled = now
	if res.tokens < 1 {
		return false
	}
	res.tokens--
	return true
}

// Heartbeat is how often, by default, a receipt that says nothing new is
// stored all the same; in between, it only refreshes the metrics. A
// resolver sends one a minute: storing each would be 1 440 lines a day,
// most of them alike.
const Heartbeat = time.Hour

// says fingerprints what a receipt commits to, its time and name aside,
// and its blocked counts too: they change with every receipt, and the
// hourly one is enough to follow them (a restart, a new started, is news).
func says(r receipt.Receipt) [sha256.Size]byte {
	lists := slices.Clone(r.Lists)
	for i := range lists {
		lists[i].Blocked = 0
	}
	data, _ := json.Marshal(struct {
		Started time.Time
		Lists   []receipt.List
		Ledger  receipt.Ledger
	}{r.Started, lists, r.Ledger})
	return sha256.Sum256(data)
}

// New returns a server storing receipts in cfg.Dir, with the state of each
// resolver restored from its file.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeepEvery == 0 {
		cfg.KeepEvery = Heartbeat
	}
	if cfg.PerKey == 0 {
		cfg.PerKey = MaxResolversPerKey
	}
	if cfg.ListSeriesPerKey == 0 {
		cfg.ListSeriesPerKey = MaxListSeriesPerKey
	}
	if cfg.BytesPerResolver == 0 {
		cfg.BytesPerResolver = MaxBytesPerResolver
	}
	if cfg.BytesPerKey == 0 {
		cfg.BytesPerKey = MaxBytesPerKey
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: prometheus.NewRegistry(), resolvers: map[string]*resolver{}, perKey: map[uint64]*keyUse{}}
	s.total = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_receipts_total",
		Help: "Receipts received, by resolver and result."}, []string{"resolver", "result"})
	s.serial = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_list_serial",
		Help: "Serial of each list a resolver's last receipt says is in force."}, []string{"resolver", "list"})
	s.applied = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_list_applied_timestamp_seconds",
		Help: "When the resolver applied that serial, by its own clock."}, []string{"resolver", "list"})
	s.blocked = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_list_blocked",
		Help: "Queries each list blocked since the resolver started, as its last receipt says: it falls back at a restart, so take increase() of it."}, []string{"resolver", "list"})
	s.started = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_started_timestamp_seconds",
		Help: "When the resolver's process started, as its last receipt says (absent when older resolvers do not say)."}, []string{"resolver"})
	s.last = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_last_timestamp_seconds",
		Help: "When the last receipt of a resolver was stored, by the receiver's clock."}, []string{"resolver"})
	s.events = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_ledger_events",
		Help: "Ledger events the resolver's last receipt commits to."}, []string{"resolver"})
	s.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_resolver_info",
		Help: "1 for each resolver, labelled with the name of the key its receipts are bound to (the ISP's, by the key's file name)."}, []string{"resolver", "key"})
	s.bounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_receipts_bounds_hit_total",
		Help: "Receipts refused as too_many, by the bound they would have passed."}, []string{"bound"})
	s.damaged = prometheus.NewCounter(prometheus.CounterOpts{Name: "regblock_receipts_damaged_lines_total",
		Help: "Stored lines found damaged (torn, oversized or not a record) at start and set aside."})
	s.reg.MustRegister(s.total, s.serial, s.applied, s.blocked, s.started, s.last, s.events, s.info, s.bounds, s.damaged)
	for _, b := range []string{boundResolvers, boundResolversPerKey, boundListSeriesPerKey, boundResolverBytes, boundKeyBytes, boundRate} {
		s.bounds.WithLabelValues(b)
	}
	files, err := storeFiles(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		// Whatever a file holds, the receiver starts: one resolver's
		// damaged file must not stop the others' receipts. A file it
		// cannot read at all keeps its name: no key may take it.
		if err := s.restore(f); err != nil {
			cfg.Log.Printf("error: %s: %v; receipts for its resolver are refused until it can be read at a start", f, err)
			s.resolvers[strings.TrimSuffix(filepath.Base(f), ".jsonl")] = &resolver{unreadable: true}
		}
	}
	return s, nil
}

// use returns what the resolvers of key hold; s.mu is held.
func (s *Server) use(key uint64) *keyUse {
	u := s.perKey[key]
	if u == nil {
		u = &keyUse{}
		s.perKey[key] = u
	}
	return u
}

// Metrics serves the server's metrics.
func (s *Server) Metrics() http.Handler { return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}) }

// Gatherer gathers the receiver's metrics, for a handler serving others too.
func (s *Server) Gatherer() prometheus.Gatherer { return s.reg }

// restore reads a resolver's file: the key of its first record, and the
// receipt of its last. Damaged lines are counted and set aside first
// (repair), so that the file holds whole records only.
func (s *Server) restore(path string) error {
	name := strings.TrimSuffix(filepath.Base(path), ".jsonl")
	var first, last *Record
	var r receipt.Receipt
	damaged, err := scanRecords(path, func(rec Record, _ []byte) {
		var got receipt.Receipt
		if json.Unmarshal(rec.Bytes(), &got) != nil || got.Resolver != name {
			return
		}
		if first == nil {
			first = &rec
		}
		last, r = &rec, got
	})
	if err != nil {
		return err
	}
	if damaged > 0 {
		s.damaged.Add(float64(damaged))
		if err := repair(path, s.cfg.Now()); err != nil {
			s.cfg.Log.Printf("error: %s: %d damaged lines (torn, oversized or not a record), left in place: %v; the next records start on lines of their own", path, damaged, err)
		} else {
			s.cfg.Log.Printf("%s: %d damaged lines (torn, oversized or not a record) set aside; the file as it was is kept beside it as %s*", path, damaged, filepath.Base(path)+DamagedSuffix)
		}
	}
	if last == nil {
		return nil
	}
	var key uint64
	fmt.Sscanf(first.Key, "%X", &key)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	res := &resolver{key: key, said: says(r), stored: last.Received, tokens: storeBurst, filled: s.cfg.Now(), bytes: fi.Size()}
	if r.Time.After(last.Received.Add(MaxAhead)) {
		// Stored before future receipts were refused: taken as of when it
		// arrived, or it would make every later receipt a replay.
		r.Time = last.Received
	}
	s.resolvers[r.Resolver] = res
	u := s.use(key)
	u.resolvers++
	u.bytes += res.bytes
	u.series += len(r.Lists)
	s.update(res, r, last.Received)
	return nil
}

// ServeHTTP takes a receipt on POST: 204 when it is stored, 400 when it is
// malformed, 403 when its signature or key is refused, 409 when it is a
// replay, 500 when it could not be stored (the resolver tries again).
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a receipt", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, receipt.MaxSize))
	if err != nil {
		s.refuse(w, unknown, Malformed, http.StatusRequestEntityTooLarge, err)
		return
	}
	sig := req.Header.Get(receipt.SignatureHeader)
	r, keyID, err := receipt.Verify(body, sig, s.cfg.Keys)
	if err != nil {
		result, status := Malformed, http.StatusBadRequest
		switch {
		case errors.Is(err, receipt.ErrUnknownKey):
			result, status = UnknownKey, http.StatusForbidden
		case errors.Is(err, receipt.ErrBadSignature):
			result, status = BadSignature, http.StatusForbidden
		}
		// Not signed by the key it names: the name it claims is anyone's
		// word, so it is counted under "unknown", not against the resolver.
		s.refuse(w, unknown, result, status, err)
		return
	}

	now := s.cfg.Now().UTC()
	if r.Time.After(now.Add(MaxAhead)) {
		s.refuse(w, s.claimed(body), Future, http.StatusBadRequest, fmt.Errorf("resolver %s: receipt dated %s, more than %v after the receiver's clock (%s)", r.Resolver, r.Time.Format(time.RFC3339), MaxAhead, now.Format(time.RFC3339)))
		return
	}

	s.mu.Lock()
	res := s.resolvers[r.Resolver]
	if res == nil {
		bound := ""
		switch {
		case len(s.resolvers) >= MaxResolvers:
			bound = boundResolvers
		case s.use(keyID).resolvers >= s.cfg.PerKey:
			bound = boundResolversPerKey
		}
		if bound != "" {
			err := fmt.Errorf("resolver %s: %d resolvers known already, %d of them by key %016X", r.Resolver, len(s.resolvers), s.use(keyID).resolvers, keyID)
			s.mu.Unlock()
			s.tooMany(w, unknown, bound, http.StatusForbidden, err)
			return
		}
		res = &resolver{key: keyID, tokens: storeBurst, filled: now}
		s.resolvers[r.Resolver] = res
		s.use(keyID).resolvers++
	}
	s.mu.Unlock()

	res.mu.Lock()
	defer res.mu.Unlock()
	// A resolver is bound to its key by the first receipt stored, not by
	// one refused: else a refused receipt by another key would hold the
	// name until a restart.
	defer func() {
		if res.time.IsZero() && !res.unreadable {
			s.mu.Lock()
			if s.resolvers[r.Resolver] == res {
				delete(s.resolvers, r.Resolver)
				s.use(res.key).resolvers--
			}
			res.gone = true
			s.mu.Unlock()
		}
	}()
	switch {
	case res.gone:
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case res.unreadable:
		s.cfg.Log.Printf("error: a receipt of %s not taken: its file could not be read at start", r.Resolver)
		http.Error(w, "this resolver's receipts cannot be stored now", http.StatusInternalServerError)
		return
	case res.key != keyID:
		s.refuse(w, r.Resolver, UnknownKey, http.StatusForbidden, fmt.Errorf("resolver %s reports with key %016X, not %016X", r.Resolver, res.key, keyID))
		return
	case !res.time.IsZero() && !r.Time.After(res.time):
		s.refuse(w, r.Resolver, Replayed, http.StatusConflict, fmt.Errorf("resolver %s: receipt of %s, no later than the last one stored (%s)", r.Resolver, r.Time.Format(time.RFC3339Nano), res.time.Format(time.RFC3339Nano)))
		return
	}
	s.mu.Lock()
	u := s.use(keyID)
	moreSeries := len(r.Lists) - len(res.lists)
	tooManySeries := moreSeries > 0 && u.series+moreSeries > s.cfg.ListSeriesPerKey
	s.mu.Unlock()
	if tooManySeries {
		s.tooMany(w, r.Resolver, boundListSeriesPerKey, http.StatusForbidden, fmt.Errorf("resolver %s: its %d lists would pass the %d list series of key %016X", r.Resolver, len(r.Lists), s.cfg.ListSeriesPerKey, keyID))
		return
	}
	result := Accepted
	if !res.time.IsZero() && r.Ledger.Events < res.events {
		result = LedgerShrunk
	}
	if said := says(r); said != res.said || now.Sub(res.stored) >= s.cfg.KeepEvery || result != Accepted {
		if !res.mayStore(now) {
			s.tooMany(w, r.Resolver, boundRate, http.StatusTooManyRequests, fmt.Errorf("resolver %s: more receipts than %d at once and one every %v", r.Resolver, storeBurst, storeEvery))
			return
		}
		line, err := json.Marshal(Record{Received: now, Key: fmt.Sprintf("%016X", keyID), Result: result, Body: body, Signature: sig})
		if err != nil {
			http.Error(w, "could not store the receipt", http.StatusInternalServerError)
			return
		}
		size := int64(len(line) + 1)
		s.mu.Lock()
		bound := ""
		switch {
		case res.bytes+size > s.cfg.BytesPerResolver:
			bound = boundResolverBytes
		case u.bytes+size > s.cfg.BytesPerKey:
			bound = boundKeyBytes
		default:
			u.bytes += size // taken now, so that concurrent resolvers of one key stay within it
		}
		s.mu.Unlock()
		if bound != "" {
			s.tooMany(w, r.Resolver, bound, http.StatusInsufficientStorage, fmt.Errorf("resolver %s: storing %d more bytes would pass its bound of %d bytes a resolver, %d a key", r.Resolver, size, s.cfg.BytesPerResolver, s.cfg.BytesPerKey))
			return
		}
		if err := appendLine(filepath.Join(s.cfg.Dir, r.Resolver+".jsonl"), line); err != nil {
			s.mu.Lock()
			u.bytes -= size
			s.mu.Unlock()
			s.cfg.Log.Printf("error: storing a receipt of %s: %v", r.Resolver, err)
			http.Error(w, "could not store the receipt", http.StatusInternalServerError)
			return
		}
		res.bytes += size
		res.said, res.stored = said, now
	}
	s.mu.Lock()
	u.series += moreSeries
	s.mu.Unlock()
	if result == LedgerShrunk {
		s.cfg.Log.Printf("resolver %s: its ledger went from %d events to %d: lines were removed or the ledger replaced", r.Resolver, res.events, r.Ledger.Events)
	}
	s.total.WithLabelValues(r.Resolver, result).Inc()
	s.update(res, r, now)
	w.WriteHeader(http.StatusNoContent)
}

// claimed returns the resolver a refused receipt names, when it is one the
// server knows; else "unknown".
func (s *Server) claimed(body []byte) string {
	var r struct{ Resolver string }
	if json.Unmarshal(body, &r) != nil {
		return unknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolvers[r.Resolver] != nil {
		return r.Resolver
	}
	return unknown
}

// tooMany refuses a receipt that would pass bound.
func (s *Server) tooMany(w http.ResponseWriter, resolver, bound string, status int, err error) {
	s.bounds.WithLabelValues(bound).Inc()
	s.refuse(w, resolver, TooMany, status, err)
}

// refuse counts and logs a refused receipt and answers status. The error
// is cut to 300 bytes, in the log and the answer: it may quote what the
// sender chose.
func (s *Server) refuse(w http.ResponseWriter, resolver, result string, status int, err error) {
	s.total.WithLabelValues(resolver, result).Inc()
	msg := fmt.Sprintf("%.300q", err.Error())
	s.cfg.Log.Printf("receipt refused (%s): %s", result, msg)
	http.Error(w, msg, status)
}

// update sets the metrics of res from its newest receipt r, stored at now;
// res.mu is held (or res is not shared yet).
func (s *Server) update(res *resolver, r receipt.Receipt, now time.Time) {
	res.time, res.events = r.Time, r.Ledger.Events
	var names []string
	for _, l := range r.Lists {
		s.serial.WithLabelValues(r.Resolver, l.Name).Set(float64(l.Serial))
		s.applied.WithLabelValues(r.Resolver, l.Name).Set(float64(l.Applied.Unix()))
		s.blocked.WithLabelValues(r.Resolver, l.Name).Set(float64(l.Blocked))
		names = append(names, l.Name)
	}
	for _, old := range res.lists {
		if !slices.Contains(names, old) {
			s.serial.DeleteLabelValues(r.Resolver, old)
			s.applied.DeleteLabelValues(r.Resolver, old)
			s.blocked.DeleteLabelValues(r.Resolver, old)
		}
	}
	if !r.Started.IsZero() {
		s.started.WithLabelValues(r.Resolver).Set(float64(r.Started.Unix()))
	}
	res.lists = names
	s.last.WithLabelValues(r.Resolver).Set(float64(now.Unix()))
	s.events.WithLabelValues(r.Resolver).Set(float64(r.Ledger.Events))
	s.info.WithLabelValues(r.Resolver, s.keyName(res.key)).Set(1)
}

// keyName is how the metrics name a key.
func (s *Server) keyName(id uint64) string {
	if name := s.cfg.KeyNames[id]; name != "" {
		return name
	}
	return fmt.Sprintf("%016X", id)
}
