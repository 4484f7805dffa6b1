package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regblock/regblock/internal/listsync"
)

const syncUsage = `Usage: regblock sync -url BASE -name NAME -dir DIR -p PUB [-trust POLICY] [-once | -every DURATION] [flags]
       regblock sync -url BASE -history -dir DIR -p ROOT.pub,... [-once | -every DURATION] [flags]

Fetches BASE/NAME.list and BASE/NAME.list.minisig, verifies the signature and
parses the list before anything touches DIR, refuses a list whose name is
not NAME and a rollback (a serial lower than the list in DIR, or the same
serial with other bytes), and renames both files into place, so that a
resolver watching DIR sees one consistent pair. The list streams to a
temporary file in DIR, never past -max-size. Conditional GET (ETag,
Last-Modified) makes an unchanged list cost one small request, while the
list in DIR still verifies.

Deltas: for NAME.list, the first request asks only for the list's header
(a range request, conditional). When the publisher's serial is newer than
the version in DIR, sync fetches BASE/NAME.d/SERIAL.delta (and .minisig)
from that version on, verifies each as the resolver will, and places it as
DIR/NAME.SERIAL.delta beside the list: a change costs its own size, not the
list's. A delta missing or refused, a server that ignores ranges, or deltas
in DIR adding up to a quarter of the whole list bring the whole list
instead, which replaces the deltas.

Failed fetches are retried with exponential back-off and jitter. HTTPS
only, unless -insecure-http; redirects only to https on the same host,
unless -allow-redirect-host.

-name NAME.trust fetches a trust policy instead (BASE/NAME.trust and its
.minisig) and writes both into DIR, where a resolver's 'trust DIR/NAME.trust'
reads it, only if the resolver would accept it: signed by the root
threshold of the policy already in DIR (itself accepted from -p, the pinned
root keys), or from -p when there is none; never a rollback.

-history mirrors a trust policy's published history (BASE/1.trust,
BASE/2.trust, ... each with its .minisig) into DIR, where a resolver's
'trust DIR' walks it: from the newest version in DIR (DIR walked from -p),
it fetches the next serial until the publisher answers 404, each version
judged by the one before it, as TUF clients fetch root versions. With DIR
empty it starts at 1.trust and passes by the versions -p does not accept
(signed by roots since rotated). A version refused stops the run; the
versions before it stay.

-textfile writes the metrics after each run to a file for node_exporter's
textfile collector (atomically), so that a sync run from a timer, which
serves no metrics, still alerts when it fails (regblock_sync_last_run_success,
regblock_sync_last_run_timestamp_seconds).

Exit status with -once: 0 the list in DIR is the newest valid one (written
or unchanged), 1 it could not be updated, 2 misuse. With -every it runs
until SIGINT or SIGTERM.

Example:
  regblock sync -url https://lists.regulator.example/ -name example -dir /etc/regblock/lists -p regulator.pub -every 5m

`

func syncCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sync", syncUsage, stderr)
	base := fs.String("url", "", "base `URL` the lists are published under")
	name := fs.String("name", "", "list `name`: fetches NAME.list and NAME.list.minisig; NAME.rpz fetches an RPZ zone and its signature")
	dir := fs.String("dir", "", "list `directory` to write into (the resolver's lists directory)")
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	history := fs.Bool("history", false, "mirror a trust policy's history (BASE/1.trust, BASE/2.trust, ...) into -dir, instead of -name")
	trustPath := fs.String("trust", "", "judge lists by the trust policy `file`, or its history directory (N.trust, walked from the pinned roots); -p then names the pinned root keys, as the resolver's")
	once := fs.Bool("once", false, "fetch once and exit (the default)")
	every := fs.Duration("every", 0, "fetch every `duration`, until stopped")
	insecure := fs.Bool("insecure-http", false, "allow a plain http:// URL, and redirects to one")
	otherHosts := fs.Bool("allow-redirect-host", false, "follow redirects to another host than the -url's")
	metricsAddr := fs.String("metrics", "", "`address` to serve Prometheus metrics on")
	textfile := fs.String("textfile", "", "write the metrics to `FILE` after each run (node_exporter's textfile collector: a name ending in .prom)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of one request")
	retries := fs.Int("retries", 4, "retries of a failed fetch")
	retryWait := fs.Duration("retry-wait", time.Second, "first wait before a retry; doubles each time, with jitter")
	maxSize := fs.Int64("max-size", 1<<30, "largest list accepted, in `bytes`")
	logFormat := fs.String("log-format", "text", "log `format`: text, or json (one object a line, through log/slog)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{*base != "", "-url is required: the base URL the lists are published under"},
		need{*name != "" || *history, "-name is required: the list to fetch (NAME.list, or NAME.rpz), or a trust policy (NAME.trust); or -history"},
		need{*name == "" || !*history, "-name and -history exclude each other: -history fetches every version, BASE/1.trust, BASE/2.trust, ..."},
		need{*trustPath == "" || !listsync.IsPolicyName(*name) && !*history, "-trust judges lists: a policy (-name NAME.trust, -history) is judged by -p, its pinned root keys, and the policy already in -dir"},
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
	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	logger, err := newLogger(stderr, "sync", *logFormat)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	j, err := newJudge(*trustPath, keys, stderr)
	switch {
	case err != nil && *every == 0:
		return fail(stderr, 2, err, "")
	case err != nil:
		// Read again before each run, and each run fails until it is
		// valid: a sidecar may start before the policy's sync has
		// written the first version.
		logger.Printf("error: -trust: %v", err)
	}
	s := listsync.New(listsync.Config{Base: u, Name: *name, History: *history, Dir: *dir, Keys: keys, MaxSize: *maxSize, Timeout: *timeout,
		Retries: *retries, RetryWait: *retryWait, Insecure: *insecure, OtherHosts: *otherHosts, Log: logger, Policy: j.Policy()})
	reg := s.Metrics()
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(reg)) // the textfile holds reg alone: node_exporter has its own go_*
		go newServer(mux, logger).Serve(ln)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	run := func() error {
		var err error
		if *trustPath != "" && *every != 0 {
			// The policy, read again at each run: one that changed since
			// (a stolen key dropped) judges the lists of this run.
			j, err = newJudge(*trustPath, keys, stderr)
			s.Policy = j.Policy()
		}
		if err != nil {
			err = fmt.Errorf("-trust: %w", err)
			s.Failed()
		} else {
			err = s.Run(ctx)
		}
		if *textfile != "" {
			// Not the run's result: a textfile that cannot be written shows
			// as a stale regblock_sync_last_run_timestamp_seconds.
			if werr := prometheus.WriteToTextfile(*textfile, reg); werr != nil {
				logger.Printf("error: -textfile: %v", werr)
			}
		}
		return err
	}
	if *every == 0 {
		if err := run(); err != nil {
			return fail(stderr, 1, err, "")
		}
		return 0
	}
	for {
		if err := run(); err != nil {
			logger.Printf("error: %v", err)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*every):
		}
	}
}
