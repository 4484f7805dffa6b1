package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/ledger"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// metrics scrapes url and returns each sample by its series.
func metrics(t *testing.T, client *http.Client, url string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			m[line[:i]] = v
		}
	}
	return m
}

// receiver runs regblock receipts over HTTPS on loopback until the test
// ends, and returns its base URL and a client that trusts its certificate.
func receiver(t *testing.T, dir, cert, key string, pubs ...string) (string, *http.Client) {
	t.Helper()
	return receiverWith(t, nil, dir, cert, key, pubs...)
}

// receiverWith is receiver with more flags.
func receiverWith(t *testing.T, flags []string, dir, cert, key string, pubs ...string) (string, *http.Client) {
	t.Helper()
	addr := "127.0.0.1:" + testenv.FreePort(t)
	args := append([]string{"receipts", "-listen", addr, "-dir", dir, "-p", strings.Join(pubs, ","), "-tls-cert", cert, "-tls-key", key}, flags...)
	testenv.Process(t, "regblock receipts", exec.Command(bin, args...))
	pool := testenv.Pool(t, cert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr
	testenv.Eventually(t, 10*time.Second, "the receiver answers", func() bool { return metrics(t, client, base+"/metrics") != nil })
	return base, client
}

// TestReceipts runs a resolver that sends receipts to the regulator's
// receiver over HTTPS (a test certificate, trusted through SSL_CERT_FILE):
// the receiver's metrics follow the serial in force and the ledger; the
// resolver's ledger, rewritten whole with a matching head or cut short, still
// verifies on its own but not against the receipts; and the receiver
// refuses forged, unknown-key, malformed and replayed receipts, and counts a
// shrinking ledger.
func TestReceipts(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	dir := t.TempDir()
	ispPub, ispSec := filepath.Join(dir, "isp.pub"), filepath.Join(dir, "isp.key")
	regblock(t, "keygen", "-W", "-p", ispPub, "-s", ispSec)
	// A second resolver's key is encrypted, as keygen makes by default:
	// regblockd takes its password from $REGBLOCK_PASSWORD.
	sealedPub, sealedSec, password, code, stderr := encryptedKey(t)
	if code != 0 {
		t.Fatal(stderr)
	}
	cert, certKey, _ := testenv.SelfSigned(t)
	store := t.TempDir()
	base, client := receiver(t, store, cert, certKey, ispPub, sealedPub)

	lists := t.TempDir()
	copyFile(t, f.v1, filepath.Join(lists, "example.list"))
	copyFile(t, f.v1+".minisig", filepath.Join(lists, "example.list.minisig"))
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	env := []string{"SSL_CERT_FILE=" + cert, "REGBLOCK_PASSWORD=" + password} // regblockd trusts the receiver's certificate
	resolverEnv(t, env, "regblock {\n lists "+lists+"\n pubkey "+f.pub+"\n notice 192.0.2.80\n audit "+audit+
		"\n receipts "+base+"/ "+ispSec+" r1\n receipts_every 1s\n}")
	resolverEnv(t, env, "regblock {\n lists "+lists+"\n pubkey "+f.pub+"\n notice 192.0.2.80\n receipts "+base+"/ "+sealedSec+" r2\n}")
	serial := `regblock_receipts_list_serial{list="example-csam",resolver="r1"}`
	events := `regblock_receipts_ledger_events{resolver="r1"}`
	testenv.Eventually(t, 20*time.Second, "the receiver has r1's first receipt", func() bool {
		m := metrics(t, client, base+"/metrics")
		return m[serial] == 2026112801 && m[events] == 1
	})
	// Decrypting the key (scrypt, 1 GiB) holds r2's start: slow under
	// -race on a busy machine.
	testenv.Eventually(t, 90*time.Second, "the receiver has r2's first receipt, signed with its encrypted key", func() bool {
		return metrics(t, client, base+"/metrics")[`regblock_receipts_list_serial{list="example-csam",resolver="r2"}`] > 0
	})

	// A new version: a receipt follows the ledger event.
	copyFile(t, f.v2+".minisig", filepath.Join(lists, "example.list.minisig.tmp"))
	copyFile(t, f.v2, filepath.Join(lists, "example.list.tmp"))
	os.Rename(filepath.Join(lists, "example.list.minisig.tmp"), filepath.Join(lists, "example.list.minisig"))
	os.Rename(filepath.Join(lists, "example.list.tmp"), filepath.Join(lists, "example.list"))
	testenv.Eventually(t, 20*time.Second, "the receiver sees serial 2026112802", func() bool {
		m := metrics(t, client, base+"/metrics")
		return m[serial] == 2026112802 && m[events] >= 2 && m[`regblock_receipts_last_timestamp_seconds{resolver="r1"}`] > 0
	})
	// Receipts keep coming every second; those that say nothing new are
	// counted but not stored again (one an hour is).
	var stored int
	var accepted float64
	testenv.Eventually(t, 30*time.Second, "repeated receipts are counted but not stored", func() bool {
		stored = strings.Count(string(mustReadBytes(t, filepath.Join(store, "r1.jsonl"))), "\n")
		accepted = metrics(t, client, base+"/metrics")[`regblock_receipts_total{resolver="r1",result="accepted"}`]
		return accepted >= float64(stored)+2
	})
	if stored > 3 {
		t.Errorf("%d receipts accepted, %d stored: want the two states stored (three at most), the repeats only counted", int(accepted), stored)
	}

	if code, stdout, stderr := regblock(t, "verify-ledger", "-receipts", store, "-resolver", "r1", audit); code != 0 || !strings.Contains(stdout, "receipts of resolver r1:") {
		t.Fatalf("the true ledger against its receipts: exit %d\n%s%s", code, stdout, stderr)
	}

	// Anyone holding the ISP's public key can check a stored receipt with
	// the stock minisign CLI: the body as received, the signature decoded.
	ms := testenv.Need(t, "minisign", "minisign")
	recs, _, err := receipts.Load(filepath.Join(store, "r1.jsonl"))
	if err != nil || len(recs) == 0 {
		t.Fatalf("stored receipts: %v, %d", err, len(recs))
	}
	sigText, err := base64.StdEncoding.DecodeString(recs[0].Signature)
	if err != nil {
		t.Fatal(err)
	}
	bodyFile := filepath.Join(t.TempDir(), "receipt.json")
	os.WriteFile(bodyFile, recs[0].Body, 0o644)
	os.WriteFile(bodyFile+".minisig", sigText, 0o644)
	if out, err := exec.Command(ms, "-V", "-m", bodyFile, "-p", ispPub).CombinedOutput(); err != nil {
		t.Errorf("stock minisign does not verify a stored receipt: %v\n%s", err, out)
	}

	// Receipts that commit to no ledger event (sent without an audit log)
	// vouch for no ledger.
	if code, stdout, _ := regblock(t, "verify-ledger", "-receipts", store, "-resolver", "r-none", audit); code != 2 {
		t.Errorf("a resolver without receipts: exit %d %s", code, stdout)
	}
	none := filepath.Join(t.TempDir(), "store")
	os.Mkdir(none, 0o750)
	noneBody, noneSig, _ := receipt.Sign(receipt.Receipt{Resolver: "r0", Time: time.Now()}, mustSecret(t, ispSec))
	rec, _ := json.Marshal(receipts.Record{Received: time.Now(), Key: "00", Result: "accepted", Body: noneBody, Signature: noneSig})
	os.WriteFile(filepath.Join(none, "r0.jsonl"), append(rec, '\n'), 0o640)
	if code, stdout, _ := regblock(t, "verify-ledger", "-receipts", none, "-resolver", "r0", audit); code != 1 || !strings.Contains(stdout, "nothing here vouches for this ledger") {
		t.Errorf("receipts that commit to no ledger event: exit %d %s", code, stdout)
	}

	// Whose ledger it is, is the auditor's to say.
	if code, _, stderr := regblock(t, "verify-ledger", "-receipts", store, audit); code != 2 || !strings.Contains(stderr, "-receipts needs -resolver ID") {
		t.Errorf("-receipts without -resolver: exit %d %s", code, stderr)
	}

	// Rewritten whole, with a head to match: the chain verifies, the
	// receipts do not.
	data, _ := os.ReadFile(audit)
	var events2 []ledger.Event
	for line := range strings.Lines(string(data)) {
		var e ledger.Event
		json.Unmarshal([]byte(line), &e)
		if e.Event == ledger.ListApplied {
			events2 = append(events2, e)
		}
	}
	forged := filepath.Join(t.TempDir(), "audit.jsonl")
	events2[0].File = "somewhere/else.list" // what an ISP might want the ledger to say
	writeLedger(t, forged, "", events2)
	os.WriteFile(forged+".head", append(bytes.TrimSpace(mustReadBytes(t, forged+".head")), []byte(" "+strconv.Itoa(len(events2))+"\n")...), 0o640)
	if code, _, stderr := regblock(t, "verify-ledger", forged); code != 0 {
		t.Fatalf("the rewritten ledger should verify on its own: exit %d, %s", code, stderr)
	}
	if code, stdout, stderr := regblock(t, "verify-ledger", "-receipts", store, "-resolver", "r1", forged); code != 1 || !strings.Contains(stdout, "edited or rewritten") {
		t.Errorf("the rewritten ledger against the receipts: exit %d\n%s%s", code, stdout, stderr)
	}
	// Cut short, its head rewritten to the line before.
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	var kept strings.Builder
	var lastLedger string
	ledgerLines := 0
	for _, line := range lines {
		if strings.Contains(line, `"event":"list_applied"`) {
			if ledgerLines == 1 {
				break // drop the second ledger event and all after it
			}
			ledgerLines++
			lastLedger = strings.TrimSuffix(line, "\n")
		}
		kept.WriteString(line)
	}
	cut := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(cut, []byte(kept.String()), 0o640)
	os.WriteFile(cut+".head", []byte(ledger.Hash([]byte(lastLedger))+" 1\n"), 0o640)
	if code, _, stderr := regblock(t, "verify-ledger", cut); code != 0 {
		t.Fatalf("the cut ledger should verify on its own: exit %d, %s", code, stderr)
	}
	if code, stdout, _ := regblock(t, "verify-ledger", "-receipts", store, "-resolver", "r1", cut); code != 1 || !strings.Contains(stdout, "the head was cut") {
		t.Errorf("the cut ledger against the receipts: exit %d\n%s", code, stdout)
	}

	// Cut at the front, its head claiming a thousand events before: the
	// chain verifies from the first line kept, and the head's count is the
	// ledger's word, not evidence for the events the receipts name.
	var front strings.Builder
	seen := 0
	for _, line := range lines {
		if strings.Contains(line, `"event":"list_applied"`) {
			seen++
		}
		if seen >= 2 {
			front.WriteString(line)
		}
	}
	fabricated := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(fabricated, []byte(front.String()), 0o640)
	head, _, _ := strings.Cut(string(mustReadBytes(t, audit+".head")), " ")
	os.WriteFile(fabricated+".head", []byte(strings.TrimSpace(head)+" 1000\n"), 0o640)
	if code, _, stderr := regblock(t, "verify-ledger", fabricated); code != 0 {
		t.Fatalf("the ledger cut at the front should verify on its own: exit %d, %s", code, stderr)
	}
	if code, stdout, _ := regblock(t, "verify-ledger", "-receipts", store, "-resolver", "r1", fabricated); code != 1 || !strings.Contains(stdout, "give the rotated files that hold it") {
		t.Errorf("the ledger cut at the front, its head claiming 1000 events, against the receipts: exit %d\n%s", code, stdout)
	}

	// What the receiver refuses, and what it counts.
	ispKey, err := minisig.ReadSecretKey(ispSec, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := minisign.GenerateKey(nil)
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest("POST", base+"/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, sig)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// They name r9, a resolver of the ISP's key that only this test reports
	// for (the live resolvers keep sending theirs meanwhile), known to the
	// receiver from a first receipt with two ledger events.
	first, firstSig, _ := receipt.Sign(receipt.Receipt{Resolver: "r9", Time: time.Now(), Ledger: receipt.Ledger{Head: "01", Events: 2}}, ispKey)
	if got := post(first, firstSig); got != 204 {
		t.Fatalf("r9's first receipt: HTTP %d", got)
	}
	later := receipt.Receipt{Resolver: "r9", Time: time.Now().Add(time.Minute), Ledger: receipt.Ledger{Head: "00", Events: 1}}
	body, sig, _ := receipt.Sign(later, ispKey)
	forgedBody := bytes.Replace(body, []byte(`"events":1`), []byte(`"events":9`), 1)
	_, otherSig, _ := receipt.Sign(later, otherKey)
	for _, c := range []struct {
		what   string
		body   []byte
		sig    string
		status int
		result string
	}{
		{"a body altered after signing", forgedBody, sig, 403, "bad_signature"},
		{"a key the receiver does not know", body, otherSig, 403, "unknown_key"},
		{"no signature", body, "", 400, "malformed"},
		{"a shrinking ledger", body, sig, 204, "ledger_shrunk"},
		{"the same receipt again", body, sig, 409, "replayed"},
	} {
		before := metrics(t, client, base+"/metrics")
		if got := post(c.body, c.sig); got != c.status {
			t.Errorf("%s: HTTP %d, want %d", c.what, got, c.status)
		}
		// Each names r9, a resolver the receiver knows, but what is not
		// signed by its key is counted under "unknown": anyone can claim it.
		resolver := "r9"
		if c.status == 400 || c.status == 403 {
			resolver = "unknown"
		}
		series := `regblock_receipts_total{resolver="` + resolver + `",result="` + c.result + `"}`
		if after := metrics(t, client, base+"/metrics"); after[series] != before[series]+1 {
			t.Errorf("%s: %s went from %v to %v", c.what, series, before[series], after[series])
		}
	}
	// A validly signed receipt whose resolver name is a path: refused, and
	// nothing is written outside the store.
	escape := later
	escape.Resolver = "../escaped"
	body, sig, _ = receipt.Sign(escape, ispKey)
	if got := post(body, sig); got != 400 {
		t.Errorf("a resolver name that is a path: HTTP %d, want 400", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(store), "escaped.jsonl")); err == nil {
		t.Error("a receipt was written outside the store")
	}

	// A receiver started again on the store knows each resolver from its
	// file: what its last receipt stored said.
	base2, client2 := receiver(t, store, cert, certKey, ispPub)
	m := metrics(t, client2, base2+"/metrics")
	if m[serial] != 2026112802 || m[events] < 2 || m[`regblock_receipts_ledger_events{resolver="r9"}`] != 1 {
		t.Errorf("after a restart: %s = %v, %s = %v, r9's events %v; want serial 2026112802, 2 events or more, r9's 1",
			serial, m[serial], events, m[events], m[`regblock_receipts_ledger_events{resolver="r9"}`])
	}
}

func mustSecret(t *testing.T, path string) minisign.PrivateKey {
	t.Helper()
	k, err := minisig.ReadSecretKey(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustReadBytes(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustReadBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReceiverHostileISP: what one ISP key can send does not stop the
// regulator's receiver or spoil the evidence. A receipt of 250 000 '<' and
// odd spacing is kept byte for byte (stock minisign verifies it, extracted
// as docs/receipts.md shows); one dated 2036 is refused rather than locking
// the resolver out; the name "unknown" is refused; and a receiver started
// again on a file torn by a full disk starts, sets the torn line aside and
// stores the next receipt on a line of its own.
func TestReceiverHostileISP(t *testing.T) {
	ms := testenv.Need(t, "minisign", "minisign")
	jq := testenv.Need(t, "jq", "jq")
	dir, store := t.TempDir(), t.TempDir()
	ispPub, ispSec := filepath.Join(dir, "isp.pub"), filepath.Join(dir, "isp.key")
	regblock(t, "keygen", "-W", "-p", ispPub, "-s", ispSec)
	ispKey, err := minisig.ReadSecretKey(ispSec, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	var base string
	client := &http.Client{Timeout: 5 * time.Second}
	start := func() {
		t.Helper()
		if cmd != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		addr := "127.0.0.1:" + testenv.FreePort(t)
		cmd = exec.Command(bin, "receipts", "-listen", addr, "-dir", store, "-p", ispPub)
		testenv.Process(t, "regblock receipts", cmd)
		base = "http://" + addr
		testenv.Eventually(t, 10*time.Second, "the receiver answers", func() bool { return metrics(t, client, base+"/metrics") != nil })
	}
	post := func(body []byte) int {
		req, _ := http.NewRequest("POST", base+"/", bytes.NewReader(body))
		req.Header.Set(receipt.SignatureHeader, base64.StdEncoding.EncodeToString(minisign.Sign(ispKey, body)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	start()

	now := time.Now().UTC()
	hostile := fmt.Appendf(nil, `{"resolver":  "r1", "time": %q, "lists": [], "ledger": {"head": "%s", "events": 1}}`, now.Format(time.RFC3339), strings.Repeat("<", 250_000))
	if got := post(hostile); got != 204 {
		t.Fatalf("a receipt of 250 000 '<': HTTP %d", got)
	}
	if got := post(fmt.Appendf(nil, `{"resolver":"r1","time":"2036-01-01T00:00:00Z","ledger":{"head":"00","events":2}}`)); got != 400 {
		t.Errorf("a receipt dated 2036: HTTP %d, want 400", got)
	}
	if m := metrics(t, client, base+"/metrics"); m[`regblock_receipts_total{resolver="r1",result="future"}`] != 1 {
		t.Errorf("the receipt dated 2036 is not counted as future")
	}
	if got := post(fmt.Appendf(nil, `{"resolver":"unknown","time":%q}`, now.Format(time.RFC3339))); got != 400 {
		t.Errorf("a resolver named unknown: HTTP %d, want 400", got)
	}

	// Anyone with the ISP's public key checks the stored receipt with stock
	// minisign, extracted with jq and base64 as docs/receipts.md says.
	check := filepath.Join(t.TempDir(), "receipt.json")
	extract := fmt.Sprintf(`sed -n 1p %[1]s | %[2]s -r .body | base64 -d > %[3]s && sed -n 1p %[1]s | %[2]s -r .signature | base64 -d > %[3]s.minisig`,
		filepath.Join(store, "r1.jsonl"), jq, check)
	if out, err := exec.Command("bash", "-c", extract).CombinedOutput(); err != nil {
		t.Fatalf("extracting: %v\n%s", err, out)
	}
	if !bytes.Equal(mustReadBytes(t, check), hostile) {
		t.Error("the stored receipt is not the bytes that were signed")
	}
	if out, err := exec.Command(ms, "-V", "-m", check, "-p", ispPub).CombinedOutput(); err != nil {
		t.Errorf("stock minisign does not verify the stored receipt: %v\n%s", err, out)
	}

	// A full disk tore the last line; the receiver starts again all the same.
	f, _ := os.OpenFile(filepath.Join(store, "r1.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"received":"2026-12-01T10:00:00Z","key":"00","result":"accepted","body":"eyJyZXNvbHZlciI6`)
	f.Close()
	start()
	m := metrics(t, client, base+"/metrics")
	if m["regblock_receipts_damaged_lines_total"] != 1 || m[`regblock_receipts_ledger_events{resolver="r1"}`] != 1 {
		t.Errorf("after a torn line: damaged %v, r1's events %v; want 1, 1", m["regblock_receipts_damaged_lines_total"], m[`regblock_receipts_ledger_events{resolver="r1"}`])
	}
	if got := post(fmt.Appendf(nil, `{"resolver":"r1","time":%q,"ledger":{"head":"00","events":2}}`, now.Add(time.Second).Format(time.RFC3339))); got != 204 {
		t.Errorf("the next receipt after the restart: HTTP %d", got)
	}
	if recs, damaged, err := receipts.Load(filepath.Join(store, "r1.jsonl")); err != nil || damaged != 0 || len(recs) != 2 {
		t.Errorf("r1's file: %d records, %d damaged lines, %v; want 2, 0", len(recs), damaged, err)
	}
	if aside, _ := filepath.Glob(filepath.Join(store, "r1.jsonl"+receipts.DamagedSuffix+"*")); len(aside) != 1 {
		t.Errorf("the torn file is not kept aside: %v", aside)
	}
}

// TestReceiverMetricsApart: with -metrics, the receipts address serves no
// metrics (ISPs reach it), and the metrics address does.
func TestReceiverMetricsApart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub := filepath.Join(dir, "isp.pub")
	regblock(t, "keygen", "-W", "-p", pub, "-s", filepath.Join(dir, "isp.key"))
	cert, certKey, _ := testenv.SelfSigned(t)
	metricsAddr := "127.0.0.1:" + testenv.FreePort(t)
	base, client := receiverWith(t, []string{"-metrics", metricsAddr}, t.TempDir(), cert, certKey, pub)
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /metrics on the receipts address: HTTP %d, want 405", resp.StatusCode)
	}
	testenv.Eventually(t, 10*time.Second, "the metrics address serves the receiver's metrics", func() bool {
		_, ok := metrics(t, http.DefaultClient, "http://"+metricsAddr+"/metrics")["regblock_receipts_damaged_lines_total"]
		return ok
	})
}
