package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/listset"
)

const syncUsage = `Usage: regblock sync -url BASE -name NAME -dir DIR -p PUB [-once | -every DURATION] [flags]

Fetches BASE/NAME.list and BASE/NAME.list.minisig, verifies the signature and
parses the list before anything touches DIR, refuses a rollback (a serial
lower than the list in DIR, or the same serial with other bytes), and writes
both files atomically, so that a resolver watching DIR sees one consistent
pair. Conditional GET (ETag, Last-Modified) makes an unchanged list cost one
small request. Failed fetches are retried with exponential back-off and
jitter. HTTPS only, unless -insecure-http.

Exit status with -once: 0 the list in DIR is the newest valid one (written
or unchanged), 1 it could not be updated, 2 misuse. With -every it runs
until SIGINT or SIGTERM.

Example:
  regblock sync -url https://lists.regulator.example/ -name example -dir /etc/regblock/lists -p regulator.pub -every 5m

`

// syncer fetches one list into a directory.
type syncer struct {
	base      *url.URL
	name, dir string
	file      string // NAME.list, or NAME.rpz for an RPZ zone
	keys      []minisign.PublicKey
	maxSize   int64
	client    *http.Client
	retries   int
	retryWait time.Duration
	log       *log.Logger

	lastSuccess *prometheus.GaugeVec
	failures    *prometheus.CounterVec
	serial      *prometheus.GaugeVec
}

// validators are what a conditional GET sends back; kept beside the list
// so that a run from cron remembers them.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// syncError is a failed sync: the reason is the failures metric's label.
type syncError struct {
	reason string
	err    error
}

func (e *syncError) Error() string { return e.err.Error() }

func syncCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sync", syncUsage, stderr)
	base := fs.String("url", "", "base `URL` the lists are published under")
	name := fs.String("name", "", "list `name`: fetches NAME.list and NAME.list.minisig; NAME.rpz fetches an RPZ zone and its signature")
	dir := fs.String("dir", "", "list `directory` to write into (the resolver's lists directory)")
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	once := fs.Bool("once", false, "fetch once and exit (the default)")
	every := fs.Duration("every", 0, "fetch every `duration`, until stopped")
	insecure := fs.Bool("insecure-http", false, "allow a plain http:// URL")
	metricsAddr := fs.String("metrics", "", "`address` to serve Prometheus metrics on")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of one request")
	retries := fs.Int("retries", 4, "retries of a failed fetch")
	retryWait := fs.Duration("retry-wait", time.Second, "first wait before a retry; doubles each time, with jitter")
	maxSize := fs.Int64("max-size", 1<<30, "largest list accepted, in `bytes`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{*base != "", "-url is required: the base URL the lists are published under"},
		need{*name != "", "-name is required: the list to fetch (NAME.list, or NAME.rpz)"},
		need{*dir != "", "-dir is required: the lists directory to write into"},
		need{len(pubs) > 0, "-p is required: the public keys the list must be signed with"},
		need{fs.NArg() == 0, "sync takes no arguments; got " + gotArgs(fs)},
		need{!*once || *every == 0, "-once and -every exclude each other"},
		need{*every >= 0, "-every must be positive"},
	); code >= 0 {
		return code
	}
	u, err := url.Parse(*base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fail(stderr, 2, fmt.Errorf("-url %q is not an http(s) URL", *base), "")
	}
	if u.Scheme == "http" && !*insecure {
		return fail(stderr, 2, fmt.Errorf("-url %q is plain HTTP", *base), "use https, or -insecure-http if the network between you and the server is trusted")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		return fail(stderr, 2, fmt.Errorf("-dir %q is not a directory", *dir), "")
	}
	file := *name + blocklist.ListSuffix
	if blocklist.IsRPZ(*name) {
		file, *name = *name, blocklist.TrimSuffix(*name)
	}
	s := &syncer{base: u, name: *name, file: file, dir: *dir, maxSize: *maxSize, client: &http.Client{Timeout: *timeout},
		retries: *retries, retryWait: *retryWait, log: log.New(stderr, "regblock sync: ", log.LstdFlags)}
	if s.keys, err = readKeys(pubs); err != nil {
		return fail(stderr, 2, err, "")
	}
	reg := s.newMetrics()
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go (&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *every == 0 {
		if err := s.run(ctx); err != nil {
			return fail(stderr, 1, err, "")
		}
		return 0
	}
	for {
		if err := s.run(ctx); err != nil {
			s.log.Printf("error: %v", err)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*every):
		}
	}
}

func (s *syncer) newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	s.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_last_success_timestamp_seconds",
		Help: "Time of the last sync that left the newest valid list in the directory."}, []string{"list"})
	s.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regblock_sync_failures_total",
		Help: "Syncs that failed, by reason (fetch, http_status, bad_signature, parse_error, too_large, rollback, write)."}, []string{"list", "reason"})
	s.serial = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regblock_sync_serial",
		Help: "Serial of the list last fetched and verified."}, []string{"list"})
	reg.MustRegister(s.lastSuccess, s.failures, s.serial)
	return reg
}

// run syncs once, retrying fetch failures with back-off.
func (s *syncer) run(ctx context.Context) error {
	wait := s.retryWait
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
		if reason != "fetch" || attempt >= s.retries {
			if attempt > 0 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return err
		}
		d := time.Duration(float64(wait) * (0.5 + rand.Float64())) // jitter: 50% to 150%
		s.log.Printf("%v; retrying in %v", err, d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(2*wait, time.Minute)
	}
}

func (s *syncer) listPath() string       { return filepath.Join(s.dir, s.file) }
func (s *syncer) validatorsPath() string { return filepath.Join(s.dir, "."+s.file+".sync.json") }

// syncOnce fetches the list, and its signature when the list changed,
// verifies them, and writes them into the directory.
func (s *syncer) syncOnce(ctx context.Context) error {
	var v validators
	if _, err := os.Stat(s.listPath()); err == nil {
		if data, err := os.ReadFile(s.validatorsPath()); err == nil {
			json.Unmarshal(data, &v)
		}
	}
	data, newV, err := s.fetch(ctx, s.file, v)
	if err != nil {
		return err
	}
	if data == nil {
		s.log.Printf("%s: not modified", s.name)
		return nil
	}
	sig, _, err := s.fetch(ctx, s.file+blocklist.SignatureSuffix, validators{})
	if err != nil {
		return err
	}
	l, err := blocklist.Open(s.base.String()+s.file, data, sig, s.keys)
	if err != nil {
		return &syncError{listset.Result(err), err}
	}
	s.serial.WithLabelValues(s.name).Set(float64(l.Serial))

	var old *blocklist.List
	if o, err := blocklist.Load(s.listPath(), s.keys, s.maxSize); err == nil && o.Name == l.Name {
		old = o
	}
	switch unchanged, err := listset.Decide(old, l, time.Now()); {
	case unchanged:
		s.log.Printf("%s: serial %d already in %s", s.name, l.Serial, s.dir)
		return s.saveValidators(newV)
	case errors.Is(err, listset.ErrRollback):
		return &syncError{listset.ResultRollback, fmt.Errorf("%s: the server offers serial %d, not newer than serial %d in %s: refusing a rollback",
			s.name, l.Serial, old.Serial, s.listPath())}
	case err != nil:
		return &syncError{listset.Result(err), err}
	}
	// Both files are complete beside their final names before either is
	// renamed, and the two renames follow each other at once.
	sigTmp, err := atomicfile.Temp(s.dir, sig, 0o644)
	if err != nil {
		return &syncError{"write", err}
	}
	listTmp, err := atomicfile.Temp(s.dir, data, 0o644)
	if err != nil {
		os.Remove(sigTmp)
		return &syncError{"write", err}
	}
	if err := os.Rename(sigTmp, s.listPath()+blocklist.SignatureSuffix); err != nil {
		os.Remove(sigTmp)
		os.Remove(listTmp)
		return &syncError{"write", err}
	}
	if err := os.Rename(listTmp, s.listPath()); err != nil {
		os.Remove(listTmp)
		return &syncError{"write", err}
	}
	s.log.Printf("%s: serial %d (%d blocking entries) written to %s", s.name, l.Serial, l.Blocking(), s.listPath())
	return s.saveValidators(newV)
}

func (s *syncer) saveValidators(v validators) error {
	data, _ := json.Marshal(v)
	if err := atomicfile.Write(s.validatorsPath(), data, 0o644); err != nil {
		return &syncError{"write", err}
	}
	return nil
}

// fetch GETs name under the base URL, conditionally when v is set. It
// returns nil data for 304 Not Modified.
func (s *syncer) fetch(ctx context.Context, name string, v validators) ([]byte, validators, error) {
	u := s.base.ResolveReference(&url.URL{Path: name})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, v, err
	}
	req.Header.Set("User-Agent", "regblock-sync")
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, v, err // reason "fetch": retried
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, v, nil
	case resp.StatusCode >= 500:
		return nil, v, fmt.Errorf("GET %s: %s", u, resp.Status) // retried
	case resp.StatusCode != http.StatusOK:
		return nil, v, &syncError{"http_status", fmt.Errorf("GET %s: %s", u, resp.Status)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.maxSize+1))
	if err != nil {
		return nil, v, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(data)) > s.maxSize {
		return nil, v, &syncError{"too_large", fmt.Errorf("GET %s: larger than %d bytes", u, s.maxSize)}
	}
	return data, validators{resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")}, nil
}
