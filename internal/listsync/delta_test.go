package listsync

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regblock/regblock/internal/deltatest"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// bigList is list test-csam at serial with 200 names besides extra, so
// that a few deltas stay well under a quarter of it.
func bigList(serial int, extra string) string {
	var b strings.Builder
	b.WriteString(listText("test-csam", fmt.Sprint(serial)))
	for i := range 200 {
		fmt.Fprintf(&b, "filler-%03d.example ORDER-%03d csam\n", i, i)
	}
	b.WriteString(extra)
	return b.String()
}

func (p *publisher) requests() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.gets
	p.gets = map[string]int{}
	return got
}

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestSyncDeltas: a directory one version behind takes the delta, not the
// whole list; a missing delta, one signed by another key and one on
// another base each bring the whole list, which replaces the deltas.
func TestSyncDeltas(t *testing.T) {
	pub, key, s, dir := setup(t)
	ctx := context.Background()
	v := []string{"", bigList(1, ""), bigList(2, "two.example\n"), bigList(3, "two.example\nthree.example\n"),
		bigList(4, "four.example\n"), bigList(5, "five.example\n"), bigList(6, "six.example\n")}
	deltaURL := func(from int) string { return fmt.Sprintf("test-csam.d/%d.delta", from) }
	publish := func(n int, withDelta bool) {
		pub.publish(key, "test-csam.list", v[n])
		if withDelta {
			pub.publish(key, deltaURL(n-1), deltatest.Text(t, v[n-1], v[n], nil))
		}
	}
	whole := func() string {
		data, _ := os.ReadFile(filepath.Join(dir, "test-csam.list"))
		return string(data)
	}
	deltas := func(result string) float64 { return testutil.ToFloat64(s.deltas.WithLabelValues("test-csam", result)) }

	publish(1, false)
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	pub.requests()

	// Two versions behind: the header, then two deltas, each with its
	// signature; the whole list stays as it is.
	publish(2, true)
	publish(3, true)
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := pub.requests()
	want := map[string]int{"/test-csam.list": 1, "/" + deltaURL(1): 1, "/" + deltaURL(1) + ".minisig": 1, "/" + deltaURL(2): 1, "/" + deltaURL(2) + ".minisig": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("two versions behind: requests %v, want %v", got, want)
	}
	if whole() != v[1] || !slices.Contains(dirFiles(t, dir), "test-csam.1.delta") || !slices.Contains(dirFiles(t, dir), "test-csam.2.delta.minisig") {
		t.Fatalf("after two deltas the directory holds %v", dirFiles(t, dir))
	}
	if h := s.head(); h == nil || h.list.Serial != 3 || deltas("written") != 2 {
		t.Fatalf("the directory's newest version: %+v, %v deltas written", h, deltas("written"))
	}

	// Nothing new: one conditional request, answered 304.
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.requests(); fmt.Sprint(got) != "map[/test-csam.list:1]" {
		t.Errorf("nothing new: requests %v", got)
	}

	// A delta missing: the whole list, which replaces the deltas.
	publish(4, false)
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if whole() != v[4] || deltas("missing") != 1 {
		t.Errorf("a delta missing: the list in the directory is not serial 4, or no delta counted missing (%v)", deltas("missing"))
	}
	for _, f := range dirFiles(t, dir) {
		if blocklist.IsDelta(f) || strings.HasSuffix(f, ".delta.minisig") {
			t.Errorf("%s stays beside the whole list that replaces it", f)
		}
	}

	// A delta signed by another key, then one on another base: the whole
	// list each time.
	other := blocklisttest.NewKey(t)
	pub.publish(key, "test-csam.list", v[5])
	pub.publish(other, deltaURL(4), deltatest.Text(t, v[4], v[5], nil))
	if err := s.Run(ctx); err != nil || whole() != v[5] || deltas("bad_signature") != 1 {
		t.Errorf("a delta signed by another key: %v; serial 5 whole %v, bad_signature %v", err, whole() == v[5], deltas("bad_signature"))
	}
	pub.publish(key, "test-csam.list", v[6])
	pub.publish(key, deltaURL(5), deltatest.Text(t, v[4], v[6], func(d *blocklist.Delta) { d.From.Serial = 5 }))
	if err := s.Run(ctx); err != nil || whole() != v[6] || deltas("delta_base") != 1 {
		t.Errorf("a delta on another base: %v; serial 6 whole %v, delta_base %v", err, whole() == v[6], deltas("delta_base"))
	}

	// A publisher that does not serve ranges sends the whole list at the
	// first request; it is taken as it is.
	pub.noRanges = true
	v = append(v, bigList(7, "seven.example\n"))
	publish(7, true)
	pub.requests()
	if err := s.Run(ctx); err != nil || whole() != v[7] {
		t.Errorf("no ranges: %v", err)
	}
	if got := pub.requests(); got["/"+deltaURL(6)] != 0 {
		t.Errorf("no ranges: requests %v; the whole list came first, no delta is needed", got)
	}
}

// TestSyncDeltasLong: deltas may add up to a quarter of the whole list;
// the one that would pass it is not taken (nor read past that), and the
// whole list comes instead.
func TestSyncDeltasLong(t *testing.T) {
	pub, key, s, dir := setup(t)
	ctx := context.Background()
	v1 := bigList(1, "")
	pub.publish(key, "test-csam.list", v1)
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := bigList(2, "two.example ORDER-2 csam\n")
	pub.publish(key, "test-csam.list", v2)
	pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
	if err := s.Run(ctx); err != nil || !slices.Contains(dirFiles(t, dir), "test-csam.1.delta") {
		t.Fatalf("the first delta: %v, directory %v", err, dirFiles(t, dir))
	}
	// A delta larger than what is left of the quarter.
	var more strings.Builder
	for i := range 200 {
		fmt.Fprintf(&more, "more-%03d.example ORDER-3 csam\n", i)
	}
	v3 := bigList(3, "two.example ORDER-2 csam\n"+more.String())
	pub.publish(key, "test-csam.list", v3)
	pub.publish(key, "test-csam.d/2.delta", deltatest.Text(t, v2, v3, nil))
	pub.requests()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.requests(); got["/test-csam.d/2.delta"] > 1 || got["/test-csam.list"] != 2 {
		t.Errorf("requests %v; want the header and the whole list", got)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "test-csam.list")); string(data) != v3 || slices.Contains(dirFiles(t, dir), "test-csam.1.delta") {
		t.Errorf("the whole list did not replace the delta: %v", dirFiles(t, dir))
	}
	// It was served, so it is counted too large, not missing.
	for result, want := range map[string]float64{"written": 1, "too_large": 1, "missing": 0} {
		if got := testutil.ToFloat64(s.deltas.WithLabelValues("test-csam", result)); got != want {
			t.Errorf("regblock_sync_deltas_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

// syncedAt1 returns a syncer whose directory holds serial 1 of bigList,
// fetched from its publisher, and the texts of serials 1 and 2.
func syncedAt1(t *testing.T) (pub *publisher, key *blocklisttest.Key, s *Syncer, dir, v1, v2 string) {
	t.Helper()
	pub, key, s, dir = setup(t)
	v1, v2 = bigList(1, ""), bigList(2, "two.example\n")
	pub.publish(key, "test-csam.list", v1)
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pub, key, s, dir, v1, v2
}

// TestSyncHostileCache: answers no key signed, from a cache or a
// publisher that turned hostile. None stops sync for good, fills memory,
// or puts in the directory a delta the resolver would refuse.
func TestSyncHostileCache(t *testing.T) {
	ctx := context.Background()
	t.Run("poisoned validators", func(t *testing.T) {
		for _, poison := range []func(http.Header){
			func(h http.Header) { h.Set("ETag", "*") },
			func(h http.Header) { h.Del("ETag"); h.Set("Last-Modified", "Fri, 01 Jan 2100 00:00:00 GMT") },
		} {
			pub, key, s, dir, v1, v2 := syncedAt1(t)
			// One answer of the genuine header with a validator that would
			// match anything.
			pub.intercept = func(w http.ResponseWriter, r *http.Request) bool {
				poison(w.Header())
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", headerBytes-1, len(v1)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write([]byte(v1[:min(len(v1), headerBytes)]))
				return true
			}
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			pub.intercept = nil
			pub.publish(key, "test-csam.list", v2)
			pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
			if err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if h := s.head(); h == nil || h.list.Serial != 2 {
				t.Errorf("after one poisoned answer, serial 2 was not fetched: directory %v", dirFiles(t, dir))
			}
		}
	})
	t.Run("validators from long ago", func(t *testing.T) {
		// A validator a cache served with the old header and the new
		// version's tag holds sync back until the next hourly check.
		pub, key, s, dir, v1, v2 := syncedAt1(t)
		pub.publish(key, "test-csam.list", v2)
		pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
		data, _ := os.ReadFile(s.validatorsPath())
		var v validators
		json.Unmarshal(data, &v)
		v.ETag, v.Checked = `"`+fmt.Sprintf("%x", sha256.Sum256([]byte(v2)))[:16]+`"`, time.Now().Add(-2*revalidate)
		data, _ = json.Marshal(v)
		os.WriteFile(s.validatorsPath(), data, 0o644)
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if h := s.head(); h == nil || h.list.Serial != 2 {
			t.Errorf("validators older than %v still held sync back: directory %v", revalidate, dirFiles(t, dir))
		}
	})
	t.Run("a forged validators file", func(t *testing.T) {
		// Written by someone who can write the lists directory, no key.
		pub, key, s, dir, v1, v2 := syncedAt1(t)
		sum := sha256.Sum256([]byte(v1))
		forged := fmt.Sprintf(`{"etag":"*","last_modified":"Fri, 01 Jan 2100 00:00:00 GMT","sha256":"%x","serial":1,"checked":"2999-01-01T00:00:00Z"}`, sum)
		os.WriteFile(s.validatorsPath(), []byte(forged), 0o644)
		pub.publish(key, "test-csam.list", v2)
		pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if h := s.head(); h == nil || h.list.Serial != 2 {
			t.Errorf("a forged validators file held sync back: directory %v", dirFiles(t, dir))
		}
	})
	t.Run("junk delta", func(t *testing.T) {
		pub, key, s, dir := setup(t)
		s.MaxSize = 256 << 20
		v1, v2 := bigList(1, ""), bigList(2, "two.example\n")
		pub.publish(key, "test-csam.list", v1)
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		pub.publish(key, "test-csam.list", v2)
		junk := make([]byte, 64<<20)
		pub.put("test-csam.d/1.delta", junk)
		pub.put("test-csam.d/1.delta.minisig", key.Sign([]byte(v1)))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("a 64 MiB junk delta for a %d-byte list cost %d MiB of memory", len(v1), grew>>20)
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "test-csam.list")); string(data) != v2 {
			t.Error("the whole list did not come instead of the junk delta")
		}
		if slices.ContainsFunc(dirFiles(t, dir), func(f string) bool { return strings.HasPrefix(f, ".regblock-sync-") }) {
			t.Errorf("the junk stays in the directory: %v", dirFiles(t, dir))
		}
	})
	t.Run("a delta whose digest does not match", func(t *testing.T) {
		pub, key, s, dir, v1, v2 := syncedAt1(t)
		pub.publish(key, "test-csam.list", v2)
		pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, func(d *blocklist.Delta) { d.Checksum[0] ^= 1 }))
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(dirFiles(t, dir), "test-csam.1.delta") || testutil.ToFloat64(s.deltas.WithLabelValues("test-csam", "delta_mismatch")) != 1 {
			t.Errorf("a delta the resolver refuses was placed: %v", dirFiles(t, dir))
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "test-csam.list")); string(data) != v2 {
			t.Error("the whole list did not come instead")
		}
	})
	t.Run("a cache behind", func(t *testing.T) {
		pub, key, s, _ := setup(t)
		v1, v2 := bigList(1, ""), bigList(2, "two.example\n")
		pub.publish(key, "test-csam.list", v2)
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		pub.publish(key, "test-csam.list", v1)
		pub.requests()
		if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "refusing a rollback") {
			t.Errorf("an older serial in the header: %v", err)
		}
		if got := pub.requests(); len(got) != 1 {
			t.Errorf("an older serial in the header: requests %v, want the header alone", got)
		}
	})
	t.Run("header spellings", func(t *testing.T) {
		for _, text := range []string{"\uFEFF#! regblock-list 1\n#! serial: 7\n", "#! regblock-list 1\n#!serial:7\n", "#! regblock-list 1\n# a comment\n#! Serial : 7\n"} {
			path := filepath.Join(t.TempDir(), "h.list")
			os.WriteFile(path, []byte(text+"a.example\n"), 0o644)
			if n, ok := headerSerial(path); !ok || n != 7 {
				t.Errorf("headerSerial of %q: %d, %v", text, n, ok)
			}
		}
	})
	t.Run("a dead run's leftovers", func(t *testing.T) {
		pub, key, s, dir := setup(t)
		pub.publish(key, "test-csam.list", bigList(1, ""))
		old := filepath.Join(dir, ".regblock-sync-dead")
		live := filepath.Join(dir, ".regblock-sync-live")
		for _, d := range []string{old, live} {
			os.Mkdir(d, 0o755)
			os.WriteFile(filepath.Join(d, "test-csam.list"), []byte("partial"), 0o644)
		}
		long := time.Now().Add(-2 * staleTemp)
		os.Chtimes(filepath.Join(old, "test-csam.list"), long, long)
		os.Chtimes(old, long, long)
		if err := s.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Error("a dead run's temporary directory stays")
		}
		if _, err := os.Stat(live); err != nil {
			t.Error("a live run's temporary directory was removed")
		}
	})
}
