package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serve serves srv on ln, over TLS when certFile is set, until SIGINT or
// SIGTERM, and then shuts it and the others down, giving requests in
// flight 5 seconds. It returns the error that stopped it early, if any.
func serve(srv *http.Server, ln net.Listener, certFile, keyFile string, others ...*http.Server) error {
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range append(others, srv) {
		s.Shutdown(ctx)
	}
	return nil
}

// newServer returns an HTTP server for a toolkit daemon's listener with
// every timeout set, so that no client can hold a connection open by
// sending or reading slowly. Its own errors go to errorLog.
func newServer(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: errorLog}
}

// runtimeMetrics are the process's and the Go runtime's metrics
// (process_*, go_*), served beside each daemon's own, as CoreDNS serves
// them beside the resolver's.
var runtimeMetrics = func() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return r
}()

// metricsHandler serves a daemon's metrics g and the runtime's.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{g, runtimeMetrics}, promhttp.HandlerOpts{})
}

// newLogger returns the logger of a toolkit daemon: lines as the standard
// library's log writes them (format "text"), or one JSON object a line
// through log/slog (format "json"), whose level is ERROR or WARN for a
// message that starts with "error: " or "warning: ", else INFO.
func newLogger(w io.Writer, daemon, format string) (*log.Logger, error) {
	switch format {
	case "text":
		return log.New(w, "regblock "+daemon+": ", log.LstdFlags), nil
	case "json":
		return log.New(slogWriter{slog.New(slog.NewJSONHandler(w, nil)).With("daemon", daemon)}, "", 0), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// slogWriter takes a line from a log.Logger and logs it through slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelInfo
	if m, ok := strings.CutPrefix(msg, "error: "); ok {
		level, msg = slog.LevelError, m
	} else if m, ok := strings.CutPrefix(msg, "warning: "); ok {
		level, msg = slog.LevelWarn, m
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
