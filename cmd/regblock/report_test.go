package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/internal/upstreamtest"
	"github.com/regblock/regblock/plugin/pkg/minisig"
)

// TestReportFromFleet runs three resolvers of two ISPs that send receipts
// to the regulator's receiver, publishes a list in two versions (the
// second as a delta too) and a hashed list, makes known numbers of blocked
// queries (one resolver restarted in between), and checks the report
// built from the store and the publisher's directory: every figure of its
// JSON, the times to enforce within what the test saw, the threshold rule,
// the same bytes from a second run, a page with SVG charts that loads and
// runs nothing, and no name of the hashed list anywhere. It then shows the
// page to Chromium.
func TestReportFromFleet(t *testing.T) {
	t.Parallel()
	start := time.Now().UTC()
	if midnight := start.Truncate(24 * time.Hour); start.Sub(midnight) < 5*time.Minute || start.Sub(midnight) > 23*time.Hour+50*time.Minute {
		t.Skip("near midnight UTC, the day's figures could fall on two days")
	}
	bin := regblockd(t)
	dir := t.TempDir()
	regulatorPub, regulatorSec := filepath.Join(dir, "regulator.pub"), filepath.Join(dir, "regulator.key")
	regblock(t, "keygen", "-W", "-p", regulatorPub, "-s", regulatorSec)
	ispKeys := t.TempDir()
	var ispSec, ispID [2]string
	for i := range ispSec {
		ispSec[i] = filepath.Join(dir, fmt.Sprintf("isp%d.key", i))
		pub := filepath.Join(ispKeys, fmt.Sprintf("isp%d.pub", i))
		regblock(t, "keygen", "-W", "-p", pub, "-s", ispSec[i])
		k, err := minisig.ReadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		ispID[i] = fmt.Sprintf("%016X", k.ID())
	}
	sign := func(path string) {
		t.Helper()
		if code, _, stderr := regblock(t, "sign", "-s", regulatorSec, path); code != 0 {
			t.Fatalf("sign %s: %s", path, stderr)
		}
	}

	// The publisher's directory: the first version kept whole beside the
	// list, and the hashed list.
	published := t.TempDir()
	list := func(serial int, issued time.Time, entries ...string) string {
		return fmt.Sprintf("#! regblock-list 1\n#! name: example-csam\n#! issuer: Example Communications Commission\n#! serial: %d\n#! issued: %s\n#! authority: Example Communications Act 1998, section 263(2)\n%s\n",
			serial, issued.Format(time.RFC3339), strings.Join(entries, "\n"))
	}
	v1Issued := start.Add(-time.Minute).Truncate(time.Second)
	v1 := writeFile(t, published, "example-csam.1.list", list(1, v1Issued, "abuse.example ORDER-A csam"))
	sign(v1)
	plain := writeFile(t, dir, "worst-of.plain", strings.NewReplacer("example-csam", "worst-of", "ORDER-A", "ORDER-W").Replace(
		list(1, v1Issued, "hidden-one.example ORDER-W csam", "hidden-two.example ORDER-W csam")))
	worst := filepath.Join(published, "worst-of.list")
	if code, _, stderr := regblock(t, "hash", "-o", worst, plain); code != 0 {
		t.Fatal(stderr)
	}
	sign(worst)

	// The receiver keeps a receipt that says nothing new every 5 s rather
	// than every hour, so that the counts reach the store in the test's
	// time.
	cert, certKey, _ := testenv.SelfSigned(t)
	store := t.TempDir()
	base, client := receiverWith(t, []string{"-keep-every", "5s"}, store, cert, certKey, ispKeys)

	type resolverProc struct {
		id, dir, addr string
		cmd           *exec.Cmd
	}
	up := upstreamtest.Start(t)
	startResolver := func(r *resolverProc, isp int) {
		t.Helper()
		if r.addr == "" {
			r.addr = "127.0.0.1:" + testenv.FreePort(t)
		}
		conf := filepath.Join(r.dir, "..", r.id+".Corefile")
		os.WriteFile(conf, []byte(".:"+strings.Split(r.addr, ":")[1]+" {\n bind 127.0.0.1\n regblock {\n  lists "+r.dir+"\n  pubkey "+regulatorPub+
			"\n  notice 192.0.2.80\n  receipts "+base+"/ "+ispSec[isp]+" "+r.id+"\n  receipts_every 1s\n }\n forward . "+up.Addr+"\n}\n"), 0o644)
		r.cmd = exec.Command(bin, "-conf", conf)
		r.cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+cert)
		testenv.Process(t, r.id, r.cmd)
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		testenv.Eventually(t, 20*time.Second, r.id+" answers", func() bool {
			_, _, err := c.Exchange(new(dns.Msg).SetQuestion("ready.test.", dns.TypeA), r.addr)
			return err == nil
		})
	}
	fleet := []*resolverProc{{id: "r1"}, {id: "r2"}, {id: "r3"}}
	for i, r := range fleet {
		r.dir = filepath.Join(t.TempDir(), "lists")
		os.Mkdir(r.dir, 0o755)
		for _, f := range []string{"worst-of.list", "worst-of.list.minisig"} {
			copyFile(t, filepath.Join(published, f), filepath.Join(r.dir, f))
		}
		copyFile(t, v1+".minisig", filepath.Join(r.dir, "example-csam.list.minisig"))
		copyFile(t, v1, filepath.Join(r.dir, "example-csam.list"))
		startResolver(r, min(i/2, 1)) // r1 and r2 are the first ISP's, r3 the second's
	}
	receiverSays := func(series string) float64 { return metrics(t, client, base+"/metrics")[series] }
	for _, r := range fleet {
		testenv.Eventually(t, 30*time.Second, "the receiver has "+r.id+" on serial 1", func() bool {
			return receiverSays(`regblock_receipts_list_serial{list="example-csam",resolver="`+r.id+`"}`) == 1
		})
	}
	block := func(r *resolverProc, name string, times int) {
		t.Helper()
		for range times {
			resp, err := dns.Exchange(new(dns.Msg).SetQuestion(name+".", dns.TypeA), r.addr)
			if err != nil || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
				t.Fatalf("%s on %s: not blocked: %v %v", name, r.id, resp, err)
			}
		}
	}
	block(fleet[0], "abuse.example", 12)
	block(fleet[0], "hidden-one.example", 2)
	block(fleet[1], "abuse.example", 3)

	// The second version, published whole and as a delta, lands on r1
	// and r2 only. It is issued on a whole second after the resolvers'
	// first receipts: a resolver's time runs from the later of the two.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	v2Issued := time.Now().UTC().Truncate(time.Second)
	v2 := writeFile(t, published, "example-csam.list", list(2, v2Issued, "abuse.example ORDER-A csam", "added.example ORDER-B csam"))
	sign(v2)
	os.Mkdir(filepath.Join(published, "example-csam.d"), 0o755)
	delta := filepath.Join(published, "example-csam.d", "1.delta")
	if code, _, stderr := regblock(t, "delta", v1, v2, "-o", delta); code != 0 {
		t.Fatal(stderr)
	}
	sign(delta)
	landed := time.Now()
	seen := map[string]time.Time{}
	for _, r := range fleet[:2] {
		copyFile(t, v2+".minisig", filepath.Join(r.dir, "example-csam.list.minisig"))
		copyFile(t, v2, filepath.Join(r.dir, "example-csam.list.tmp"))
		os.Rename(filepath.Join(r.dir, "example-csam.list.tmp"), filepath.Join(r.dir, "example-csam.list"))
	}
	testenv.Eventually(t, 30*time.Second, "the receiver has r1 and r2 on serial 2", func() bool {
		m := metrics(t, client, base+"/metrics")
		for _, id := range []string{"r1", "r2"} {
			if _, ok := seen[id]; !ok && m[`regblock_receipts_list_serial{list="example-csam",resolver="`+id+`"}`] == 2 {
				seen[id] = time.Now()
			}
		}
		return len(seen) == 2
	})

	// r2 starts again: its counts start from zero.
	fleet[1].cmd.Process.Kill()
	fleet[1].cmd.Wait()
	startResolver(fleet[1], 0)
	block(fleet[1], "added.example", 4)

	report := func(out string, lang string) []byte {
		t.Helper()
		os.MkdirAll(out, 0o755)
		code, _, stderr := regblock(t, "report", "-receipts", store, "-lists", published, "-p", regulatorPub,
			"-from", start.Format(time.DateOnly), "-to", start.Add(24*time.Hour).Format(time.DateOnly), "-lang", lang,
			"-o", filepath.Join(out, "report.html"), "-json", filepath.Join(out, "report.json"), "-csv", filepath.Join(out, "csv"))
		if code != 0 {
			t.Fatalf("report: exit %d: %s", code, stderr)
		}
		return mustReadBytes(t, filepath.Join(out, "report.json"))
	}
	type version struct {
		Serial                  uint64
		Added, Removed, Entries *int
		Resolvers               int
		Within                  *float64 `json:"within_deadline"`
		Never                   []string
		Median                  *float64 `json:"median_seconds"`
		P95                     *float64 `json:"p95_seconds"`
		Worst                   *float64 `json:"worst_seconds"`
	}
	var got struct {
		Lists []struct {
			Name                   string
			Hashed                 bool
			Added, Removed, Orders int
			Entries                *int
			Versions               []version
			Days                   []struct {
				Date    string
				Queries any
			} `json:"blocked_per_day"`
		}
		ISPs []struct {
			Key       string
			Resolvers int
			Within    *float64 `json:"within_deadline"`
		}
	}
	first := filepath.Join(t.TempDir(), "first")
	// The counts reach the store with the next receipt kept.
	testenv.Eventually(t, 60*time.Second, "the report counts r2's queries after its restart", func() bool {
		json.Unmarshal(report(first, "en"), &got)
		return len(got.Lists) == 2 && len(got.Lists[0].Days) == 1 && got.Lists[0].Days[0].Queries == float64(12+3+4)
	})
	if time.Now().UTC().Format(time.DateOnly) != start.Format(time.DateOnly) {
		t.Skip("midnight UTC passed during the test")
	}

	l := got.Lists[0]
	if l.Name != "example-csam" || l.Hashed || l.Added != 1 || l.Removed != 0 || l.Orders != 1 || l.Entries == nil || *l.Entries != 2 || len(l.Versions) != 2 {
		t.Fatalf("example-csam: %+v", l)
	}
	if v := l.Versions[0]; v.Serial != 1 || v.Added != nil || *v.Entries != 1 || v.Resolvers != 3 || *v.Within != 1 || *v.Worst != 0 || len(v.Never) != 0 {
		t.Errorf("version 1 (every resolver had it from its first receipt): %+v", v)
	}
	v := l.Versions[1]
	if v.Serial != 2 || *v.Added != 1 || *v.Removed != 0 || *v.Entries != 2 || v.Resolvers != 3 || *v.Within != 0.6667 || fmt.Sprint(v.Never) != "[r3]" {
		t.Errorf("version 2 (r1 and r2 enforced it, r3 never did): %+v", v)
	}
	// Each time runs from the issue to a receipt the receiver stored
	// between the file landing and the test seeing it in the metrics.
	lo := landed.Sub(v2Issued).Seconds() - 0.001
	hi := max(seen["r1"].Sub(v2Issued), seen["r2"].Sub(v2Issued)).Seconds() + 0.001
	if v.Median == nil || v.Worst == nil || *v.Median < lo || *v.Worst > hi || *v.Median > *v.Worst || *v.P95 != *v.Worst {
		t.Errorf("version 2's times: median %v, 95 %% %v, slowest %v; want within [%.3f, %.3f] s", show(v.Median), show(v.P95), show(v.Worst), lo, hi)
	}
	if hi-lo > 10 {
		t.Errorf("the receipts came %.1f s after the version landed: more than their interval and a reload", hi-lo)
	}

	w := got.Lists[1]
	if w.Name != "worst-of" || !w.Hashed || w.Orders != 0 || len(w.Versions) != 1 || w.Versions[0].Resolvers != 3 || w.Days[0].Queries != "< 10" {
		t.Errorf("worst-of (2 queries blocked: shown below the threshold): %+v", w)
	}
	if len(got.ISPs) != 2 || got.ISPs[0].Resolvers+got.ISPs[1].Resolvers != 3 {
		t.Fatalf("ISPs: %+v", got.ISPs)
	}
	for _, isp := range got.ISPs {
		// The first ISP's two resolvers enforced all three versions; the
		// second's one resolver two of three.
		want := map[string]string{ispID[0]: "2 1", ispID[1]: "1 0.6667"}[isp.Key]
		if have := fmt.Sprintf("%d %v", isp.Resolvers, show(isp.Within)); have != want {
			t.Errorf("ISP %s: resolvers and share %s, want %q", isp.Key, have, want)
		}
	}

	// A second run: the same bytes, in every form.
	second := filepath.Join(t.TempDir(), "second")
	report(second, "en")
	for _, f := range []string{"report.html", "report.json", "csv/lists.csv", "csv/versions.csv", "csv/blocked.csv", "csv/isps.csv"} {
		if !bytes.Equal(mustReadBytes(t, filepath.Join(first, f)), mustReadBytes(t, filepath.Join(second, f))) {
			t.Errorf("%s differs between two runs on the same inputs", f)
		}
	}
	malay := filepath.Join(t.TempDir(), "ms")
	report(malay, "ms")
	for _, out := range []string{first, malay} {
		page := string(mustReadBytes(t, filepath.Join(out, "report.html")))
		if strings.Count(page, "<svg") < 3 { // enforcement of example-csam, use of both lists
			t.Errorf("%s: %d SVG charts, want 3 or more", out, strings.Count(page, "<svg"))
		}
		for _, outside := range []string{"<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe", "<object", "http:", "https:"} {
			if strings.Contains(page, outside) {
				t.Errorf("%s: the page has %q: it must load and run nothing", out, outside)
			}
		}
		if !strings.Contains(page, "19") || !strings.Contains(page, "&lt; 10") {
			t.Errorf("%s: the page lacks the day's counts", out)
		}
	}
	if page := string(mustReadBytes(t, filepath.Join(malay, "report.html"))); !strings.Contains(page, `lang="ms"`) || !strings.Contains(page, "Laporan ketelusan") {
		t.Error("the Malay page is not in Malay")
	}
	filepath.WalkDir(filepath.Dir(first), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && bytes.Contains(mustReadBytes(t, path), []byte("hidden-")) {
			t.Errorf("%s names an entry of the hashed list", path)
		}
		return nil
	})

	t.Run("in Chromium", func(t *testing.T) {
		testenv.Need(t, "chromium", "chromium")
		shots := t.TempDir()
		page := "file://" + filepath.Join(first, "report.html")
		browser := func(args ...string) []byte { return testenv.Chromium(t, shots, append(args, page)...) }
		dom := browser("--dump-dom")
		for _, want := range []string{"<h1>Transparency report: sites blocked by legal order</h1>", "<svg", "<rect", "example-csam", "worst-of"} {
			if !bytes.Contains(dom, []byte(want)) {
				t.Errorf("the DOM Chromium rendered lacks %q", want)
			}
		}
		shot := filepath.Join(shots, "report.png")
		browser("--screenshot="+shot, "--window-size=1000,1500", "--hide-scrollbars")
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if len(png) < 20000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("screenshot %s is %d bytes, not a rendered page", shot, len(png))
		}
		if keep := os.Getenv("REGBLOCK_KEEP_SCREENSHOT"); keep != "" {
			os.WriteFile(keep, png, 0o644)
		}
	})
}

func show(f *float64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}

// TestReportMonth: -month previous is the calendar month before now's,
// across a year's end, in UTC.
func TestReportMonth(t *testing.T) {
	for _, c := range []struct{ month, now, from, to string }{
		{"previous", "2027-01-01T00:30:00+08:00", "2026-11-01", "2026-12-01"}, // still December in UTC
		{"previous", "2027-01-15T12:00:00Z", "2026-12-01", "2027-01-01"},
		{"2026-02", "2027-01-15T12:00:00Z", "2026-02-01", "2026-03-01"},
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		from, to, err := parseMonth(c.month, now)
		if err != nil || from.Format(time.DateOnly) != c.from || to.Format(time.DateOnly) != c.to {
			t.Errorf("-month %s at %s: %v to %v, %v; want %s to %s", c.month, c.now, from, to, err, c.from, c.to)
		}
	}
	if _, _, err := parseMonth("2026-13", time.Now()); err == nil {
		t.Error("-month 2026-13 taken")
	}
}
