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
parses the list before anything touches DIR, refuses a list whose name is
not NAME and a rollback (a serial lower than the list in DIR, or the same
serial with other bytes), and renames both files into place, so that a
resolver watching DIR sees one consistent pair. The list streams to a
temporary file in DIR, never past -max-size. Conditional GET (ETag,
Last-Modified) makes an unchanged list cost one small request, while the
list in DIR still verifies. Failed fetches are retried with exponential
back-off and jitter. HTTPS only, unless -insecure-http; redirects only to
https on the same host, unless -allow-redirect-host.

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
	// insecure allows http redirects, otherHosts redirects off the host.
	insecure, otherHosts bool
	retries              int
	retryWait            time.Duration
	log                  *log.Logger

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
	insecure := fs.Bool("insecure-http", false, "allow a plain http:// URL, and redirects to one")
	otherHosts := fs.Bool("allow-redirect-host", false, "follow redirects to another host than the -url's")
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
	s := &syncer{base: u, name: *name, file: file, dir: *dir, maxSize: *maxSize, insecure: *insecure, otherHosts: *otherHosts,
		retries: *retries, retryWait: *retryWait, log: log.New(stderr, "regblock sync: ", log.LstdFlags)}
	s.client = &http.Client{Timeout: *timeout, CheckRedirect: s.checkRedirect}
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
		Help: "Syncs that failed, by reason (fetch, http_status, redirect, bad_signature, parse_error, too_large, wrong_name, rollback, write)."}, []string{"list", "reason"})
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
// into temporary files in the directory, verifies them there, and renames
// them into place. The list is streamed to disk under the size limit and
// through the signature check, never held in memory.
func (s *syncer) syncOnce(ctx context.Context) error {
	// The version in the directory, if it still verifies and is the list
	// named: only then is a conditional request sent, so that "not
	// modified" never vouches for a file that was altered meanwhile.
	var old *blocklist.List
	var v validators
	if o, err := blocklist.Load(s.listPath(), s.keys, s.maxSize); err == nil && o.Name == s.name {
		old = o
		if data, err := blocklist.ReadFile(s.validatorsPath(), 4<<10); err == nil {
			json.Unmarshal(data, &v)
		}
	}
	listURL := s.base.ResolveReference(&url.URL{Path: s.file}).String()
	listTmp, newV, err := s.fetch(ctx, s.file, v, s.maxSize)
	if err != nil {
		return err
	}
	if listTmp == "" {
		s.log.Printf("%s: not modified", s.name)
		return nil
	}
	defer removeTemp(listTmp) // once renamed into place, only its directory
	sigTmp, _, err := s.fetch(ctx, s.file+blocklist.SignatureSuffix, validators{}, blocklist.MaxSignatureSize)
	if err != nil {
		return err
	}
	defer removeTemp(sigTmp)
	sig, err := blocklist.ReadFile(sigTmp, blocklist.MaxSignatureSize)
	if err != nil {
		return &syncError{"write", err}
	}
	// Verified and parsed as it streams from the file; the entries are
	// not kept.
	l, err := blocklist.OpenStream(listTmp, s.maxSize, sig, s.keys, func(blocklist.Entry) {})
	if err != nil {
		return &syncError{listset.Result(err), errors.New(strings.ReplaceAll(err.Error(), listTmp, listURL))}
	}
	l.File = listURL
	s.serial.WithLabelValues(s.name).Set(float64(l.Serial))
	if l.Name != s.name {
		return &syncError{"wrong_name", fmt.Errorf("%s holds list %q, not %q: refusing it (a publisher must not replace one list with another)", listURL, l.Name, s.name)}
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
	if err := os.Rename(sigTmp, s.listPath()+blocklist.SignatureSuffix); err != nil {
		return &syncError{"write", err}
	}
	if err := os.Rename(listTmp, s.listPath()); err != nil {
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

// fetch GETs name under the base URL, conditionally when v is set, into
// a temporary file in the directory, of at most limit bytes, and returns
// its path, to be removed with its directory (removeTemp) unless renamed
// into place; "" for 304 Not Modified to a conditional request.
func (s *syncer) fetch(ctx context.Context, name string, v validators, limit int64) (string, validators, error) {
	u := s.base.ResolveReference(&url.URL{Path: name})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", v, err
	}
	req.Header.Set("User-Agent", "regblock-sync")
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
		return "", v, &syncError{"redirect", fmt.Errorf("GET %s: %v", u, refused)}
	case err != nil:
		return "", v, err // reason "fetch": retried
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return "", v, nil
	case resp.StatusCode >= 500:
		return "", v, fmt.Errorf("GET %s: %s", u, resp.Status) // retried
	case resp.StatusCode != http.StatusOK:
		return "", v, &syncError{"http_status", fmt.Errorf("GET %s: %s", u, resp.Status)}
	case resp.ContentLength > limit:
		return "", v, &syncError{"too_large", fmt.Errorf("GET %s: %d bytes, larger than %d", u, resp.ContentLength, limit)}
	}
	// The file has its final name, which says its format (and an RPZ
	// zone's default list name), in a directory of its own in DIR whose
	// name starts with a dot, so that the resolver passes it by.
	tmp, err := os.MkdirTemp(s.dir, ".regblock-sync-*")
	if err != nil {
		return "", v, &syncError{"write", err}
	}
	f, err := os.Create(filepath.Join(tmp, name))
	if err != nil {
		os.RemoveAll(tmp)
		return "", v, &syncError{"write", err}
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
		return "", v, &syncError{"write", disk.error} // a full disk: not retried
	case err != nil:
		os.RemoveAll(tmp)
		return "", v, fmt.Errorf("GET %s: %w", u, err) // retried
	case n > limit:
		os.RemoveAll(tmp)
		return "", v, &syncError{"too_large", fmt.Errorf("GET %s: larger than %d bytes", u, limit)}
	}
	return f.Name(), validators{resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")}, nil
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
func (s *syncer) checkRedirect(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= 5:
		return &redirectError{req.URL.String(), "after 5 redirects"}
	case req.URL.Scheme != "https" && !(req.URL.Scheme == "http" && s.insecure):
		return &redirectError{req.URL.String(), "which is not https"}
	case !strings.EqualFold(req.URL.Host, s.base.Host) && !s.otherHosts:
		return &redirectError{req.URL.String(), "another host than " + s.base.Host + " (-allow-redirect-host follows it)"}
	}
	return nil
}
