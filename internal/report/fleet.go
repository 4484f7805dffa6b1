package report

import (
	"encoding/json"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regblock/regblock/internal/receipts"
	"github.com/regblock/regblock/plugin/pkg/receipt"
)

// resolver is what the report keeps of one resolver's receipts: a few
// words a list, however many receipts it stored. Every time in it is a
// receipt's received time, by the receiver's clock: an ISP cannot date its
// receipts back.
type resolver struct {
	id    string
	key   string // ID of the key of its first stored receipt
	lists map[string]*held
	first time.Time // its first receipt received
	// active are the stretches in which its receipts came less than
	// activeGap apart, oldest first.
	active []span
}

type span struct{ from, to time.Time }

// activeGap is the longest silence within one stretch of activity: a
// resolver sends a receipt a minute, and the receiver keeps one an hour.
const activeGap = 24 * time.Hour

// activeIn reports whether the resolver sent a receipt in [from, to).
func (res *resolver) activeIn(from, to time.Time) bool {
	for _, a := range res.active {
		if !a.to.Before(from) && a.from.Before(to) {
			return true
		}
	}
	return false
}

// held is what one resolver's receipts say of one list.
type held struct {
	// seen is when each published version (serial and SHA-256) first
	// appeared in a receipt.
	seen []seenVersion
	// blocked queries by UTC day (days since 1970), as the counts of its
	// receipts grew.
	perDay map[int64]uint64

	// the last receipt's count, its process's start and when it came, to
	// take the next receipt's growth from.
	count           uint64
	started, atTime time.Time
}

type seenVersion struct {
	serial uint64
	at     time.Time
}

// lean is the part of a receipt the report reads.
type lean struct {
	Resolver string    `json:"resolver"`
	Time     time.Time `json:"time"`
	Started  time.Time `json:"started"`
	Lists    []struct {
		Name    string    `json:"name"`
		Serial  uint64    `json:"serial"`
		SHA256  string    `json:"sha256"`
		Applied time.Time `json:"applied"` // read, as the receiver reads it: a receipt it would refuse is left out
		Blocked uint64    `json:"blocked"`
	} `json:"lists"`
}

// readFleet reads every resolver's file in dir, several at a time, and
// returns what each said in the receipts received before to (all, when to
// is zero), sorted by resolver ID. It also returns the count of lines it
// left out: damaged, or a receipt of another resolver than the file's.
func readFleet(dir string, to time.Time, published catalog) ([]*resolver, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if ok && e.Type().IsRegular() && receipt.CheckResolverName(id) == nil {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	out := make([]*resolver, len(files))
	damaged := make([]int, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i], damaged[i], errs[i] = readResolver(files[i], to, published)
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	total := 0
	for i := range files {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		total += damaged[i]
	}
	out = slices.DeleteFunc(out, func(res *resolver) bool { return res.first.IsZero() })
	slices.SortFunc(out, func(a, b *resolver) int { return strings.Compare(a.id, b.id) })
	return out, total, nil
}

// readResolver reads one resolver's file, oldest receipt first, up to to.
// A receipt that names another resolver than its file, or that is not a
// receipt, is left out and counted, as the receiver leaves it out when it
// restores the file.
func readResolver(path string, to time.Time, published catalog) (*resolver, int, error) {
	res := &resolver{id: strings.TrimSuffix(filepath.Base(path), ".jsonl"), lists: map[string]*held{}}
	var r lean // reused: its lists keep their room from one receipt to the next
	other := 0
	damaged, err := receipts.Scan(path, func(rec receipts.Record) {
		if !to.IsZero() && !rec.Received.Before(to) {
			return
		}
		r.Resolver, r.Time, r.Started, r.Lists = "", time.Time{}, time.Time{}, r.Lists[:0]
		if json.Unmarshal(rec.Bytes(), &r) != nil || r.Resolver != res.id || r.Time.IsZero() || !res.take(rec, r, published) {
			other++
		}
	})
	return res, damaged + other, err
}

// take adds one stored receipt, the next in the file, and reports false
// for one received before the last (the receiver stores them in order). Of
// its lists, it keeps only those published, and of their versions, only
// those published: an ISP's made-up lists and serials cost nothing.
func (res *resolver) take(rec receipts.Record, r lean, published catalog) bool {
	at := rec.Received
	if n := len(res.active); n > 0 && at.Before(res.active[n-1].to) {
		return false
	}
	if res.first.IsZero() {
		res.first, res.key = at, rec.Key // bound to the key of its first receipt, as the receiver binds it
	}
	if n := len(res.active); n > 0 && at.Sub(res.active[n-1].to) < activeGap {
		res.active[n-1].to = at
	} else {
		res.active = append(res.active, span{at, at})
	}
	for _, l := range r.Lists {
		versions, ok := published[l.Name]
		if !ok {
			continue
		}
		h := res.lists[l.Name]
		if h == nil {
			h = &held{perDay: map[int64]uint64{}}
			res.lists[l.Name] = h
		}
		if sha, ok := versions[l.Serial]; ok && sha == l.SHA256 {
			if n := len(h.seen); n == 0 || h.seen[n-1].serial != l.Serial {
				h.seen = append(h.seen, seenVersion{l.Serial, at})
			}
		}
		h.grow(r.Started, at, l.Blocked)
	}
	return true
}

// catalog is what the publisher's directory holds: by list name, the
// SHA-256 of each serial.
type catalog map[string]map[uint64]string

// grow spreads over the days the queries blocked since the last receipt
// received (at): the growth of the count within one process, the whole
// count after a restart (a new started), run from the process's start,
// but not from before the last receipt nor after this one. A count that
// falls within one process is no growth: the next is taken from it.
func (h *held) grow(started, at time.Time, count uint64) {
	var n uint64
	from := h.atTime
	switch {
	case h.atTime.IsZero():
		// The first receipt: what it counted came before the period
		// the store covers, unless the process started since.
		n, from = count, started
		if started.IsZero() {
			n = 0
		}
	case !started.Equal(h.started):
		n, from = count, started
		if from.Before(h.atTime) {
			from = h.atTime
		}
	case count >= h.count:
		n = count - h.count
	}
	if from.After(at) {
		from = at
	}
	h.count, h.started, h.atTime = count, started, at
	spread(h.perDay, n, from, at)
}

// spread adds n to the days from..to, in proportion to the time of each
// day in it, each share rounded down and the rest given to the last day.
// Only the last maxSpreadDays days are walked: the share of days before
// them (a process that says it started in year 1) is dropped, so that no
// receipt costs more than that.
func spread(perDay map[int64]uint64, n uint64, from, to time.Time) {
	if n == 0 {
		return
	}
	if from.IsZero() || !from.Before(to) {
		perDay[day(to)] = addSat(perDay[day(to)], n)
		return
	}
	if oldest := to.AddDate(-10, 0, 0); from.Before(oldest) {
		from = oldest // no process runs for ten years; and time.Duration stops at 292
	}
	span := uint64(to.Sub(from) / time.Millisecond)
	share := func(d int64) uint64 { // of the days before d
		end := time.Unix(d*86400, 0)
		if !end.After(from) {
			return 0
		}
		hi, lo := bits.Mul64(n, uint64(end.Sub(from)/time.Millisecond))
		upto, _ := bits.Div64(hi, lo, max(span, 1))
		return upto
	}
	first := max(day(from), day(to)-maxSpreadDays)
	given := share(first)
	for d := first; d < day(to); d++ {
		upto := share(d + 1)
		perDay[d] = addSat(perDay[d], upto-given)
		given = upto
	}
	perDay[day(to)] = addSat(perDay[day(to)], n-given)
}

// maxSpreadDays bounds the days one receipt's count is spread over: two
// months, more than a monthly report looks back.
const maxSpreadDays = 62

// addSat adds without wrapping: a count an ISP makes up near 2^64 must not
// turn the fleet's sum small.
func addSat(a, b uint64) uint64 {
	if sum, carry := bits.Add64(a, b, 0); carry == 0 {
		return sum
	}
	return math.MaxUint64
}

// day is t's UTC day, counted from 1970-01-01.
func day(t time.Time) int64 { return t.Unix() / 86400 }
