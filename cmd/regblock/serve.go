package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
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
