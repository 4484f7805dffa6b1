// Package report builds regblock's transparency report: what each list
// blocked, on whose order, how fast the fleet enforced each version and
// how many queries each list blocked a day, from the regulator's receipts
// store and the publisher's directory. It names no entry and no client:
// receipts carry counts, and the lists give counts and orders only. The
// same inputs give the same bytes. docs/reports.md says how each figure
// is computed.
package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"aead.dev/minisign"
)

// Options says what to build the report from, and for when.
type Options struct {
	Receipts string // the receiver's store directory
	Lists    string // the publisher's directory
	// Keys, when given, must have signed every list and delta read;
	// without them the files are taken as published.
	Keys    []minisign.PublicKey
	MaxSize int64 // of a list or delta file

	// From and To bound the period, To excluded; zero: the days the
	// receipts cover.
	From, To time.Time
	Deadline time.Duration // 30 minutes when zero
	// Threshold: a day's count below it is shown as "< Threshold"; 10
	// when zero.
	Threshold uint64
}

// Report is the report's JSON, its contract; the page and the CSV files
// show the same.
type Report struct {
	From            time.Time `json:"from"`
	To              time.Time `json:"to"`
	DeadlineSeconds int64     `json:"deadline_seconds"`
	Threshold       uint64    `json:"threshold"`
	Lists           []List    `json:"lists"`
	ISPs            []ISP     `json:"isps"`
	// DamagedLines counts stored receipt lines left out: damaged, or a
	// receipt of another resolver than its file's.
	DamagedLines int `json:"damaged_lines"`
	// Warnings say what the publisher's directory could not tell (a delta
	// that does not start from the version before it), naming the file.
	Warnings []string `json:"-"`
}

// List is one list's part.
type List struct {
	Name      string    `json:"name"`
	Issuer    string    `json:"issuer"`
	Authority string    `json:"authority"`
	Hashed    bool      `json:"hashed"`
	Versions  []Version `json:"versions"`
	Added     int       `json:"added"`   // by the versions of the period
	Removed   int       `json:"removed"` // likewise
	// Orders counts the distinct order references of the entries the
	// period's versions added.
	Orders int `json:"orders"`
	// Entries in force at the end of the period: the last version issued
	// before it; null when the directory cannot tell.
	Entries       *int  `json:"entries"`
	BlockedPerDay []Day `json:"blocked_per_day"`
}

// Version is one version issued in the period.
type Version struct {
	Serial uint64    `json:"serial"`
	Issued time.Time `json:"issued"`
	SHA256 string    `json:"sha256"`
	// Added and Removed against the version before; null when the
	// directory holds neither a delta between them nor both whole.
	Added   *int `json:"added"`
	Removed *int `json:"removed"`
	Entries *int `json:"entries"`
	// Resolvers judged on this version, the share of them that enforced
	// it within the deadline, and those that had not by the period's end.
	Resolvers      int      `json:"resolvers"`
	WithinDeadline *float64 `json:"within_deadline"`
	Never          []string `json:"never"`
	// Times to enforce, over the resolvers that did, in seconds.
	MedianSeconds *float64 `json:"median_seconds"`
	P95Seconds    *float64 `json:"p95_seconds"`
	WorstSeconds  *float64 `json:"worst_seconds"`

	latencies []time.Duration // of the resolvers that enforced it, sorted
}

// Day is one day's blocked queries of a list, across the fleet.
type Day struct {
	Date    string `json:"date"`
	Queries Count  `json:"queries"`
}

// Count is a count shown exactly from the threshold up, and as "< k"
// below it.
type Count struct {
	N, Threshold uint64
}

// Shown returns the count as the report shows it.
func (c Count) Shown() string {
	if c.N < c.Threshold {
		return "< " + strconv.FormatUint(c.Threshold, 10)
	}
	return strconv.FormatUint(c.N, 10)
}

// Exact reports whether the count is shown exactly.
func (c Count) Exact() bool { return c.N >= c.Threshold }

// MarshalJSON writes a number, or the string "< k".
func (c Count) MarshalJSON() ([]byte, error) {
	if c.Exact() {
		return []byte(strconv.FormatUint(c.N, 10)), nil
	}
	return []byte(strconv.Quote(c.Shown())), nil
}

// ISP is one ISP, by the key that signs its resolvers' receipts.
type ISP struct {
	Key       string `json:"key"`
	Resolvers int    `json:"resolvers"`
	// WithinDeadline is the share of its resolvers' versions (each
	// resolver judged on each version) enforced within the deadline.
	WithinDeadline *float64 `json:"within_deadline"`
}

// judgedSince is how long before a version's issue a resolver must have
// sent a receipt to be judged on it: one that fell silent longer before
// is taken to have left the fleet.
const judgedSince = 24 * time.Hour

// Build reads the store and the directory and builds the report.
func Build(opt Options) (*Report, error) {
	if opt.Deadline == 0 {
		opt.Deadline = 30 * time.Minute
	}
	if opt.Threshold == 0 {
		opt.Threshold = 10
	}
	if opt.MaxSize == 0 {
		opt.MaxSize = 1 << 30
	}
	published, warnings, err := readPublished(opt.Lists, opt.Keys, opt.MaxSize)
	if err != nil {
		return nil, err
	}
	inCatalog := catalog{}
	for name, vs := range published {
		inCatalog[name] = map[uint64]string{}
		for _, v := range vs {
			inCatalog[name][v.serial] = v.sha256
		}
	}
	fleet, damaged, err := readFleet(opt.Receipts, opt.To.UTC(), inCatalog)
	if err != nil {
		return nil, err
	}
	from, to := opt.From.UTC(), opt.To.UTC()
	if from.IsZero() || to.IsZero() {
		first, last := coverage(fleet)
		if from.IsZero() {
			from = first
		}
		if to.IsZero() {
			to = last
		}
	}
	if from.IsZero() || to.IsZero() {
		return nil, errors.New("no receipts to take the period from: give -from and -to")
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("the period from %s to %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	r := &Report{From: from, To: to, DeadlineSeconds: int64(opt.Deadline / time.Second), Threshold: opt.Threshold, DamagedLines: damaged, Warnings: warnings}

	names := make([]string, 0, len(published))
	for name := range published {
		names = append(names, name)
	}
	slices.Sort(names)
	type tally struct{ pairs, within int }
	perKey := map[string]*tally{}
	for _, name := range names {
		vs := published[name]
		l := List{Name: name, BlockedPerDay: []Day{}, Versions: []Version{}}
		orders := map[string]bool{}
		for i, v := range vs {
			if !v.issued.Before(to) {
				break
			}
			l.Issuer, l.Authority, l.Hashed = v.header.Issuer, v.header.Authority, v.header.Salt != nil
			l.Entries = known(v.count)
			if v.issued.Before(from) {
				continue
			}
			ver := Version{Serial: v.serial, Issued: v.issued.UTC(), SHA256: v.sha256, Entries: known(v.count), Never: []string{}}
			if i > 0 {
				added, removed, addedOrders, ok, warning := change(vs[i-1], v)
				if warning != "" {
					r.Warnings = append(r.Warnings, warning)
				}
				if ok {
					ver.Added, ver.Removed = &added, &removed
					l.Added += added
					l.Removed += removed
					for _, o := range addedOrders {
						if o != "" {
							orders[o] = true
						}
					}
				}
			}
			for _, res := range fleet {
				latency, judged, enforced := enforcement(res, name, vs, v, to)
				if !judged {
					continue
				}
				ver.Resolvers++
				k := perKey[res.key]
				if k == nil {
					k = &tally{}
					perKey[res.key] = k
				}
				k.pairs++
				switch {
				case !enforced:
					ver.Never = append(ver.Never, res.id)
				default:
					ver.latencies = append(ver.latencies, latency)
					if latency <= opt.Deadline {
						k.within++
					}
				}
			}
			ver.summarize(opt.Deadline)
			l.Versions = append(l.Versions, ver)
		}
		l.Orders = len(orders)
		l.BlockedPerDay = blockedPerDay(fleet, name, from, to, opt.Threshold)
		r.Lists = append(r.Lists, l)
	}
	if r.Lists == nil {
		r.Lists = []List{}
	}

	byKey := map[string]int{}
	for _, res := range fleet {
		if res.activeIn(from, to) {
			byKey[res.key]++
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r.ISPs = []ISP{}
	for _, k := range keys {
		isp := ISP{Key: k, Resolvers: byKey[k]}
		if j := perKey[k]; j != nil && j.pairs > 0 {
			isp.WithinDeadline = share(j.within, j.pairs)
		}
		r.ISPs = append(r.ISPs, isp)
	}
	return r, nil
}

// coverage returns the days the fleet's receipts cover: the start of the
// day of the first receipt, and of the day after the last.
func coverage(fleet []*resolver) (from, to time.Time) {
	var first, last time.Time
	for _, res := range fleet {
		if first.IsZero() || res.first.Before(first) {
			first = res.first
		}
		if end := res.active[len(res.active)-1].to; end.After(last) {
			last = end
		}
	}
	if first.IsZero() {
		return time.Time{}, time.Time{}
	}
	return time.Unix(day(first)*86400, 0).UTC(), time.Unix((day(last)+1)*86400, 0).UTC()
}

// enforcement judges one resolver on version v of list name. It is judged
// when it sent a receipt (naming the list or not) within a day before v
// was issued, or later before the period's end: a resolver silent longer
// is taken to have left the fleet, and one that leaves the list out of its
// receipts is judged all the same. It enforced v when a receipt shows v or
// a later version the directory holds, and its time to do so runs from
// v's issue, or from its first receipt when that came later (a resolver
// that joined the fleet after).
func enforcement(res *resolver, name string, vs []*version, v *version, to time.Time) (latency time.Duration, judged, enforced bool) {
	if !res.activeIn(v.issued.Add(-judgedSince), to) {
		return 0, false, false
	}
	h := res.lists[name]
	if h == nil {
		return 0, true, false
	}
	for _, s := range h.seen {
		if s.serial >= v.serial {
			since := v.issued
			if res.first.After(since) {
				since = res.first
			}
			return max(0, s.at.Sub(since)), true, true
		}
	}
	return 0, true, false
}

// summarize fills in the figures of the resolvers' times to enforce.
func (v *Version) summarize(deadline time.Duration) {
	slices.Sort(v.latencies)
	if v.Resolvers > 0 {
		within, _ := slices.BinarySearch(v.latencies, deadline+1)
		v.WithinDeadline = share(within, v.Resolvers)
	}
	if n := len(v.latencies); n > 0 {
		v.MedianSeconds = seconds(v.latencies[rank(50, n)])
		v.P95Seconds = seconds(v.latencies[rank(95, n)])
		v.WorstSeconds = seconds(v.latencies[n-1])
	}
}

// rank is the index of the p-th percentile of n sorted values, by nearest
// rank: the smallest value at or above p percent of them.
func rank(p, n int) int { return (p*n+99)/100 - 1 }

func seconds(d time.Duration) *float64 {
	s := math.Round(d.Seconds()*1000) / 1000
	return &s
}

func share(n, of int) *float64 {
	s := math.Round(float64(n)/float64(of)*10000) / 10000
	return &s
}

func known(n int) *int {
	if n < 0 {
		return nil
	}
	return &n
}

// blockedPerDay sums the fleet's blocked queries of one list for each day
// of the period.
func blockedPerDay(fleet []*resolver, name string, from, to time.Time, threshold uint64) []Day {
	var days []Day
	for d := day(from); d < day(to.Add(-time.Nanosecond))+1; d++ {
		var n uint64
		for _, res := range fleet {
			if h := res.lists[name]; h != nil {
				n = addSat(n, h.perDay[d])
			}
		}
		days = append(days, Day{Date: time.Unix(d*86400, 0).UTC().Format(time.DateOnly), Queries: Count{n, threshold}})
	}
	return days
}
