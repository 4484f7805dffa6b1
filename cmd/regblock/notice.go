package main

import (
	"io"
	"log"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regblock/regblock/internal/notice"
	"github.com/regblock/regblock/plugin/pkg/listset"
)

const noticeUsage = `Usage: regblock notice -p PUB [-trust POLICY] [-listen ADDR] [-metrics ADDR] [-template FILE] [-lang-dir DIR] [-tls-cert FILE -tls-key FILE] LIST_OR_DIR...

Serves the legal notice page at the address blocked names resolve to. It
loads the same signed lists as the resolver, with the same verification and
hot reload, and answers a browser asking for a listed host with HTTP 451
Unavailable For Legal Reasons (RFC 7725), a Link header rel="blocked-by",
and a page saying who ordered the block, under which law and order, when the
list was issued, and where to appeal. Other hosts get a neutral 404 page.

The page comes in English and Malay, chosen by the browser's
Accept-Language (or ?lang=ms); add a language by dropping a CODE.json file
(the keys of the English one) into -lang-dir. -template replaces the page
(Go html/template; see the default in the source). Visitor addresses are
never logged. Metrics (page views by list, the serial of each list shown,
list versions read) are served on -metrics, with /ready answering 200 once a
list is in force.

Example:
  regblock notice -listen :8080 -metrics 127.0.0.1:9154 -p blocklists/example.pub blocklists

`

func noticeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("notice", noticeUsage, stderr)
	listen := fs.String("listen", ":8080", "`address` to serve the notice page on")
	metricsAddr := fs.String("metrics", "", "`address` to serve Prometheus metrics on (none if empty)")
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	trustPath := fs.String("trust", "", "judge lists by the trust policy `file`, or its history directory (N.trust, walked from the pinned roots); -p then names the pinned root keys, as the resolver's")
	templateFile := fs.String("template", "", "page template `file` replacing the default")
	langDir := fs.String("lang-dir", "", "`directory` of extra CODE.json message files")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (serve HTTPS)")
	keyFile := fs.String("tls-key", "", "TLS key `file`")
	maxSize := fs.Int64("max-size", 1<<30, "largest list file accepted, in `bytes`")
	logFormat := fs.String("log-format", "text", "log `format`: text, or json (one object a line, through log/slog)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{len(pubs) > 0, "-p is required: the public keys the lists are signed with, as the resolver's"},
		need{*certFile == "" || *keyFile != "", "-tls-cert needs -tls-key"},
		need{*keyFile == "" || *certFile != "", "-tls-key needs -tls-cert"},
		need{fs.NArg() > 0, "no LIST_OR_DIR: name the lists or their directory, as the resolver's"},
	); code >= 0 {
		return code
	}
	logger, err := newLogger(stderr, "notice", *logFormat)
	if err != nil {
		return fail(stderr, 2, err, "")
	}

	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	reg := prometheus.NewRegistry()
	srv, err := notice.New(*templateFile, *langDir, reg)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	set := listset.New(listset.Config{Lists: fs.Args(), Keys: keys, MaxSize: *maxSize, Trust: *trustPath}, srv.Publish, notice.Events{Log: logger, Server: srv}.Record)
	set.Scan()
	if err := set.Start(); err != nil {
		return fail(stderr, 2, err, "")
	}
	defer set.Stop()

	httpSrv := newServer(srv, log.New(notice.Redact(logger.Writer()), logger.Prefix(), logger.Flags()))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	var metricsSrv *http.Server
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(reg))
		mux.Handle("/ready", srv.Ready())
		metricsSrv = newServer(mux, logger)
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		go metricsSrv.Serve(mln)
		logger.Printf("metrics on http://%s/metrics", mln.Addr())
	}
	logger.Printf("serving the notice page on %s", ln.Addr())

	var others []*http.Server
	if metricsSrv != nil {
		others = append(others, metricsSrv)
	}
	if err := serve(httpSrv, ln, *certFile, *keyFile, others...); err != nil {
		return fail(stderr, 1, err, "")
	}
	return 0
}
