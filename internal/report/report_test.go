package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/deltatest"
	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func listText(serial int, issued string, entries ...string) string {
	return fmt.Sprintf("#! regblock-list 1\n#! name: example-csam\n#! issuer: Example Communications Commission\n#! serial: %d\n#! issued: %s\n#! authority: Example Act, section 1\n%s\n",
		serial, issued, strings.Join(entries, "\n"))
}

// fixture writes a publisher's directory and a receipts store whose
// figures are worked out by hand in TestBuild.
func fixture(t *testing.T) (lists, store string) {
	lists, store = t.TempDir(), t.TempDir()
	key := blocklisttest.NewKey(t)
	v1 := listText(1, "2026-12-01T10:00:00Z", "a.example ORDER-1 csam", "b.example ORDER-1 csam")
	v2 := listText(2, "2026-12-02T00:00:00Z", "b.example ORDER-1 csam", "c.example ORDER-2 csam", "d.example ORDER-3 csam")
	v3 := listText(3, "2026-12-03T12:00:00Z", "b.example ORDER-1 csam", "c.example ORDER-2 csam", "d.example ORDER-3 csam", "e.example ORDER-3 csam")
	key.WriteList(t, lists, "example-csam.1.list", v1) // kept by the publisher
	key.WriteList(t, lists, "example-csam.list", v2)
	os.Mkdir(filepath.Join(lists, "example-csam.d"), 0o755)
	key.WriteList(t, lists, "example-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
	key.WriteList(t, lists, "example-csam.d/2.delta", deltatest.Text(t, v2, v3, nil)) // v3 only as a delta
	os.WriteFile(filepath.Join(lists, "unsigned.list"), []byte(listText(9, "2026-12-01T00:00:00Z", "x.example")), 0o644)

	plain, err := blocklist.Parse("w.list", []byte(strings.Replace(listText(7, "2026-12-01T09:00:00Z", "secret-one.example ORDER-9 csam", "secret-two.example ORDER-9 csam"), "example-csam", "worst-of", 1)))
	if err != nil {
		t.Fatal(err)
	}
	hashed, err := blocklist.Hash(plain, bytes.Repeat([]byte{7}, blocklist.SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	blocklist.Write(&b, hashed)
	key.WriteList(t, lists, "worst-of.list", b.String())
	sha := func(name string) string {
		l, err := blocklist.Parse(name, []byte(map[string]string{"1": v1, "2": v2, "3": v3, "w": b.String()}[name]))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", l.SHA256)
	}

	type list struct {
		serial  string
		blocked uint64
	}
	write := func(resolver, key string, rs ...receipt.Receipt) {
		var out []byte
		for _, r := range rs {
			r.Resolver = resolver
			body, _ := json.Marshal(r)
			line, _ := json.Marshal(receipts.Record{Received: r.Time, Key: key, Result: "accepted", Body: body, Signature: "-"})
			out = append(append(out, line...), '\n')
		}
		os.WriteFile(filepath.Join(store, resolver+".jsonl"), out, 0o640)
	}
	rec := func(when, started string, lists ...list) receipt.Receipt {
		r := receipt.Receipt{Time: at(when)}
		if started != "" {
			r.Started = at(started)
		}
		for _, l := range lists {
			name := "example-csam"
			if l.serial == "w" {
				name = "worst-of"
			}
			serial := map[string]uint64{"1": 1, "2": 2, "3": 3, "w": 7}[l.serial]
			r.Lists = append(r.Lists, receipt.List{Name: name, Serial: serial, SHA256: sha(l.serial), Blocked: l.blocked})
		}
		return r
	}
	const keyA, keyB = "00000000000000AA", "00000000000000BB"
	write("r1", keyA,
		rec("2026-12-01T10:05:00Z", "2026-12-01T08:00:00Z", list{"1", 5}, list{"w", 50}),
		rec("2026-12-01T11:05:00Z", "2026-12-01T08:00:00Z", list{"1", 25}, list{"w", 50}),
		rec("2026-12-02T00:10:00Z", "2026-12-01T08:00:00Z", list{"2", 125}, list{"w", 50}),
		rec("2026-12-03T12:40:00Z", "2026-12-01T08:00:00Z", list{"3", 125}, list{"w", 50}))
	write("r2", keyA,
		rec("2026-12-01T10:20:00Z", "2026-12-01T10:00:00Z", list{"1", 3}),
		rec("2026-12-02T00:03:00Z", "2026-12-01T10:00:00Z", list{"2", 3}),
		rec("2026-12-02T06:01:00Z", "2026-12-02T06:00:00Z", list{"2", 4}),
		rec("2026-12-03T13:00:00Z", "2026-12-02T06:00:00Z", list{"2", 4}))
	write("r3", keyB, // an older resolver: no started, no counts
		rec("2026-12-01T10:01:00Z", "", list{"1", 0}),
		rec("2026-12-03T12:05:00Z", "", list{"3", 0}))
	return lists, store
}

// TestBuild checks every figure of a report against the fixture's, worked
// out by hand.
func TestBuild(t *testing.T) {
	lists, store := fixture(t)
	r, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	WriteJSON(&got, r)
	var j struct {
		Lists []struct {
			Name                   string
			Hashed                 bool
			Added, Removed, Orders int
			Entries                *int
			Versions               []struct {
				Serial                  uint64
				Added, Removed, Entries *int
				Resolvers               int
				WithinDeadline          *float64 `json:"within_deadline"`
				Never                   []string
				MedianSeconds           *float64 `json:"median_seconds"`
				P95Seconds              *float64 `json:"p95_seconds"`
				WorstSeconds            *float64 `json:"worst_seconds"`
			}
			BlockedPerDay []struct {
				Date    string
				Queries any
			} `json:"blocked_per_day"`
		}
		ISPs []struct {
			Key            string
			Resolvers      int
			WithinDeadline *float64 `json:"within_deadline"`
		}
	}
	if err := json.Unmarshal(got.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	show := func(v any) string {
		switch v := v.(type) {
		case *int:
			if v == nil {
				return "null"
			}
			return fmt.Sprint(*v)
		case *float64:
			if v == nil {
				return "null"
			}
			return fmt.Sprint(*v)
		}
		return fmt.Sprint(v)
	}
	var lines []string
	for _, l := range j.Lists {
		lines = append(lines, fmt.Sprintf("%s hashed=%v added=%d removed=%d orders=%d entries=%s", l.Name, l.Hashed, l.Added, l.Removed, l.Orders, show(l.Entries)))
		for _, v := range l.Versions {
			lines = append(lines, fmt.Sprintf("  v%d +%s -%s =%s resolvers=%d within=%s never=%v median=%s p95=%s worst=%s", v.Serial,
				show(v.Added), show(v.Removed), show(v.Entries), v.Resolvers, show(v.WithinDeadline), v.Never, show(v.MedianSeconds), show(v.P95Seconds), show(v.WorstSeconds)))
		}
		for _, d := range l.BlockedPerDay {
			lines = append(lines, fmt.Sprintf("  %s %v", d.Date, d.Queries))
		}
	}
	for _, i := range j.ISPs {
		lines = append(lines, fmt.Sprintf("isp %s resolvers=%d within=%s", i.Key, i.Resolvers, show(i.WithinDeadline)))
	}
	want := `example-csam hashed=false added=3 removed=1 orders=2 entries=4
  v1 +null -null =2 resolvers=3 within=1 never=[] median=0 p95=0 worst=0
  v2 +2 -1 =3 resolvers=3 within=0.6667 never=[] median=600 p95=129900 worst=129900
  v3 +1 -0 =4 resolvers=3 within=0.3333 never=[r2] median=300 p95=2400 worst=2400
  2026-12-01 126
  2026-12-02 < 10
  2026-12-03 < 10
worst-of hashed=true added=0 removed=0 orders=0 entries=2
  v7 +null -null =2 resolvers=3 within=0.3333 never=[r2 r3] median=0 p95=0 worst=0
  2026-12-01 50
  2026-12-02 < 10
  2026-12-03 < 10
isp 00000000000000AA resolvers=2 within=0.625
isp 00000000000000BB resolvers=1 within=0.5`
	if have := strings.Join(lines, "\n"); have != want {
		t.Errorf("report:\n%s\nwant:\n%s\nJSON:\n%s", have, want, got.String())
	}

	if !bytes.Contains(got.Bytes(), []byte(`"queries": "< 10"`)) {
		t.Error(`a count below the threshold is not written "< 10"`)
	}

	// The same inputs, the same bytes, in every form; and no entry of
	// the hashed list in any of them.
	again, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range Languages {
		var a, b, ja bytes.Buffer
		WriteHTML(&a, r, lang)
		WriteHTML(&b, again, lang)
		WriteJSON(&ja, again)
		if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(ja.Bytes(), got.Bytes()) {
			t.Errorf("%s: a second build gave other bytes", lang)
		}
		for _, out := range [][]byte{a.Bytes(), got.Bytes()} {
			if bytes.Contains(out, []byte("secret-")) {
				t.Errorf("%s: a name of the hashed list is in the output", lang)
			}
		}
	}
}

// TestSpread: a count is shared between days in proportion to the time in
// each; a start in year 1 costs no more than two months of days, and a
// count near 2^64 does not wrap the sum.
func TestSpread(t *testing.T) {
	perDay := map[int64]uint64{}
	spread(perDay, 100, at("2026-12-01T18:00:00Z"), at("2026-12-02T06:00:00Z"))
	if d := day(at("2026-12-01T00:00:00Z")); perDay[d] != 50 || perDay[d+1] != 50 {
		t.Errorf("100 over 6 hours each side of midnight: %v", perDay)
	}
	perDay = map[int64]uint64{}
	spread(perDay, 1<<40, time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), at("2026-12-02T06:00:00Z"))
	var sum uint64
	for d, n := range perDay {
		if d < day(at("2026-12-02T00:00:00Z"))-maxSpreadDays {
			t.Errorf("a share on day %d, more than %d days back", d, maxSpreadDays)
		}
		sum += n
	}
	if len(perDay) != maxSpreadDays+1 || sum == 0 || sum >= 1<<40 {
		t.Errorf("a start in year 1: %d days, %d of %d", len(perDay), sum, uint64(1<<40))
	}
	perDay = map[int64]uint64{}
	spread(perDay, math.MaxUint64-1, time.Time{}, at("2026-12-02T06:00:00Z"))
	spread(perDay, 5, time.Time{}, at("2026-12-02T06:00:00Z"))
	if perDay[day(at("2026-12-02T00:00:00Z"))] != math.MaxUint64 {
		t.Errorf("a sum past 2^64 wrapped: %v", perDay)
	}
}

// TestHostileReceipts: what an ISP's own resolvers can say does not bend
// the report. Leaving a list out of its receipts until it has a version
// does not make it fast; dating receipts back does not move its counts
// into a closed month; a receipt of another resolver in a file, a SHA-256
// that is not one, and receipts received after the period count for
// nothing.
func TestHostileReceipts(t *testing.T) {
	lists, fixtureStore := fixture(t)
	base, err := Build(Options{Receipts: fixtureStore, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	sha := map[uint64]string{}
	for _, v := range base.Lists[0].Versions {
		sha[v.Serial] = v.SHA256
	}
	store := t.TempDir()
	write := func(file string, lines ...[2]string) { // received, body
		var out []byte
		for _, l := range lines {
			line, _ := json.Marshal(receipts.Record{Received: at(l[0]), Key: "00000000000000CC", Result: "accepted", Body: []byte(l[1]), Signature: "-"})
			out = append(append(out, line...), '\n')
		}
		os.WriteFile(filepath.Join(store, file+".jsonl"), out, 0o640)
	}
	body := func(resolver, started, lists string) string {
		return `{"resolver":"` + resolver + `","time":"2026-11-10T00:00:00Z","started":"` + started + `","lists":[` + lists + `],"ledger":{"head":"","events":0}}`
	}
	list := func(serial int, sha string, blocked int) string {
		return fmt.Sprintf(`{"name":"example-csam","serial":%d,"sha256":"%s","applied":"2026-11-10T00:00:00Z","blocked":%d}`, serial, sha, blocked)
	}
	write("h1", // hides the list until it has serial 2, two hours after its issue
		[2]string{"2026-12-01T12:00:00Z", body("h1", "2026-12-01T11:00:00Z", "")},
		[2]string{"2026-12-02T02:00:00Z", body("h1", "2026-12-01T11:00:00Z", list(2, sha[2], 0))})
	write("h2", // dates its receipts, and its start, back to November
		[2]string{"2026-12-02T10:00:00Z", body("h2", "2026-11-10T00:00:00Z", list(1, sha[1], 0))},
		[2]string{"2026-12-02T11:00:00Z", strings.Replace(body("h2", "2026-11-10T00:00:00Z", list(1, sha[1], 5000)), "2026-11-10T00:00:00Z", "2026-11-10T01:00:00Z", 1)})
	write("h3", [2]string{"2026-12-02T03:00:00Z", body("h1", "2026-12-01T11:00:00Z", list(3, sha[3], 0))}) // h1's word in h3's file
	write("h4",
		[2]string{"2026-12-01T11:00:00Z", body("h4", "2026-12-01T11:00:00Z", list(1, sha[1], 0))},
		[2]string{"2026-12-05T00:00:00Z", body("h4", "2026-12-01T11:00:00Z", list(3, sha[3], 0))}) // after the period
	write("h5", [2]string{"2026-12-02T01:00:00Z", body("h5", "2026-12-01T11:00:00Z", list(2, strings.Repeat("x", 100), 0))})

	r, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	v2 := r.Lists[0].Versions[1]
	if v2.Serial != 2 || v2.Resolvers != 4 || fmt.Sprint(v2.Never) != "[h2 h4 h5]" || v2.MedianSeconds == nil || *v2.MedianSeconds != 7200 {
		t.Errorf("version 2: %d judged, never %v, median %v; want h1, h2, h4 and h5 judged, h1 in 7200 s, the others never", v2.Resolvers, v2.Never, show(v2.MedianSeconds))
	}
	days := map[string]string{}
	for _, d := range r.Lists[0].BlockedPerDay {
		days[d.Date] = d.Queries.Shown()
	}
	if days["2026-12-02"] != "5000" || r.DamagedLines != 1 {
		t.Errorf("blocked per day %v, damaged lines %d; want 5000 on 2026-12-02, when the receipts came, and h3's line left out", days, r.DamagedLines)
	}
	// A report of November has none of it.
	nov, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-11-01T00:00:00Z"), To: at("2026-12-01T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range nov.Lists[0].BlockedPerDay {
		if d.Queries.N != 0 {
			t.Errorf("November's report counts %d on %s", d.Queries.N, d.Date)
		}
	}
}

func show(f *float64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}

// TestCSVFormulas: no cell of the CSV files starts a formula, whatever
// the publisher wrote in a header or a stored line says.
func TestCSVFormulas(t *testing.T) {
	r := &Report{Threshold: 10, Lists: []List{{Name: "l", Issuer: "=HYPERLINK(\"x\")", Authority: "+1", BlockedPerDay: []Day{},
		Versions: []Version{{Serial: 1, Never: []string{"=1+1", "b1"}}}}}, ISPs: []ISP{{Key: "@SUM(A1)"}}}
	dir := t.TempDir()
	if err := WriteCSV(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, name := range CSVFiles {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		for _, line := range strings.Split(string(data), "\n") {
			for _, cell := range strings.Split(line, ",") {
				if cell = strings.TrimPrefix(cell, `"`); cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
					t.Errorf("%s: a cell starts a formula: %q", name, line)
				}
			}
		}
	}
}

// TestDeltaWithoutBase: a delta whose base the directory no longer holds
// leaves its counts unknown, and says so, naming it.
func TestDeltaWithoutBase(t *testing.T) {
	lists, store := fixture(t)
	os.Remove(filepath.Join(lists, "example-csam.1.list"))
	r, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Lists[0].Versions[0]; v.Serial != 2 || v.Added != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], filepath.Join("example-csam.d", "1.delta")+": starts from serial 1") {
		t.Errorf("first version %d, added %v; warnings %q", v.Serial, v.Added, r.Warnings)
	}
}

// TestDeltaThatDoesNotFit: a signed delta that removes an entry its base
// (there whole) does not hold is not counted, and is named.
func TestDeltaThatDoesNotFit(t *testing.T) {
	lists, store := fixture(t)
	v2, _ := os.ReadFile(filepath.Join(lists, "example-csam.list"))
	v3 := string(v2) + "e.example ORDER-3 csam\n"
	v3 = strings.Replace(v3, "#! serial: 2", "#! serial: 3", 1)
	v3 = strings.Replace(v3, "2026-12-02T00:00:00Z", "2026-12-03T12:00:00Z", 1)
	bad := deltatest.Text(t, string(v2), v3, func(d *blocklist.Delta) {
		d.Removed = append(d.Removed, blocklist.Entry{Name: "nothere.example", Order: "ORDER-Z", Category: "csam"})
	})
	blocklisttest.NewKey(t).WriteList(t, lists, "example-csam.d/2.delta", bad)
	r, err := Build(Options{Receipts: store, Lists: lists, From: at("2026-12-01T00:00:00Z"), To: at("2026-12-04T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Lists[0].Versions[2]
	if v.Serial != 3 || v.Added != nil || v.Entries != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "removes nothere.example") {
		t.Errorf("serial %d: added %v, entries %v; warnings %q", v.Serial, v.Added, v.Entries, r.Warnings)
	}
}
