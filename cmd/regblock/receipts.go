package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regblock/regblock/internal/receipts"
)

const receiptsUsage = `Usage: regblock receipts -listen ADDR -dir DIR -p KEY... [-tls-cert FILE -tls-key FILE] [-keep-every DUR] [-metrics ADDR]

The regulator's receiver of enforcement receipts. Resolvers with
"receipts URL KEY [ID]" in their Corefile POST a signed receipt (the lists
they enforce, with serial, SHA-256 and applied time, and the head and event
count of their ledger) after each ledger event and every minute. Each
receipt is verified against the ISPs' public keys (-p files, or a directory
of *.pub files); a resolver's name is bound to the key of its first
receipt. Accepted receipts are appended, with their signature, to
DIR/RESOLVER.jsonl, which regblock verify-ledger -receipts reads; one that
says nothing new (the same lists, ledger and process; counts of blocked
queries aside) is stored once an hour, or once per -keep-every: the
blocked counts of regblock report are as fine as that.

POST / takes a receipt; GET /metrics serves (on -metrics ADDR instead,
when given: keep the ISPs, who reach the receipts address, from reading
each other's resolvers there), per resolver, the serial of
each list in force, the queries it blocked since the resolver started,
the time of its last receipt and its ledger event count
(regblock_receipts_list_serial, regblock_receipts_list_blocked,
regblock_receipts_last_timestamp_seconds, regblock_receipts_ledger_events),
the key each resolver is bound to, named
by its file (regblock_receipts_resolver_info{key}: name the files after the
ISPs), and the receipts received by result.

Example:
  regblock receipts -listen :8443 -tls-cert receiver.crt -tls-key receiver.key -dir /var/lib/regblock/receipts -p /etc/regblock/isp-keys

`

func receiptsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("receipts", receiptsUsage, stderr)
	listen := fs.String("listen", "", "`address` to take receipts on, and serve /metrics")
	dir := fs.String("dir", "", "`directory` that keeps the receipts, a file per resolver")
	var pubs multiFlag
	fs.Var(&pubs, "p", "ISP public key `files`, or directories of *.pub files (repeat, or separate with commas)")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (serve HTTPS)")
	keyFile := fs.String("tls-key", "", "TLS key `file`")
	metricsAddr := fs.String("metrics", "", "serve /metrics on this `address` (plain HTTP) rather than on -listen")
	keepEvery := fs.Duration("keep-every", receipts.Heartbeat, "store a receipt that says nothing new once per `duration`")
	logFormat := fs.String("log-format", "text", "log `format`: text, or json (one object a line, through log/slog)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{*listen != "", "-listen is required: the address to take receipts on"},
		need{*dir != "", "-dir is required: where to keep the receipts"},
		need{len(pubs) > 0, "-p is required: the public keys of the resolvers"},
		need{(*certFile == "") == (*keyFile == ""), "-tls-cert and -tls-key go together"},
		need{fs.NArg() == 0, "receipts takes no arguments; got " + gotArgs(fs)},
		need{*keepEvery >= time.Second, "-keep-every: at least 1s"},
	); code >= 0 {
		return code
	}
	var files []string
	for _, p := range pubs {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			found, _ := filepath.Glob(filepath.Join(p, "*.pub"))
			if len(found) == 0 {
				return fail(stderr, 2, fmt.Errorf("-p %s: no *.pub file in the directory", p), "")
			}
			files = append(files, found...)
			continue
		}
		files = append(files, p)
	}
	keys, err := readKeys(files)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	names := map[uint64]string{}
	for i, k := range keys {
		names[k.ID()] = strings.TrimSuffix(filepath.Base(files[i]), ".pub")
	}
	logger, err := newLogger(stderr, "receipts", *logFormat)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	srv, err := receipts.New(receipts.Config{Dir: *dir, Keys: keys, KeyNames: names, Log: logger, KeepEvery: *keepEvery})
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	var others []*http.Server
	if *metricsAddr == "" {
		mux.Handle("/metrics", metricsHandler(srv.Gatherer()))
	} else {
		metricsMux := http.NewServeMux()
		metricsMux.Handle("/metrics", metricsHandler(srv.Gatherer()))
		metricsSrv := newServer(metricsMux, logger)
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		go metricsSrv.Serve(mln)
		others = append(others, metricsSrv)
		logger.Printf("metrics on http://%s/metrics", mln.Addr())
	}
	httpSrv := newServer(mux, logger)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	logger.Printf("taking receipts on %s from %d keys, into %s", ln.Addr(), len(keys), *dir)
	if err := serve(httpSrv, ln, *certFile, *keyFile, others...); err != nil {
		return fail(stderr, 1, err, "")
	}
	return 0
}
