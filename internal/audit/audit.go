// Package audit is the prober of regblock audit (the audit log is package
// ledger's). It checks, from outside, that a resolver enforces signed
// lists: it asks for listed names, names below and beside each entry, the
// canaries and control names, and compares each answer with what the lists
// require.
package audit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/term"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Classes of answers.
const (
	ClassBlocked      = "blocked"       // the expected block answer
	ClassBlockedOther = "blocked-other" // blocked, but not with the expected answer
	ClassNotBlocked   = "not-blocked"
	ClassError        = "error" // no answer, or an error rcode
)

type Probe struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Expect string `json:"expect"` // ClassBlocked or ClassNotBlocked
	Why    string `json:"why"`    // the entry or control that sets the expectation
	Got    string `json:"got"`
	Detail string `json:"detail"`
	Pass   bool   `json:"pass"`

	// list is the list a canary probe audits: its block answer's EDE must
	// name the list, its serial and its issuer.
	list *blocklist.List
}

type List struct {
	Name   string `json:"name"`
	Serial uint64 `json:"serial"`
	Issuer string `json:"issuer,omitempty"`
	File   string `json:"file"`
}

type Report struct {
	Resolver   string         `json:"resolver"`
	Transport  string         `json:"transport"`
	Started    time.Time      `json:"started"`
	Finished   time.Time      `json:"finished"`
	Lists      []List         `json:"lists"`
	Mode       string         `json:"mode"`
	Seed       uint64         `json:"seed"`
	Sample     int            `json:"sample,omitempty"`
	Notice     []string       `json:"notice,omitempty"`
	Probes     []Probe        `json:"probes"`
	Counts     map[string]int `json:"counts"`
	Passed     int            `json:"passed"`
	Compliance float64        `json:"compliance_percent"`
	Compliant  bool           `json:"compliant"`
}

// Config says how to audit a resolver.
type Config struct {
	Server, Transport string       // host:port; udp, tcp or tcp-tls
	Notice            []netip.Addr // the expected block answer's addresses
	NXDomain          bool         // the resolver answers NXDOMAIN instead
	Timeout           time.Duration
	Concurrency       int     // queries in flight at most
	Rate              float64 // queries a second at most; 0 for no limit
	TLSConfig         *tls.Config
	Sample            int    // entries a list to audit, 0 for all
	Seed              uint64 // of the sample and of generated names
	Controls          []string
	Canary            bool                  // ask only for the canary names
	Progress          func(done, total int) // may be nil
}

// Run audits the resolver of cfg against lists, whose signatures the
// caller verified, and returns the report. Its error says why the audit
// could not be made (no canary with Canary, lists that do not index).
func Run(cfg Config, lists []*blocklist.List) (*Report, error) {
	ix, err := blockindex.Build(lists)
	if err != nil {
		return nil, err
	}
	cfg.Concurrency = max(1, cfg.Concurrency)
	if cfg.Progress == nil {
		cfg.Progress = func(int, int) {}
	}
	r := &Report{Resolver: cfg.Server, Transport: cfg.Transport, Started: time.Now().UTC(), Seed: cfg.Seed, Sample: cfg.Sample, Mode: "full"}
	for _, l := range ix.Lists() {
		r.Lists = append(r.Lists, List{l.Name, l.Serial, l.Issuer, l.File})
	}
	for _, a := range cfg.Notice {
		r.Notice = append(r.Notice, a.String())
	}
	if cfg.NXDomain {
		r.Notice = append(r.Notice, "nxdomain")
	}
	var probes []Probe
	if cfg.Canary {
		r.Mode = "canary"
		probes, err = canaryProbes(ix.Lists())
	} else {
		for _, l := range lists {
			if l.Hashed() {
				return nil, fmt.Errorf("%s is a hashed list, which names no name to ask: audit with the plain list (regblock verify-hashed PLAIN %s shows it is the same list), or with -canary", l.File, l.File)
			}
		}
		probes, err = listProbes(ix, cfg.Sample, cfg.Seed, cfg.Controls)
	}
	if err != nil {
		return nil, err
	}
	r.Probes = runProbes(cfg, probes, cfg.Progress)
	r.Finished = time.Now().UTC()
	r.Counts = map[string]int{}
	for _, p := range r.Probes {
		r.Counts[p.Got]++
		if p.Pass {
			r.Passed++
		}
	}
	r.Compliance = 100 * float64(r.Passed) / float64(len(r.Probes))
	r.Compliant = r.Passed == len(r.Probes)
	return r, nil
}

// Unanswered reports whether no query got an answer: the resolver could
// not be audited at all.
func (r *Report) Unanswered() bool { return r.Counts[ClassError] == len(r.Probes) }

func ReadControls(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		name, err := blocklist.CanonicalName(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		names = append(names, name)
	}
	return names, nil
}

func canaryProbes(lists []*blocklist.List) ([]Probe, error) {
	var probes []Probe
	for _, l := range lists {
		if l.Canary == "" {
			return nil, fmt.Errorf("%s: list %q has no canary header; audit it without -canary", l.File, l.Name)
		}
		for _, p := range probesFor(l.Canary, ClassBlocked, "canary of list "+l.Name) {
			p.list = l
			probes = append(probes, p)
		}
	}
	return probes, nil
}

// listProbes returns the probes for the entries of every list (or a sample
// of them), the canaries, generated names below and beside each entry, and
// the control names. What each probe expects comes from the index, the same
// matching a resolver does.
func listProbes(ix *blockindex.Index, sample int, seed uint64, controls []string) ([]Probe, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := map[string]bool{}
	var probes []Probe
	add := func(name, why string) {
		if seen[name] {
			return
		}
		seen[name] = true
		expect := ClassNotBlocked
		if m, ok := ix.Lookup(name); ok {
			if m.Action == blocklist.Drop {
				return // no answer at all cannot be told from an outage
			}
			expect = ClassBlocked
			if why == "" {
				why = fmt.Sprintf("list %s: %s", m.List.Name, m.Kind.Prefix()+strings.TrimSuffix(strings.ToLower(name[m.Start:]), "."))
			}
		}
		probes = append(probes, probesFor(name, expect, why)...)
	}
	generated := func(parent string) string { return fmt.Sprintf("regblock-audit-%08x.%s", rng.Uint32(), parent) }
	for _, l := range ix.Lists() {
		entries := l.Entries
		if sample > 0 && sample < len(entries) {
			entries = slices.Clone(entries)
			rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
			entries = entries[:sample]
		}
		for _, e := range entries {
			if e.Prefix.IsValid() {
				continue // an address entry acts on upstream answers, not on a name to ask
			}
			add(e.Name, "")
			add(generated(e.Name), "")
			if _, parent, ok := strings.Cut(e.Name, "."); ok {
				add(generated(parent), "")
			}
		}
		if l.Canary != "" {
			add(l.Canary, "")
		}
	}
	for _, name := range controls {
		if m, ok := ix.Lookup(name); ok {
			return nil, fmt.Errorf("control name %s is blocked by list %s: a control must be a name no list blocks", name, m.List.Name)
		}
		add(name, "control name")
	}
	for i := range probes {
		if probes[i].Why == "" {
			probes[i].Why = "not listed"
		}
	}
	return probes, nil
}

func probesFor(name, expect, why string) []Probe {
	return []Probe{
		{Name: dns.Fqdn(name), Type: "A", Expect: expect, Why: why},
		{Name: dns.Fqdn(name), Type: "AAAA", Expect: expect, Why: why},
	}
}

// runProbes sends the probes with at most cfg.Concurrency in flight and
// cfg.Rate a second, and classifies the answers.
func runProbes(cfg Config, probes []Probe, progress func(done, total int)) []Probe {
	out := slices.Clone(probes)
	var pace <-chan time.Time // nil: no limit
	if cfg.Rate > 0 {
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer tick.Stop()
		pace = tick.C
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &dns.Client{Net: cfg.Transport, Timeout: cfg.Timeout, TLSConfig: cfg.TLSConfig}
			for i := range work {
				classify(&out[i], ask(client, cfg.Server, out[i]), cfg)
				mu.Lock()
				done++
				progress(done, len(out))
				mu.Unlock()
			}
		}()
	}
	for i := range out {
		if pace != nil {
			<-pace
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

type answer struct {
	msg *dns.Msg
	err error
}

// ask sends one probe, with EDNS0 so that Extended DNS Errors come back,
// retrying once on a timeout and over TCP when the answer was truncated.
func ask(c *dns.Client, server string, p Probe) answer {
	m := new(dns.Msg).SetQuestion(p.Name, dns.StringToType[p.Type])
	m.SetEdns0(1232, false)
	var r *dns.Msg
	var err error
	for try := 0; try < 2; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		r, _, err = c.ExchangeContext(ctx, m, server)
		cancel()
		if err == nil && r.Truncated && c.Net == "udp" {
			tcp := *c
			tcp.Net = "tcp"
			r, _, err = tcp.Exchange(m, server)
		}
		if err == nil {
			break
		}
	}
	return answer{r, err}
}

// classify sets what a probe got and whether that passes.
func classify(p *Probe, a answer, cfg Config) {
	p.Got, p.Detail = ClassError, ""
	switch {
	case a.err != nil:
		p.Detail = a.err.Error()
	case a.msg.Rcode != dns.RcodeSuccess && a.msg.Rcode != dns.RcodeNameError:
		p.Detail = "rcode " + dns.RcodeToString[a.msg.Rcode]
	default:
		p.Got, p.Detail = classifyAnswer(a.msg, p.Type, cfg)
		if p.Got == ClassBlocked && p.list != nil {
			if why := otherVersion(blockingEDE(a.msg), p.list); why != "" {
				p.Got, p.Detail = ClassBlockedOther, why+": "+p.Detail
			}
		}
	}
	p.Pass = p.Got == p.Expect
}

// listSerial finds the list and serial in a regblock EDE text.
var listSerial = regexp.MustCompile(`\(list (\S+) serial (\d+)\)`)

// otherVersion says how the block answer's EDE shows another version of l
// than the one audited (another serial, another issuer, none named), or ""
// when it names l's.
func otherVersion(ede *dns.EDNS0_EDE, l *blocklist.List) string {
	if ede == nil {
		return "no Extended DNS Error names the list"
	}
	text := ede.ExtraText
	var structured struct{ J string }
	if json.Unmarshal([]byte(text), &structured) == nil && structured.J != "" {
		text = structured.J
	}
	m := listSerial.FindStringSubmatch(text)
	switch {
	case m == nil:
		return "the Extended DNS Error names no list and serial"
	case m[1] != l.Name:
		return fmt.Sprintf("list %s, not %s", m[1], l.Name)
	case m[2] != strconv.FormatUint(l.Serial, 10):
		return fmt.Sprintf("serial %s of list %s in force, not %d", m[2], l.Name, l.Serial)
	}
	issuer := l.Issuer
	if issuer == "" {
		issuer = "the issuer of list " + l.Name
	}
	if !strings.HasPrefix(text, "Blocked by order of "+issuer) {
		return fmt.Sprintf("another issuer than %q", issuer)
	}
	return ""
}

func classifyAnswer(m *dns.Msg, qtype string, cfg Config) (string, string) {
	var addrs []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			addrs = append(addrs, rr.A.String())
		case *dns.AAAA:
			addrs = append(addrs, rr.AAAA.String())
		case *dns.CNAME:
			addrs = append(addrs, "CNAME "+rr.Target)
		}
	}
	ede := blockingEDE(m)
	detail := dns.RcodeToString[m.Rcode]
	if len(addrs) > 0 {
		detail += " " + strings.Join(addrs, " ")
	} else if m.Rcode == dns.RcodeSuccess {
		detail += " NODATA"
	}
	if ede != nil {
		detail += fmt.Sprintf(" EDE %d %q", ede.InfoCode, ede.ExtraText)
	}

	if expectedBlock(m, qtype, addrs, ede != nil, cfg) {
		return ClassBlocked, detail
	}
	if ede != nil || matchesNotice(addrs, cfg.Notice) {
		return ClassBlockedOther, detail
	}
	return ClassNotBlocked, detail
}

// expectedBlock reports whether m is the block answer the auditor expects.
// An answer without addresses (NXDOMAIN, NODATA) counts only with a blocking
// EDE: an unlisted name that does not exist looks the same without one.
func expectedBlock(m *dns.Msg, qtype string, addrs []string, ede bool, cfg Config) bool {
	switch {
	case cfg.NXDomain:
		return m.Rcode == dns.RcodeNameError && ede
	case len(cfg.Notice) == 0:
		return ede
	case m.Rcode != dns.RcodeSuccess:
		return false
	}
	var want []string
	for _, a := range cfg.Notice {
		if a.Is4() == (qtype == "A") {
			want = append(want, a.String())
		}
	}
	if len(want) == 0 {
		return len(addrs) == 0 && ede
	}
	slices.Sort(want)
	return slices.Equal(slices.Sorted(slices.Values(addrs)), want)
}

func matchesNotice(addrs []string, notice []netip.Addr) bool {
	for _, a := range addrs {
		for _, n := range notice {
			if a == n.String() {
				return true
			}
		}
	}
	return false
}

// blockingEDE returns the Extended DNS Error saying the answer was blocked
// (Blocked, Censored, Filtered), if any.
func blockingEDE(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				switch e.InfoCode {
				case dns.ExtendedErrorCodeBlocked, dns.ExtendedErrorCodeCensored, dns.ExtendedErrorCodeFiltered:
					return e
				}
			}
		}
	}
	return nil
}

// ProgressTo returns a progress callback that draws a bar when w is a
// terminal, and does nothing otherwise.
func ProgressTo(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(int, int) {}
	}
	return func(done, total int) {
		const width = 40
		n := width * done / total
		fmt.Fprintf(f, "\r[%s%s] %d/%d", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
		if done == total {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

// WriteText writes the report for a person: a summary, then each failure.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "resolver:   %s (%s)\n", r.Resolver, r.Transport)
	for _, l := range r.Lists {
		fmt.Fprintf(w, "list:       %s serial %d (%s)\n", l.Name, l.Serial, l.File)
	}
	fmt.Fprintf(w, "mode:       %s", r.Mode)
	if r.Sample > 0 {
		fmt.Fprintf(w, ", sample of %d entries a list", r.Sample)
	}
	fmt.Fprintf(w, ", seed %d\n", r.Seed)
	fmt.Fprintf(w, "time:       %s to %s\n", r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339))
	fmt.Fprintf(w, "queries:    %d: %d blocked, %d blocked otherwise, %d not blocked, %d errors\n", len(r.Probes),
		r.Counts[ClassBlocked], r.Counts[ClassBlockedOther], r.Counts[ClassNotBlocked], r.Counts[ClassError])
	verdict := "COMPLIANT"
	if !r.Compliant {
		verdict = "NOT COMPLIANT"
	}
	fmt.Fprintf(w, "compliance: %.1f%% (%d of %d as expected): %s\n", r.Compliance, r.Passed, len(r.Probes), verdict)
	if r.Compliant {
		return
	}
	fmt.Fprintln(w, "\nfailures:")
	for _, p := range r.Probes {
		if !p.Pass {
			fmt.Fprintf(w, "  %-40s %-4s expected %-11s got %-13s %s [%s]\n", p.Name, p.Type, p.Expect, p.Got, p.Detail, p.Why)
		}
	}
}
