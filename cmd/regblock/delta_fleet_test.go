package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/deltatest"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// origin is a regulator's web server: files from memory, with ETags,
// conditional and range requests (http.ServeContent), the cache lifetimes
// docs/deltas.md advises, and a count of what it sent by path and status.
type origin struct {
	mu    sync.Mutex
	files map[string][]byte
	sent  map[string]int // "PATH STATUS" -> responses
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	data, ok := o.files[strings.TrimPrefix(r.URL.Path, "/lists/")]
	o.mu.Unlock()
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		o.mu.Lock()
		o.sent[fmt.Sprintf("%s %d", r.URL.Path, rec.status)]++
		o.mu.Unlock()
	}()
	if !ok {
		http.NotFound(rec, r)
		return
	}
	if strings.Contains(r.URL.Path, ".d/") {
		rec.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		rec.Header().Set("Cache-Control", "public, max-age=1")
	}
	rec.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(data)))
	http.ServeContent(rec, r, "", time.Time{}, bytes.NewReader(data))
}

func (o *origin) put(name string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[name] = data
}

// take returns what the origin sent since the last take.
func (o *origin) take() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	sent := o.sent
	o.sent = map[string]int{}
	return sent
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// startCache runs nginx on loopback as a caching proxy in front of
// upstream, as an ISP's cache or a CDN would sit, and returns its address
// and its access log (PATH STATUS BYTES CACHE-STATUS a line).
func startCache(t *testing.T, upstream string) (addr, accessLog string) {
	nginx := testenv.Need(t, "nginx", "nginx")
	dir := t.TempDir()
	addr = "127.0.0.1:" + testenv.FreePort(t)
	accessLog = filepath.Join(dir, "access.log")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // it writes the cache in this test's directory
	}
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`%s
daemon off;
master_process off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 512; }
http {
    log_format short '$uri $status $body_bytes_sent $upstream_cache_status';
    access_log %[3]s short;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    proxy_cache_path %[2]s/cache keys_zone=lists:1m max_size=100m inactive=1h use_temp_path=off;
    server {
        listen %[4]s;
        location / {
            proxy_pass http://%[5]s;
            proxy_cache lists;
            proxy_cache_lock on;
            proxy_cache_revalidate on;
        }
    }
}
`, user, dir, accessLog, addr, upstream)), 0o644)
	// One process (master_process off), which the test ends by its PID.
	cmd := exec.Command(nginx, "-c", conf, "-p", dir)
	cmd.WaitDelay = 5 * time.Second
	testenv.Process(t, "nginx", cmd)
	testenv.Eventually(t, 10*time.Second, "nginx answers", func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return addr, accessLog
}

// stale is how long the cache keeps the list fresh at most: max-age=1
// counted in whole seconds.
const stale = 2100 * time.Millisecond

// TestSyncDeltasThroughCache: 20 resolvers, each synced by regblock sync
// through one nginx proxy_cache from the regulator's origin. A new version
// published with its delta reaches every resolver as the delta: the origin
// sends the delta once, the resolvers' directories keep the old whole list,
// and every resolver enforces the new serial. A version published without
// a delta reaches them whole.
func TestSyncDeltasThroughCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 resolvers and nginx")
	}
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	o := &origin{files: map[string][]byte{}, sent: map[string]int{}}
	web := httptest.NewServer(o)
	defer web.Close()
	cache, accessLog := startCache(t, strings.TrimPrefix(web.URL, "http://"))

	var filler strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&filler, "listed-%04d.example ORDER-2026-%04d csam\n", i, i)
	}
	v1 := exampleList + filler.String()
	v2 := strings.Replace(v1, "2026112801", "2026112802", 1) + "added.example ORDER-2026-2001 csam\n"
	v3 := strings.Replace(v2, "2026112802", "2026112803", 1) + "third.example ORDER-2026-2002 csam\n"
	publish := func(text string, deltaFrom string) {
		if deltaFrom != "" { // the delta first, as docs/deltas.md says
			serial := strings.Split(strings.SplitAfter(deltaFrom, "#! serial: ")[1], "\n")[0]
			d := deltatest.Text(t, deltaFrom, text, nil)
			o.put("example-csam.d/"+serial+".delta", []byte(d))
			o.put("example-csam.d/"+serial+".delta.minisig", key.Sign([]byte(d)))
		}
		o.put("example-csam.list", []byte(text))
		o.put("example-csam.list.minisig", key.Sign([]byte(text)))
	}
	type member struct{ dir, dns, metrics string }
	fleet := make([]member, fleetSize)
	syncAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, m := range fleet {
			wg.Go(func() {
				if code, _, stderr := regblock(t, "sync", "-once", "-url", "http://"+cache+"/lists/", "-insecure-http", "-name", "example-csam", "-dir", m.dir, "-p", pub); code != 0 {
					t.Errorf("sync into %s: exit %d, %s", m.dir, code, stderr)
				}
			})
		}
		wg.Wait()
	}
	blocked := func(m member, name string) bool {
		r, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), m.dns)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "192.0.2.80"
	}
	everyResolver := func(what string, cond func(m member) bool) {
		t.Helper()
		for i, m := range fleet {
			testenv.Eventually(t, 20*time.Second, fmt.Sprintf("resolver %d %s", i, what), func() bool { return cond(m) })
		}
	}
	onSerial := func(serial string) func(m member) bool {
		return func(m member) bool {
			got := metrics(t, http.DefaultClient, "http://"+m.metrics+"/metrics")
			want, _ := strconv.ParseFloat(serial, 64)
			return got[`coredns_regblock_list_serial{list="example-csam"}`] == want
		}
	}

	publish(v1, "")
	for i := range fleet {
		fleet[i] = member{dir: t.TempDir(), metrics: "127.0.0.1:" + testenv.FreePort(t)}
	}
	syncAll()
	for i, m := range fleet {
		fleet[i].dns = resolverEnv(t, nil, "regblock {\n lists "+m.dir+"\n pubkey "+pub+"\n notice 192.0.2.80\n}", "prometheus "+m.metrics)
	}
	everyResolver("enforces serial 1", func(m member) bool { return blocked(m, "abuse.example.") && !blocked(m, "added.example.") })

	// A new version and its delta. Once the cache's copy of the list is
	// stale, every resolver syncs at once.
	o.take()
	publish(v2, v1)
	time.Sleep(stale)
	logStart := fileSize(accessLog)
	start := time.Now()
	syncAll()
	everyResolver("enforces serial 2", func(m member) bool { return blocked(m, "added.example.") && onSerial("2026112802")(m) })
	t.Logf("%d resolvers enforce serial 2 %v after their syncs started", fleetSize, time.Since(start).Round(time.Millisecond))
	sent := o.take()
	if sent["/lists/example-csam.d/2026112801.delta 200"] != 1 || sent["/lists/example-csam.d/2026112801.delta.minisig 200"] != 1 {
		t.Errorf("the origin sent the delta and its signature %d and %d times, want once each (through the cache); it sent %v",
			sent["/lists/example-csam.d/2026112801.delta 200"], sent["/lists/example-csam.d/2026112801.delta.minisig 200"], sent)
	}
	// The whole list goes to the cache once for the first range request,
	// and again for each request that finds the cache's copy stale while
	// it is being refreshed (nginx locks only new entries): not asserted.
	for i, m := range fleet {
		if data, _ := os.ReadFile(filepath.Join(m.dir, "example-csam.list")); string(data) != v1 {
			t.Errorf("resolver %d's directory took the whole list of serial 2, not the delta", i)
		}
	}
	// Each resolver took the list's first 8 KiB and the delta.
	toResolvers := bytesSent(t, accessLog, logStart)
	t.Logf("the origin sent %v; the cache sent the resolvers %d bytes in all, against %d for the whole list to each",
		sent, toResolvers, fleetSize*len(v2))
	if toResolvers*5 > int64(fleetSize*len(v2)) {
		t.Errorf("the cache sent the resolvers %d bytes in all: more than a fifth of the whole list to each (%d)", toResolvers, fleetSize*len(v2))
	}

	// Nothing new: each resolver's sync costs one conditional request.
	time.Sleep(stale)
	logStart = fileSize(accessLog)
	syncAll()
	if lines := accessLines(t, accessLog, logStart); len(lines) != fleetSize || slices.ContainsFunc(lines, func(l string) bool { return !strings.HasPrefix(l, "/lists/example-csam.list 304 ") }) {
		t.Errorf("nothing new: the cache answered %q; want one 304 per resolver", lines)
	}

	// A version without a delta: the whole list.
	publish(v3, "")
	time.Sleep(stale)
	syncAll()
	everyResolver("enforces serial 3, fetched whole", func(m member) bool { return blocked(m, "third.example.") && onSerial("2026112803")(m) })
	for i, m := range fleet {
		if data, _ := os.ReadFile(filepath.Join(m.dir, "example-csam.list")); string(data) != v3 {
			t.Errorf("resolver %d's directory does not hold serial 3 whole", i)
		}
		if _, err := os.Stat(filepath.Join(m.dir, "example-csam.2026112801.delta")); !os.IsNotExist(err) {
			t.Errorf("resolver %d's directory keeps the delta the whole list replaced", i)
		}
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// accessLines returns the access log's lines after offset from.
func accessLines(t *testing.T, path string, from int64) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data[from:])), "\n")
}

// bytesSent sums the bytes the cache sent after offset from.
func bytesSent(t *testing.T, path string, from int64) int64 {
	var n int64
	for _, l := range accessLines(t, path, from) {
		if f := strings.Fields(l); len(f) >= 3 {
			b, _ := strconv.ParseInt(f[2], 10, 64)
			n += b
		}
	}
	return n
}
