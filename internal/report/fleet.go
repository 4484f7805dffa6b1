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
)

// resolver is what the report keeps of one resolver's receipts: a few
// words a list, however many receipts it stored.
type resolver struct {
	id    string
	key   string // ID of the key of its last stored receipt
	lists map[string]*held
	first time.Time // its first receipt received
	last  time.Time // its last receipt received
}

// held is what one resolver's receipts say of one list.
type held struct {
	firstNamed, lastNamed time.Time // first and last receipts naming it, received
	// seen is when each version first appeared in a receipt, received:
	// the serial and the SHA-256 it said.
	seen []seenVersion
	// blocked queries by UTC day (days since 1970), as the counts of its
	// receipts grew.
	perDay map[int64]uint64

	// the last receipt's count and its process's start, to take the next
	// receipt's growth from.
	count           uint64
	started, atTime time.Time
}

type seenVersion struct {
	serial uint64
	sha256 string
	at     time.Time
}

// lean is the part of a receipt the report reads.
type lean struct {
	Time    time.Time `json:"time"`
	Started time.Time `json:"started"`
	Lists   []struct {
		Name    string `json:"name"`
		Serial  uint64 `json:"serial"`
		SHA256  string `json:"sha256"`
		Blocked uint64 `json:"blocked"`
	} `json:"lists"`
}

// readFleet reads every resolver's file in dir, several at a time, and
// returns what each said, sorted by resolver ID. It also returns the
// count of damaged lines it left out.
func readFleet(dir string) ([]*resolver, int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".jsonl") && e.Type().IsRegular() {
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
				out[i], damaged[i], errs[i] = readResolver(files[i])
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
	slices.SortFunc(out, func(a, b *resolver) int { return strings.Compare(a.id, b.id) })
	return out, total, nil
}

// readResolver reads one resolver's file, oldest receipt first.
func readResolver(path string) (*resolver, int, error) {
	res := &resolver{id: strings.TrimSuffix(filepath.Base(path), ".jsonl"), lists: map[string]*held{}}
	var r lean // reused: its lists keep their room from one receipt to the next
	damaged, err := receipts.Scan(path, func(rec receipts.Record) {
		r.Time, r.Started, r.Lists = time.Time{}, time.Time{}, r.Lists[:0]
		if json.Unmarshal(rec.Bytes(), &r) != nil {
			return
		}
		res.take(rec, r)
	})
	return res, damaged, err
}

// take adds one stored receipt, the next in the file.
func (res *resolver) take(rec receipts.Record, r lean) {
	if res.first.IsZero() {
		res.first = rec.Received
	}
	res.last, res.key = rec.Received, rec.Key
	for _, l := range r.Lists {
		h := res.lists[l.Name]
		if h == nil {
			h = &held{firstNamed: rec.Received, perDay: map[int64]uint64{}}
			res.lists[l.Name] = h
		}
		h.lastNamed = rec.Received
		if n := len(h.seen); n == 0 || h.seen[n-1].serial != l.Serial || h.seen[n-1].sha256 != l.SHA256 {
			h.seen = append(h.seen, seenVersion{l.Serial, l.SHA256, rec.Received})
		}
		h.grow(r.Started, r.Time, l.Blocked)
	}
}

// grow spreads over the days the queries blocked since the last receipt:
// the growth of the count within one process, the whole count after a
// restart (from the process's start). A count that falls within one
// process is no growth: the next is taken from it.
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
