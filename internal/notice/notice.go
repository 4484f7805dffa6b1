// Package notice is the legal notice page server of regblock notice: HTTP
// 451 Unavailable For Legal Reasons (RFC 7725) for hosts the lists in force
// block, naming the list, order, authority and appeal address, in the
// visitor's language. It never logs a visitor's address.
package notice

import (
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
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/text/language"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/listset"
	"github.com/regblock/regblock/plugin/pkg/result"
)

//go:embed page.html *.json
var files embed.FS

// Server answers notice page requests from the lists it is given.
type Server struct {
	index   atomic.Pointer[blockindex.Index]
	page    *template.Template
	catalog map[string]map[string]string // language code → messages
	langs   []pageLanguage
	matcher language.Matcher
	tags    []string // catalog codes in matcher order
	views   *prometheus.CounterVec
	serial  *prometheus.GaugeVec   // of each list in force, to compare with the resolvers'
	reloads *prometheus.CounterVec // list versions read, by list and result
	reg     *prometheus.Registry   // its own, not the default: tests run several servers

	mu      sync.Mutex
	refused map[string]bool // list files given whose every version was refused
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

// New returns a server that renders the default page, or the html/template
// in templateFile, in English, Malay and the languages of the CODE.json
// files in langDir, and counts page views in reg. It blocks nothing until
// lists are published to it.
func New(templateFile, langDir string, reg *prometheus.Registry) (*Server, error) {
	s := &Server{catalog: map[string]map[string]string{}}
	pageText, err := files.ReadFile("page.html")
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
		data, _ := files.ReadFile(code + ".json")
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
	s.serial = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "regblock_notice_list_serial",
		Help: "Serial of each list the notice server shows, to compare with the resolvers' coredns_regblock_list_serial.",
	}, []string{"list"})
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regblock_notice_reloads_total",
		Help: "List versions the notice server read, by list and result (applied, or why it was rejected; list unknown for a file no verified list names).",
	}, []string{"list", "result"})
	refused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "regblock_notice_lists_refused",
		Help: "List files the notice server was given and shows no version of (every version refused): it is not ready meanwhile.",
	}, func() float64 { return float64(len(s.refusedFiles())) })
	s.reg = reg
	reg.MustRegister(s.views, s.serial, s.reloads, refused)
	empty, _ := blockindex.Build(nil)
	s.index.Store(empty)
	return s, nil
}

// language picks the page language: ?lang= if we have it, else the best
// match for Accept-Language, else English.
func (s *Server) language(r *http.Request) string {
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

// ServeHTTP answers a request for the notice page of its Host: 451 with
// the notice for a blocked host, 404 with a neutral page for another.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// Metrics serves the server's metrics.
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Publish puts the lists of ix in force: the index a listset.Set publishes.
func (s *Server) Publish(ix *blockindex.Index) { s.index.Store(ix) }

// Ready answers 200 once a verified list is in force and no list file it
// was given is refused with no version shown, else 503: a notice server
// without a list the resolvers enforce would tell its visitors that no
// block applies, while one that is not ready is passed by for another.
func (s *Server) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.index.Load().Lists()) == 0 {
			http.Error(w, "no list in force", http.StatusServiceUnavailable)
			return
		}
		if files := s.refusedFiles(); len(files) > 0 {
			http.Error(w, fmt.Sprintf("%d list files refused, none of their versions shown (the log says why)", len(files)), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	})
}

// refuse records whether the list file at path is refused with no
// version shown.
func (s *Server) refuse(path string, refused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]bool{}
	}
	if refused {
		s.refused[path] = true
	} else {
		delete(s.refused, path)
	}
}

// refusedFiles returns the refused files that are still there: a file
// removed from the lists directory is no longer a list given.
func (s *Server) refusedFiles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []string
	for path := range s.refused {
		if _, err := os.Lstat(path); err != nil {
			delete(s.refused, path)
			continue
		}
		files = append(files, path)
	}
	return files
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

// Events logs what the list set of a notice server decides, and keeps
// Server's list metrics when it is set. Its Record is the list set's
// record function.
type Events struct {
	Log    *log.Logger
	Server *Server
}

// Record records one change of the list set, before the index holding it
// is published.
func (e Events) Record(ch listset.Change) {
	c := ch.List
	switch ch.Kind {
	case listset.Applied:
		e.Log.Printf("list %q serial %d applied from %s: %d blocking entries", c.List.Name, c.List.Serial, c.Source(), c.List.Blocking())
		if e.Server != nil {
			e.Server.refuse(c.Path, false)
			e.Server.serial.WithLabelValues(c.List.Name).Set(float64(c.List.Serial))
			if !c.Restored {
				e.Server.reloads.WithLabelValues(c.List.Name, string(result.Applied)).Inc()
			}
		}
	case listset.Refused:
		r := ch.Refusal
		e.Log.Printf("list %q rejected (%s): %v", r.List, r.Result, r.Err)
		if e.Server != nil {
			e.Server.refuse(r.Path, r.InForce == nil)
			e.Server.reloads.WithLabelValues(r.Label(), string(r.Result)).Inc()
		}
	case listset.Removed:
		e.Log.Printf("list %q serial %d unloaded: %s", c.List.Name, c.List.Serial, ch.Why)
		if e.Server != nil {
			e.Server.serial.DeleteLabelValues(c.List.Name)
		}
	case listset.Moved:
		e.Log.Printf("list %q serial %d is now read from %s (was %s)", c.List.Name, c.List.Serial, c.Path, ch.From)
	case listset.Expired:
		e.Log.Printf("list %q serial %d expired; still shown", c.List.Name, c.List.Serial)
	case listset.PolicyApplied:
		e.Log.Printf("trust policy serial %d applied from %s", ch.Policy.Serial, ch.Policy.File)
	case listset.PolicyRefused:
		e.Log.Printf("trust policy rejected (%s): %v", ch.Result, ch.Err)
	case listset.PolicyExpired:
		e.Log.Printf("trust policy serial %d expired; still in force", ch.Policy.Serial)
	case listset.Waiting:
		e.Log.Printf("list file %s has no signature yet", ch.Path)
	case listset.Problem:
		e.Log.Print(ch.Err)
	}
}

// visitorAddr matches an IPv4 or IPv6 address with a port, as net/http
// writes a client's address in its error log ("TLS handshake error from
// 192.0.2.7:51234", "panic serving [2001:db8::7]:443").
var visitorAddr = regexp.MustCompile(`\[[0-9A-Fa-f:.%\w]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}:\d+`)

// Redact returns a writer for the HTTP server's error log that writes each
// line to w with every address and port replaced by "a visitor": the page
// never logs who came to see it, not even in a TLS handshake error.
func Redact(w io.Writer) io.Writer { return redactor{w} }

type redactor struct{ w io.Writer }

func (r redactor) Write(p []byte) (int, error) {
	if _, err := r.w.Write(visitorAddr.ReplaceAll(p, []byte("a visitor"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
