// Package receipts is the regulator's receiver of enforcement receipts
// (regblock receipts): it verifies each receipt against the ISPs' keys,
// appends it to an append-only file per resolver, and exports what each
// resolver says it enforces as Prometheus metrics.
package receipts

import (
	"bufio"
	"bytes"
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
	TooMany      = "too_many"      // not stored: past a key's resolvers or a resolver's rate
)

// Bounds on what one stolen ISP key can make the receiver keep: resolvers
// (files and series) in all and per key, and receipts stored per resolver
// (a bucket of storeBurst, refilled one every storeEvery; a resolver sends
// one a minute and one after each change, and repeats are not stored).
const (
	MaxResolvers       = 100_000
	MaxResolversPerKey = 10_000
	storeBurst         = 20
	storeEvery         = 5 * time.Second
)

// unknown labels what comes from no resolver known yet, so that made-up
// names add no series.
const unknown = "unknown"

// Record is one line of a resolver's file: the receipt as received, with
// its signature, so that anyone holding the ISP's key can check it again.
type Record struct {
	Received  time.Time       `json:"received"`
	Key       string          `json:"key"` // ID of the key that signed it, hex
	Result    string          `json:"result"`
	Receipt   json.RawMessage `json:"receipt"`
	Signature string          `json:"signature"` // the receipt.SignatureHeader value
}

// Config is what a Server needs.
type Config struct {
	Dir  string
	Keys []minisign.PublicKey
	// KeyNames names keys by ID (the file a key came from, such as the ISP's
	// name) for the resolver_info metric; a key without a name shows its ID.
	KeyNames map[uint64]string
	Log      *log.Logger
	Now      func() time.Time // time.Now when nil
	// PerKey bounds the resolvers one key may report for;
	// MaxResolversPerKey when 0.
	PerKey int
}

// Server receives receipts on POST and serves metrics.
type Server struct {
	cfg Config
	reg *prometheus.Registry

	total   *prometheus.CounterVec
	serial  *prometheus.GaugeVec
	applied *prometheus.GaugeVec
	last    *prometheus.GaugeVec
	events  *prometheus.GaugeVec
	info    *prometheus.GaugeVec

	mu        sync.Mutex
	resolvers map[string]*resolver
	perKey    map[uint64]int // resolvers bound to each key
}

// resolver is what the server keeps of one resolver: a few words, whatever
// the number of its receipts.
type resolver struct {
	mu     sync.Mutex // orders the appends to its file
	key    uint64     // the key bound to it by its first receipt
	time   time.Time  // of its last receipt taken
	events uint64
	lists  []string // names with series

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

// heartbeat is how often a receipt that says nothing new is stored all the
// same; in between, it only refreshes the metrics. A resolver sends one a
// minute: storing each would be 1 440 lines a day, most of them alike.
const heartbeat = time.Hour

// says fingerprints what a receipt commits to, its time and name aside.
func says(r receipt.Receipt) [sha256.Size]byte {
	data, _ := json.Marshal(struct {
		Lists  []receipt.List
		Ledger receipt.Ledger
	}{r.Lists, r.Ledger})
	return sha256.Sum256(data)
}

// New returns a server storing receipts in cfg.Dir, with the state of each
// resolver restored from its file.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PerKey == 0 {
		cfg.PerKey = MaxResolversPerKey
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: prometheus.NewRegistry(), resolvers: map[string]*resolver{}, perKey: map[uint64]int{}}
	s.total = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_receipts_total",
		Help: "Receipts received, by resolver and result."}, []string{"resolver", "result"})
	s.serial = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_list_serial",
		Help: "Serial of each list a resolver's last receipt says is in force."}, []string{"resolver", "list"})
	s.applied = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_list_applied_timestamp_seconds",
		Help: "When the resolver applied that serial, by its own clock."}, []string{"resolver", "list"})
	s.last = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_last_timestamp_seconds",
		Help: "When the last receipt of a resolver was stored, by the receiver's clock."}, []string{"resolver"})
	s.events = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_ledger_events",
		Help: "Ledger events the resolver's last receipt commits to."}, []string{"resolver"})
	s.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_receipts_resolver_info",
		Help: "1 for each resolver, labelled with the name of the key its receipts are bound to (the ISP's, by the key's file name)."}, []string{"resolver", "key"})
	s.reg.MustRegister(s.total, s.serial, s.applied, s.last, s.events, s.info)
	files, err := filepath.Glob(filepath.Join(cfg.Dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := s.restore(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Metrics serves the server's metrics.
func (s *Server) Metrics() http.Handler { return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}) }

// restore reads a resolver's file: the key of its first record, and the
// receipt of its last.
func (s *Server) restore(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var first, last Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 2*receipt.MaxSize)
	n := 0
	for sc.Scan() {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("%s:%d: %v", path, n+1, err)
		}
		if n == 0 {
			first = rec
		}
		last, n = rec, n+1
	}
	if err := sc.Err(); err != nil || n == 0 {
		return err
	}
	var r receipt.Receipt
	if err := json.Unmarshal(last.Receipt, &r); err != nil {
		return fmt.Errorf("%s: last record: %v", path, err)
	}
	var key uint64
	fmt.Sscanf(first.Key, "%X", &key)
	res := &resolver{key: key, said: says(r), stored: last.Received, tokens: storeBurst, filled: s.cfg.Now()}
	s.resolvers[r.Resolver] = res
	s.perKey[key]++
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
		s.refuse(w, s.claimed(body), result, status, err)
		return
	}

	s.mu.Lock()
	res := s.resolvers[r.Resolver]
	if res == nil && (len(s.resolvers) >= MaxResolvers || s.perKey[keyID] >= s.cfg.PerKey) {
		s.mu.Unlock()
		s.refuse(w, unknown, TooMany, http.StatusForbidden, fmt.Errorf("resolver %s: %d resolvers known already, %d of them by key %016X", r.Resolver, len(s.resolvers), s.perKey[keyID], keyID))
		return
	}
	if res == nil {
		res = &resolver{key: keyID, tokens: storeBurst, filled: s.cfg.Now()}
		s.resolvers[r.Resolver] = res
		s.perKey[keyID]++
	}
	s.mu.Unlock()

	res.mu.Lock()
	defer res.mu.Unlock()
	switch {
	case res.key != keyID:
		s.refuse(w, r.Resolver, UnknownKey, http.StatusForbidden, fmt.Errorf("resolver %s reports with key %016X, not %016X", r.Resolver, res.key, keyID))
		return
	case !res.time.IsZero() && !r.Time.After(res.time):
		s.refuse(w, r.Resolver, Replayed, http.StatusConflict, fmt.Errorf("resolver %s: receipt of %s, no later than the last one stored (%s)", r.Resolver, r.Time.Format(time.RFC3339Nano), res.time.Format(time.RFC3339Nano)))
		return
	}
	result := Accepted
	if !res.time.IsZero() && r.Ledger.Events < res.events {
		result = LedgerShrunk
	}
	now := s.cfg.Now().UTC()
	if said := says(r); said != res.said || now.Sub(res.stored) >= heartbeat || result != Accepted {
		if !res.mayStore(now) {
			s.refuse(w, r.Resolver, TooMany, http.StatusTooManyRequests, fmt.Errorf("resolver %s: more receipts than %d at once and one every %v", r.Resolver, storeBurst, storeEvery))
			return
		}
		line, err := json.Marshal(Record{Received: now, Key: fmt.Sprintf("%016X", keyID), Result: result, Receipt: body, Signature: sig})
		if err == nil {
			err = appendLine(filepath.Join(s.cfg.Dir, r.Resolver+".jsonl"), line)
		}
		if err != nil {
			s.cfg.Log.Printf("error: storing a receipt of %s: %v", r.Resolver, err)
			http.Error(w, "could not store the receipt", http.StatusInternalServerError)
			return
		}
		res.said, res.stored = said, now
	}
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

func (s *Server) refuse(w http.ResponseWriter, resolver, result string, status int, err error) {
	s.total.WithLabelValues(resolver, result).Inc()
	s.cfg.Log.Printf("receipt refused (%s): %v", result, err)
	http.Error(w, err.Error(), status)
}

// update sets the metrics of res from its newest receipt r, stored at now;
// res.mu is held (or res is not shared yet).
func (s *Server) update(res *resolver, r receipt.Receipt, now time.Time) {
	res.time, res.events = r.Time, r.Ledger.Events
	var names []string
	for _, l := range r.Lists {
		s.serial.WithLabelValues(r.Resolver, l.Name).Set(float64(l.Serial))
		s.applied.WithLabelValues(r.Resolver, l.Name).Set(float64(l.Applied.Unix()))
		names = append(names, l.Name)
	}
	for _, old := range res.lists {
		if !slices.Contains(names, old) {
			s.serial.DeleteLabelValues(r.Resolver, old)
			s.applied.DeleteLabelValues(r.Resolver, old)
		}
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

// appendLine appends line and a newline to the file at path in one write.
func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(append(bytes.Clone(line), '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load reads the records of one resolver's file, oldest first.
func Load(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}
