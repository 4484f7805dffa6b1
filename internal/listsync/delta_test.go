package listsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// TestSyncDeltasLong: once the deltas in the directory add up to a quarter
// of the whole list, the next version comes whole.
func TestSyncDeltasLong(t *testing.T) {
	pub, key, s, dir := setup(t)
	ctx := context.Background()
	v1 := listText("test-csam", "1")
	pub.publish(key, "test-csam.list", v1)
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := listText("test-csam", "2") + "two.example ORDER-2 csam\n"
	pub.publish(key, "test-csam.list", v2)
	pub.publish(key, "test-csam.d/1.delta", deltatest.Text(t, v1, v2, nil))
	if err := s.Run(ctx); err != nil || !slices.Contains(dirFiles(t, dir), "test-csam.1.delta") {
		t.Fatalf("the first delta: %v, directory %v", err, dirFiles(t, dir))
	}
	// The delta is about as large as this small list.
	v3 := listText("test-csam", "3") + "two.example ORDER-2 csam\nthree.example\n"
	pub.publish(key, "test-csam.list", v3)
	pub.publish(key, "test-csam.d/2.delta", deltatest.Text(t, v2, v3, nil))
	pub.requests()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pub.requests(); got["/test-csam.d/2.delta"] != 0 || got["/test-csam.list"] != 2 {
		t.Errorf("requests %v; want the header and the whole list, no delta", got)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "test-csam.list")); string(data) != v3 || slices.Contains(dirFiles(t, dir), "test-csam.1.delta") {
		t.Errorf("the whole list did not replace the delta: %v", dirFiles(t, dir))
	}
}
