package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestDaemons runs the three toolkit daemons (notice, receipts, sync
// -every) as an operator would, with -log-format json: each serves the
// process's and the Go runtime's metrics beside its own, logs one JSON
// object a line with a level, and closes a connection whose client never
// finishes its request headers.
func TestDaemons(t *testing.T) {
	t.Parallel()
	key := blocklisttest.NewKey(t)
	pub := key.WritePublic(t, t.TempDir())
	lists := t.TempDir()
	key.WriteList(t, lists, "example.list", exampleList)
	free := func() string { return "127.0.0.1:" + testenv.FreePort(t) }

	noticeAddr, noticeMetrics, receiptsAddr, syncMetrics := free(), free(), free(), free()
	daemons := []struct {
		name, metrics string
		args          []string
	}{
		{"notice", noticeMetrics, []string{"notice", "-listen", noticeAddr, "-metrics", noticeMetrics, "-p", pub, lists}},
		{"receipts", receiptsAddr, []string{"receipts", "-listen", receiptsAddr, "-dir", t.TempDir(), "-p", pub}},
		// A publisher that is not there: each run fails and logs an error.
		{"sync", syncMetrics, []string{"sync", "-url", "http://" + free() + "/", "-insecure-http", "-name", "example", "-dir", t.TempDir(), "-p", pub,
			"-every", "1s", "-retries", "0", "-metrics", syncMetrics}},
	}
	for _, d := range daemons {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel() // each waits out a header timeout
			logs := testenv.Process(t, "regblock "+d.name, exec.Command(bin, append([]string{d.args[0], "-log-format", "json"}, d.args[1:]...)...))
			var body string
			testenv.Eventually(t, 20*time.Second, d.name+" serves /metrics", func() bool {
				resp, err := http.Get("http://" + d.metrics + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				data, _ := io.ReadAll(resp.Body)
				body = string(data)
				return resp.StatusCode == http.StatusOK
			})
			for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "go_memstats_heap_alloc_bytes"} {
				if !strings.Contains(body, "\n"+name+" ") {
					t.Errorf("%s's /metrics has no %s", d.name, name)
				}
			}

			// A client that sends part of a request line and waits.
			conn, err := net.Dial("tcp", d.metrics)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: a"))
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			start := time.Now()
			if _, err := io.ReadAll(conn); err != nil {
				t.Errorf("%s kept a connection with unfinished headers open for %v: %v", d.name, time.Since(start).Round(time.Second), err)
			}

			levels := map[string]bool{}
			testenv.Eventually(t, 20*time.Second, d.name+" logs JSON", func() bool {
				sc := bufio.NewScanner(strings.NewReader(logs.String()))
				for sc.Scan() {
					var line struct{ Time, Level, Msg, Daemon string }
					if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Time == "" || line.Msg == "" || line.Daemon != d.name {
						t.Fatalf("%s: not a JSON log line of %s: %q (%v)", d.name, d.name, sc.Text(), err)
					}
					levels[line.Level] = true
				}
				if d.name == "sync" { // its runs fail
					return levels["ERROR"]
				}
				return levels["INFO"]
			})
		})
	}
	if code, _, stderr := regblock(t, "receipts", "-listen", free(), "-dir", t.TempDir(), "-p", pub, "-log-format", "xml"); code != 2 || !strings.Contains(stderr, "want text or json") {
		t.Errorf("-log-format xml: exit %d, %s", code, stderr)
	}
}
