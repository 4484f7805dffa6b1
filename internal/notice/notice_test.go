package notice

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/listset"
)

const noticeList = `#! regblock-list 1
#! name: example-csam
#! issuer: Example Communications Commission
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
#! authority: Example Communications Act 1998, section 263(2)
#! appeal: https://complaints.regulator.example/
#! contact: mailto:complaints@regulator.example tel:+60-3-0000-0000
abuse.example          ORDER-2026-0012  csam
!help.abuse.example
`

// startNotice serves the notice page for the signed lists in a directory,
// with the given -template and -lang-dir, and returns its URL.
func startNotice(t *testing.T, lists map[string]string, templateFile, langDir string) (*httptest.Server, *Server) {
	t.Helper()
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	for name, text := range lists {
		key.WriteList(t, dir, name, text)
	}
	srv, err := New(templateFile, langDir, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	set := listset.New(listset.Config{Lists: []string{dir}, Keys: []minisign.PublicKey{key.Public}, MaxSize: 1 << 20},
		srv.Publish, Events{Log: log.New(io.Discard, "", 0), Server: srv}.Record)
	set.Scan()
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv
}

func get(t *testing.T, url, host, acceptLanguage string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestNoticePage(t *testing.T) {
	ts, _ := startNotice(t, map[string]string{"example.list": noticeList}, "", "")
	tests := []struct {
		host   string
		status int
	}{
		{"abuse.example", 451},
		{"WWW.Abuse.Example:8080", 451},
		{"abuse.example.", 451},
		{"help.abuse.example", 404},
		{"other.test", 404},
		{"", 404},
		{"[::1]:8080", 404},
		{"bad host<>", 404},
	}
	for _, tc := range tests {
		resp, body := get(t, ts.URL, tc.host, "")
		if resp.StatusCode != tc.status {
			t.Errorf("Host %q: status %d, want %d", tc.host, resp.StatusCode, tc.status)
		}
		link := resp.Header.Get("Link")
		if tc.status == 451 {
			if link != `<https://complaints.regulator.example/>; rel="blocked-by"` {
				t.Errorf("Host %q: Link %q", tc.host, link)
			}
			for _, want := range []string{"<title>Site blocked by legal order</title>", "Example Communications Commission", "Example Communications Act 1998, section 263(2)",
				"ORDER-2026-0012", "example-csam, serial 2026112801", "2026-11-28T06:00:00Z", `href="https://complaints.regulator.example/"`,
				`href="mailto:complaints@regulator.example"`, `href="tel:&#43;60-3-0000-0000"`} {
				if !strings.Contains(body, want) {
					t.Errorf("Host %q: the page lacks %q", tc.host, want)
				}
			}
		} else {
			if link != "" || !strings.Contains(body, "No block applies to this site") || strings.Contains(body, "ORDER-") {
				t.Errorf("Host %q: not the neutral page (Link %q)", tc.host, link)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "<link") {
			t.Errorf("Host %q: the page loads or runs something external", tc.host)
		}
	}
}

func TestNoticeHostileHost(t *testing.T) {
	ts, _ := startNotice(t, map[string]string{"example.list": noticeList}, "", "")
	huge := strings.Repeat("a", 50<<10) + ".abuse.example"
	resp, body := get(t, ts.URL, huge, "")
	if resp.StatusCode != 404 || strings.Contains(body, strings.Repeat("a", 300)) {
		t.Errorf("a 50 KB Host: status %d, page of %d bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, ts.URL, `"><script>alert(1)</script>`, "")
	if resp.StatusCode != 404 || strings.Contains(body, "<script>") {
		t.Errorf("an HTML Host: status %d, echoed unescaped", resp.StatusCode)
	}
}

func TestNoticeEscapesListFields(t *testing.T) {
	hostile := strings.Replace(noticeList, "Example Communications Commission", `<script>alert("x")</script>`, 1)
	hostile = strings.Replace(hostile, "ORDER-2026-0012", `ORDER"><img/src=x>`, 1)
	ts, _ := startNotice(t, map[string]string{"example.list": hostile}, "", "")
	_, body := get(t, ts.URL, "abuse.example", "")
	if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("a list field reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("the escaped issuer is missing:\n%s", body)
	}
}

func TestNoticeLanguages(t *testing.T) {
	langDir := t.TempDir()
	os.WriteFile(filepath.Join(langDir, "fr.json"), []byte(`{"lang_name": "Français", "heading_blocked": "Ce site est bloqué"}`), 0o644)
	ts, srv := startNotice(t, map[string]string{"example.list": noticeList}, "", langDir)
	tests := []struct{ accept, query, lang, heading string }{
		{"", "", "en", "This site is blocked"},
		{"ms-MY,ms;q=0.9,en;q=0.8", "", "ms", "Laman ini disekat"},
		{"en-GB,en;q=0.9", "", "en", "This site is blocked"},
		{"de-DE", "", "en", "This site is blocked"},
		{"de, fr;q=0.5", "", "fr", "Ce site est bloqué"},
		{"ms", "?lang=en", "en", "This site is blocked"},
	}
	for _, tc := range tests {
		resp, body := get(t, ts.URL+"/"+tc.query, "abuse.example", tc.accept)
		if resp.Header.Get("Content-Language") != tc.lang || !strings.Contains(body, `<html lang="`+tc.lang+`">`) || !strings.Contains(body, tc.heading) {
			t.Errorf("Accept-Language %q %s: Content-Language %q, want %q with %q", tc.accept, tc.query, resp.Header.Get("Content-Language"), tc.lang, tc.heading)
		}
	}
	// A dropped-in language that leaves messages out falls back to English.
	if _, body := get(t, ts.URL, "abuse.example", "fr"); !strings.Contains(body, "Ordered by") {
		t.Error("missing French messages are not filled in English")
	}
	if len(srv.langs) != 3 {
		t.Errorf("languages %v, want en, fr, ms", srv.langs)
	}
}

func TestNoticeTemplateAndMetrics(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "page.html")
	os.WriteFile(tmpl, []byte(`<!DOCTYPE html><html lang="{{.Lang}}"><title>ISP notice</title>{{if .Blocked}}blocked by {{.List.Issuer}}{{end}}</html>`), 0o644)
	ts, srv := startNotice(t, map[string]string{"example.list": noticeList}, tmpl, "")
	if _, body := get(t, ts.URL, "abuse.example", ""); !strings.Contains(body, "ISP notice") || !strings.Contains(body, "blocked by Example Communications Commission") {
		t.Errorf("-template not used: %s", body)
	}
	get(t, ts.URL, "abuse.example", "")
	get(t, ts.URL, "other.test", "")
	rec := httptest.NewRecorder()
	srv.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`regblock_notice_page_views_total{list="example-csam"} 2`, `regblock_notice_page_views_total{list="none"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, rec.Body.String())
		}
	}
	if strings.Contains(rec.Body.String(), "abuse.example") || strings.Contains(rec.Body.String(), "host=") {
		t.Error("metrics name hosts")
	}
}

// TestNoticeInBrowser loads the notice page in headless Chromium, with the
// blocked host mapped to the test server, and checks the rendered DOM and a
// screenshot.
func TestNoticeInBrowser(t *testing.T) {
	testenv.Need(t, "chromium", "chromium")
	ts, _ := startNotice(t, map[string]string{"example.list": noticeList}, "", "")
	port := ts.URL[strings.LastIndexByte(ts.URL, ':')+1:]
	url := "http://www.abuse.example:" + port + "/"
	dir := t.TempDir()
	shot := filepath.Join(dir, "notice.png")
	browser := func(args ...string) []byte {
		t.Helper()
		return testenv.Chromium(t, dir, append(append(args, "--host-resolver-rules=MAP www.abuse.example 127.0.0.1"), url)...)
	}
	dom := browser("--dump-dom")
	for _, want := range []string{"<title>Site blocked by legal order</title>", "<h1>This site is blocked</h1>", "www.abuse.example", "ORDER-2026-0012"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the DOM Chromium rendered lacks %q:\n%s", want, dom)
		}
	}
	browser("--screenshot="+shot, "--window-size=390,844") // a phone's screen
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 5000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot %s is %d bytes, not a rendered page", shot, len(png))
	}
	if os.Getenv("REGBLOCK_KEEP_SCREENSHOT") != "" {
		os.WriteFile(os.Getenv("REGBLOCK_KEEP_SCREENSHOT"), png, 0o644)
	}
}

// TestNoticeReadyAndSerials: /ready is 503 until a list is in force, and the
// metrics name the serial of each list shown, so that an alert can compare
// them with the resolvers'.
func TestNoticeReadyAndSerials(t *testing.T) {
	empty, err := New("", "", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	empty.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/ready", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("ready without lists: %d, want 503", rec.Code)
	}
	// A list file given and refused, no version of it shown: visitors sent
	// here for it would read "no block applies", so not ready until the
	// file is valid or gone.
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "example.list", noticeList)
	key.WriteList(t, dir, "bad.list", "garbage\n")
	srv, _ := New("", "", prometheus.NewRegistry())
	set := listset.New(listset.Config{Lists: []string{dir}, Keys: []minisign.PublicKey{key.Public}, MaxSize: 1 << 20},
		srv.Publish, Events{Log: log.New(io.Discard, "", 0), Server: srv}.Record)
	set.Scan()
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/ready", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "1 list files refused") {
		t.Errorf("ready with a refused list file: %d %q, want 503", code, body)
	}
	rec = httptest.NewRecorder()
	srv.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`regblock_notice_list_serial{list="example-csam"} 2.026112801e+09`,
		`regblock_notice_reloads_total{list="example-csam",result="applied"} 1`,
		`regblock_notice_reloads_total{list="unknown",result="parse_error"} 1`,
		"regblock_notice_lists_refused 1\n",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, rec.Body.String())
		}
	}
	os.Remove(filepath.Join(dir, "bad.list"))
	if code, _ := ready(); code != http.StatusOK {
		t.Errorf("ready once the refused file is gone: %d, want 200", code)
	}
	// A refused newer version leaves the one in force shown: ready.
	key.WriteList(t, dir, "example.list", strings.Replace(noticeList, "serial: 2026112801", "serial: 2026112700", 1))
	set.Scan()
	if code, body := ready(); code != http.StatusOK {
		t.Errorf("ready with a rollback refused and the list in force: %d %q, want 200", code, body)
	}
}
