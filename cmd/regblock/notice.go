package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/text/language"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/listset"
)

const noticeUsage = `Usage: regblock notice -p PUB [-listen ADDR] [-metrics ADDR] [-template FILE] [-lang-dir DIR] [-tls-cert FILE -tls-key FILE] LIST_OR_DIR...

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
never logged. Metrics (page views by list) are served on -metrics.

Example:
  regblock notice -listen :8080 -metrics 127.0.0.1:9154 -p blocklists/example.pub blocklists

`

//go:embed notice/page.html notice/*.json
var noticeFiles embed.FS

// noticeServer answers notice page requests from the lists in force.
type noticeServer struct {
	index   atomic.Pointer[blockindex.Index]
	page    *template.Template
	catalog map[string]map[string]string // language code → messages
	langs   []pageLanguage
	matcher language.Matcher
	tags    []string // catalog codes in matcher order
	views   *prometheus.CounterVec
	reg     *prometheus.Registry // its own, not the default: tests run several servers
}

type pageLanguage struct{ Code, Name string }

// pageData is what the template gets.
type pageData struct {
	Lang      string
	T         map[string]string
	Host      string
	Blocked   bool
	List      pageList
	Order     string
	Issued    string
	Languages []pageLanguage
}

type pageList struct {
	Name, Issuer, Authority string
	Serial                  uint64
	Appeal                  template.URL
	Contact                 []template.URL
}

func notice(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("notice", noticeUsage, stderr)
	listen := fs.String("listen", ":8080", "`address` to serve the notice page on")
	metricsAddr := fs.String("metrics", "", "`address` to serve Prometheus metrics on (none if empty)")
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	templateFile := fs.String("template", "", "page template `file` replacing the default")
	langDir := fs.String("lang-dir", "", "`directory` of extra CODE.json message files")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (serve HTTPS)")
	keyFile := fs.String("tls-key", "", "TLS key `file`")
	maxSize := fs.Int64("max-size", 1<<30, "largest list file accepted, in `bytes`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 || len(pubs) == 0 || (*certFile == "") != (*keyFile == "") {
		fs.Usage()
		return 2
	}
	logger := log.New(stderr, "regblock notice: ", log.LstdFlags)

	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	srv, err := newNoticeServer(*templateFile, *langDir, prometheus.NewRegistry())
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	set := listset.New(listset.Config{Lists: fs.Args(), Keys: keys, MaxSize: *maxSize}, srv.index.Store, noticeEvents{logger})
	set.Scan()
	if err := set.Start(); err != nil {
		return fail(stderr, 2, err, "")
	}
	defer set.Stop()

	httpSrv := &http.Server{Addr: *listen, Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: logger}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	var metricsSrv *http.Server
	if *metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttpHandler(srv))
		metricsSrv = &http.Server{Addr: *metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		go metricsSrv.Serve(mln)
		logger.Printf("metrics on http://%s/metrics", mln.Addr())
	}
	logger.Printf("serving the notice page on %s", ln.Addr())

	errc := make(chan error, 1)
	go func() {
		if *certFile != "" {
			errc <- httpSrv.ServeTLS(ln, *certFile, *keyFile)
		} else {
			errc <- httpSrv.Serve(ln)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err := <-errc:
		return fail(stderr, 1, err, "")
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpSrv.Shutdown(ctx)
	if metricsSrv != nil {
		metricsSrv.Shutdown(ctx)
	}
	return 0
}

func newNoticeServer(templateFile, langDir string, reg *prometheus.Registry) (*noticeServer, error) {
	s := &noticeServer{catalog: map[string]map[string]string{}}
	pageText, err := noticeFiles.ReadFile("notice/page.html")
	if err != nil {
		return nil, err
	}
	if templateFile != "" {
		if pageText, err = os.ReadFile(templateFile); err != nil {
			return nil, err
		}
	}
	if s.page, err = template.New("page").Parse(string(pageText)); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}

	load := func(code string, data []byte, from string) error {
		var msgs map[string]string
		if err := json.Unmarshal(data, &msgs); err != nil {
			return fmt.Errorf("%s: %v", from, err)
		}
		if _, err := language.Parse(code); err != nil {
			return fmt.Errorf("%s: %q is not a language code", from, code)
		}
		s.catalog[code] = msgs
		return nil
	}
	for _, code := range []string{"en", "ms"} {
		data, _ := noticeFiles.ReadFile("notice/" + code + ".json")
		if err := load(code, data, code+".json"); err != nil {
			return nil, err
		}
	}
	if langDir != "" {
		files, err := filepath.Glob(filepath.Join(langDir, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := load(strings.TrimSuffix(filepath.Base(f), ".json"), data, f); err != nil {
				return nil, err
			}
		}
	}
	// English first: the fallback for a browser that asks for none we have.
	s.tags = []string{"en"}
	for code := range s.catalog {
		if code != "en" {
			s.tags = append(s.tags, code)
		}
	}
	slices.Sort(s.tags[1:])
	var tags []language.Tag
	for _, code := range s.tags {
		tags = append(tags, language.MustParse(code))
		name := s.catalog[code]["lang_name"]
		if name == "" {
			name = code
		}
		s.langs = append(s.langs, pageLanguage{code, name})
	}
	s.matcher = language.NewMatcher(tags)
	// A language file may leave messages out; English fills the gaps.
	for code, msgs := range s.catalog {
		for k, v := range s.catalog["en"] {
			if _, ok := msgs[k]; !ok && code != "en" {
				msgs[k] = v
			}
		}
	}

	s.views = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regblock_notice_page_views_total",
		Help: "Notice pages served, by the list that blocks the host (none: the host is not blocked).",
	}, []string{"list"})
	s.reg = reg
	reg.MustRegister(s.views)
	empty, _ := blockindex.Build(nil)
	s.index.Store(empty)
	return s, nil
}

// language picks the page language: ?lang= if we have it, else the best
// match for Accept-Language, else English.
func (s *noticeServer) language(r *http.Request) string {
	if code := r.URL.Query().Get("lang"); s.catalog[code] != nil {
		return code
	}
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, conf := s.matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return s.tags[i]
}

func (s *noticeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	lang := s.language(r)
	data := pageData{Lang: lang, T: s.catalog[lang], Host: host, Languages: s.langs}
	if len(host) > 253 { // no DNS name is longer: do not echo a hostile header whole
		data.Host = host[:253] + "…"
	}

	status := http.StatusNotFound
	listLabel := "none"
	if m, ok := s.index.Load().Lookup(host); ok && host != "" {
		l := m.List
		status, listLabel = http.StatusUnavailableForLegalReasons, l.Name
		data.Blocked, data.Order, data.Issued = true, m.Order, l.Issued.UTC().Format(time.RFC3339)
		// Addresses come from a signed header whose schemes the parser
		// checked (http, https, mailto, tel): safe to use as links.
		data.List = pageList{Name: l.Name, Issuer: l.Issuer, Authority: l.Authority, Serial: l.Serial, Appeal: template.URL(l.Appeal)}
		for _, c := range l.Contact {
			data.List.Contact = append(data.List.Contact, template.URL(c))
		}
		if by := blockedBy(l); by != "" {
			w.Header().Set("Link", "<"+by+`>; rel="blocked-by"`)
		}
	}
	s.views.WithLabelValues(listLabel).Inc()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Vary", "Accept-Language")
	w.WriteHeader(status)
	if err := s.page.Execute(w, data); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		// The status is out already; the template failing is the operator's
		// to see in the log, not the visitor's.
		fmt.Fprintln(os.Stderr, "regblock notice: template:", err)
	}
}

// promhttpHandler serves the server's metrics.
func promhttpHandler(s *noticeServer) http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// blockedBy is the Link target naming who ordered the block (RFC 7725): the
// list's appeal address, else its first contact.
func blockedBy(l *blocklist.List) string {
	if l.Appeal != "" {
		return l.Appeal
	}
	if len(l.Contact) > 0 {
		return l.Contact[0]
	}
	return ""
}

// noticeEvents logs what the list set decides.
type noticeEvents struct{ log *log.Logger }

func (e noticeEvents) Applied(c *listset.Current, _ time.Duration) {
	e.log.Printf("list %q serial %d applied from %s: %d blocking entries", c.List.Name, c.List.Serial, c.Path, c.List.Blocking())
}
func (e noticeEvents) Unchanged(string) {}
func (e noticeEvents) Rejected(r listset.Rejection) {
	e.log.Printf("list %q rejected (%s): %v", r.List, r.Result, r.Err)
}
func (e noticeEvents) Removed(c *listset.Current, why string) {
	e.log.Printf("list %q serial %d unloaded: %s", c.List.Name, c.List.Serial, why)
}
func (e noticeEvents) Moved(c *listset.Current, from string) {
	e.log.Printf("list %q serial %d is now read from %s (was %s)", c.List.Name, c.List.Serial, c.Path, from)
}
func (e noticeEvents) Expired(c *listset.Current) {
	e.log.Printf("list %q serial %d expired; still shown", c.List.Name, c.List.Serial)
}
func (e noticeEvents) Waiting(path string) { e.log.Printf("list file %s has no signature yet", path) }
func (e noticeEvents) Error(err error)     { e.log.Print(err) }
