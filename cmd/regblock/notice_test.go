package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestNoticeHeadersAndPrivacy runs regblock notice over HTTPS: the Link
// header comes only from a list whose appeal address is a clean https URL
// (one that would inject a second link is refused with its line), and
// neither a page view nor a failed TLS handshake puts a visitor's address
// in the log.
func TestNoticeHeadersAndPrivacy(t *testing.T) {
	dir := t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "example.list", exampleList)
	key.WriteList(t, dir, "injected.list", strings.NewReplacer(
		"name: example-csam", "name: injected",
		"appeal: https://complaints.regulator.example/", `appeal: https://complaints.regulator.example/>; rel="blocked-by", <https://evil.example/`,
		"abuse.example ", "injected.example ").Replace(exampleList))
	pub := key.WritePublic(t, t.TempDir())
	cert, certKey, pool := testenv.SelfSigned(t)
	addr := "127.0.0.1:" + testenv.FreePort(t)
	logs := testenv.Process(t, "regblock notice", exec.Command(bin, "notice", "-listen", addr, "-tls-cert", cert, "-tls-key", certKey, "-p", pub, dir))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(host string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	testenv.Eventually(t, 10*time.Second, "the notice server answers", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if resp := get("www.abuse.example"); resp.StatusCode != 451 || resp.Header.Get("Link") != `<https://complaints.regulator.example/>; rel="blocked-by"` {
		t.Errorf("a blocked host: %s, Link %q", resp.Status, resp.Header.Values("Link"))
	}
	if resp := get("injected.example"); resp.StatusCode != 404 || resp.Header.Get("Link") != "" {
		t.Errorf("a host of the list with the injected appeal: %s, Link %q; want the list refused", resp.Status, resp.Header.Values("Link"))
	}
	if !strings.Contains(logs.String(), "injected.list:6: appeal") {
		t.Errorf("the refusal does not name the appeal line:\n%s", logs)
	}

	// A client that speaks plain HTTP to the HTTPS port: a TLS handshake
	// error, which net/http logs with the client's address.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.0\r\nHost: www.abuse.example\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 512))
	c.Close()
	testenv.Eventually(t, 5*time.Second, "the handshake error is logged", func() bool {
		return strings.Contains(logs.String(), "TLS handshake error")
	})
	if strings.Contains(strings.ReplaceAll(logs.String(), addr, "the server"), "127.0.0.1:") {
		t.Errorf("the log holds a visitor's address:\n%s", logs)
	}
}

// TestNoticeDelta: the notice server follows a signed delta in its lists
// directory as the resolver does: a name the delta adds gets the notice
// page with its order, a name it removes no longer does.
func TestNoticeDelta(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	key := blocklisttest.NewKey(t)
	key.WriteList(t, dir, "example-csam.list", exampleList)
	pub := key.WritePublic(t, t.TempDir())
	next := strings.Replace(strings.Replace(exampleList, "2026112801", "2026112802", 1), "abuse.example          ORDER-2026-0012  csam\n", "", 1) +
		"added.example ORDER-2026-0099 csam\n"
	old := writeFile(t, work, "old.list", exampleList)
	nextPath := writeFile(t, work, "next.list", next)
	addr := "127.0.0.1:" + testenv.FreePort(t)
	testenv.Process(t, "regblock notice", exec.Command(bin, "notice", "-listen", addr, "-p", pub, dir))
	status := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		body := new(strings.Builder)
		io.Copy(body, resp.Body)
		return resp.StatusCode, body.String()
	}
	testenv.Eventually(t, 10*time.Second, "the notice server serves serial 1", func() bool { code, _ := status("abuse.example"); return code == 451 })

	delta := filepath.Join(work, "example-csam.2026112801.delta")
	if code, _, stderr := regblock(t, "delta", "-o", delta, old, nextPath); code != 0 {
		t.Fatalf("regblock delta: %s", stderr)
	}
	data, _ := os.ReadFile(delta)
	key.WriteList(t, dir, filepath.Base(delta), string(data))
	testenv.Eventually(t, 10*time.Second, "the notice page of a name the delta adds", func() bool {
		code, body := status("added.example")
		return code == 451 && strings.Contains(body, "ORDER-2026-0099")
	})
	if code, _ := status("abuse.example"); code != 404 {
		t.Errorf("a name the delta removes: %d, want 404", code)
	}
}
