package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/term"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

const auditUsage = `Usage: regblock audit -server HOST:PORT -p PUB [flags] LIST...

Checks that a resolver enforces signed lists: queries it, in A and AAAA, for
listed names, names below each entry, and control names that must not be
blocked (exceptions, siblings, and -controls FILE), and compares each answer
with what the lists say. With -canary it asks only for each list's signed
canary name, so that anyone can check enforcement without asking a resolver
for a real listed name: the mode for monitoring probes.

An answer counts as blocked when it is the -notice answer: the notice
addresses of its family; for a family without one, NODATA with an Extended
DNS Error Blocked, Censored or Filtered; with -notice nxdomain, NXDOMAIN with
such an EDE. Without -notice, any answer with such an EDE counts. A listed
name blocked some other way is reported as "blocked-other" and is not
compliant.

Exit status: 0 compliant, 1 not compliant, 2 could not audit.

Examples:
  regblock audit -server 192.0.2.53:53 -p regulator.pub -notice 192.0.2.80,2001:db8::80 example.list
  regblock audit -server 192.0.2.53:53 -p regulator.pub -canary example.list
  regblock audit -server 192.0.2.53:53 -p regulator.pub -sample 500 -seed 7 -html report.html example.list

`

// Classes of answers.
const (
	classBlocked      = "blocked"       // the expected block answer
	classBlockedOther = "blocked-other" // blocked, but not with the expected answer
	classNotBlocked   = "not-blocked"
	classError        = "error" // no answer, or an error rcode
)

type auditProbe struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Expect string `json:"expect"` // classBlocked or classNotBlocked
	Why    string `json:"why"`    // the entry or control that sets the expectation
	Got    string `json:"got"`
	Detail string `json:"detail"`
	Pass   bool   `json:"pass"`
}

type auditList struct {
	Name   string `json:"name"`
	Serial uint64 `json:"serial"`
	Issuer string `json:"issuer,omitempty"`
	File   string `json:"file"`
}

type auditReport struct {
	Resolver   string         `json:"resolver"`
	Transport  string         `json:"transport"`
	Started    time.Time      `json:"started"`
	Finished   time.Time      `json:"finished"`
	Lists      []auditList    `json:"lists"`
	Mode       string         `json:"mode"`
	Seed       uint64         `json:"seed"`
	Sample     int            `json:"sample,omitempty"`
	Notice     []string       `json:"notice,omitempty"`
	Probes     []auditProbe   `json:"probes"`
	Counts     map[string]int `json:"counts"`
	Passed     int            `json:"passed"`
	Compliance float64        `json:"compliance_percent"`
	Compliant  bool           `json:"compliant"`
}

// auditConfig is what audit's flags say.
type auditConfig struct {
	server, transport string
	notice            []netip.Addr
	nxdomain          bool
	timeout           time.Duration
	concurrency       int
	rate              float64
	tlsConfig         *tls.Config
}

func audit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit", auditUsage, stderr)
	server := fs.String("server", "", "resolver to audit, `host:port`")
	var pubs, notices multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	fs.Var(&notices, "notice", "expected notice `addresses` (comma list), or nxdomain")
	sample := fs.Int("sample", 0, "audit a random sample of `N` entries per list (0: all)")
	seed := fs.Uint64("seed", 1, "seed of the sample and of generated names, to reproduce a report")
	controls := fs.String("controls", "", "`file` of names that must not be blocked, one a line")
	canary := fs.Bool("canary", false, "query only each list's canary name")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report to `file`")
	transport := fs.String("net", "udp", "transport: udp, tcp or tcp-tls (DNS over TLS)")
	insecure := fs.Bool("tls-insecure", false, "with -net tcp-tls, do not verify the server's certificate")
	concurrency := fs.Int("concurrency", 4, "queries in flight at most")
	rate := fs.Float64("rate", 50, "queries per second at most")
	timeout := fs.Duration("timeout", 2*time.Second, "timeout of one query")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 || *server == "" || len(pubs) == 0 {
		fs.Usage()
		return 2
	}
	cfg := auditConfig{server: *server, transport: *transport, timeout: *timeout, concurrency: max(1, *concurrency), rate: *rate}
	switch cfg.transport {
	case "udp", "tcp":
	case "tcp-tls":
		cfg.tlsConfig = &tls.Config{InsecureSkipVerify: *insecure}
	default:
		return fail(stderr, 2, fmt.Errorf("-net %q: want udp, tcp or tcp-tls", cfg.transport), "")
	}
	if cfg.rate <= 0 {
		return fail(stderr, 2, errors.New("-rate must be positive"), "")
	}
	for _, n := range notices {
		if strings.EqualFold(n, "nxdomain") {
			cfg.nxdomain = true
			continue
		}
		addr, err := blocklist.ParseNoticeAddr(n)
		if err != nil {
			return fail(stderr, 2, fmt.Errorf("-notice %v, nor nxdomain", err), "")
		}
		cfg.notice = append(cfg.notice, addr)
	}

	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	var lists []*blocklist.List
	for _, path := range fs.Args() {
		l, err := blocklist.Load(path, keys, 1<<40)
		if err != nil {
			return fail(stderr, 2, err, "only a list whose signature verifies can be audited")
		}
		lists = append(lists, l)
	}
	ix, err := blockindex.Build(lists)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	var controlNames []string
	if *controls != "" {
		if controlNames, err = readControls(*controls); err != nil {
			return fail(stderr, 2, err, "")
		}
	}

	r := &auditReport{Resolver: cfg.server, Transport: cfg.transport, Started: time.Now().UTC(), Seed: *seed, Sample: *sample, Mode: "full"}
	for _, l := range ix.Lists() {
		r.Lists = append(r.Lists, auditList{l.Name, l.Serial, l.Issuer, l.File})
	}
	for _, a := range cfg.notice {
		r.Notice = append(r.Notice, a.String())
	}
	if cfg.nxdomain {
		r.Notice = append(r.Notice, "nxdomain")
	}
	var probes []auditProbe
	if *canary {
		r.Mode = "canary"
		if probes, err = canaryProbes(ix.Lists()); err != nil {
			return fail(stderr, 2, err, "")
		}
	} else {
		if probes, err = listProbes(ix, *sample, *seed, controlNames); err != nil {
			return fail(stderr, 2, err, "")
		}
	}

	r.Probes = runProbes(cfg, probes, progressTo(stderr))
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

	if *htmlFile != "" {
		if err := writeHTMLReport(*htmlFile, r); err != nil {
			return fail(stderr, 2, err, "")
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printReport(stdout, r)
	}
	switch {
	case r.Counts[classError] == len(r.Probes):
		return fail(stderr, 2, fmt.Errorf("no answer from %s to any of %d queries", cfg.server, len(r.Probes)), "check the address, the port and -net")
	case !r.Compliant:
		return 1
	}
	return 0
}

func readControls(path string) ([]string, error) {
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

func canaryProbes(lists []*blocklist.List) ([]auditProbe, error) {
	var probes []auditProbe
	for _, l := range lists {
		if l.Canary == "" {
			return nil, fmt.Errorf("%s: list %q has no canary header; audit it without -canary", l.File, l.Name)
		}
		probes = append(probes, probesFor(l.Canary, classBlocked, "canary of list "+l.Name)...)
	}
	return probes, nil
}

// listProbes returns the probes for the entries of every list (or a sample
// of them), the canaries, generated names below and beside each entry, and
// the control names. What each probe expects comes from the index, the same
// matching a resolver does.
func listProbes(ix *blockindex.Index, sample int, seed uint64, controls []string) ([]auditProbe, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := map[string]bool{}
	var probes []auditProbe
	add := func(name, why string) {
		if seen[name] {
			return
		}
		seen[name] = true
		expect := classNotBlocked
		if m, ok := ix.Lookup(name); ok {
			if m.Action == blocklist.Drop {
				return // no answer at all cannot be told from an outage
			}
			expect = classBlocked
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

func probesFor(name, expect, why string) []auditProbe {
	return []auditProbe{
		{Name: dns.Fqdn(name), Type: "A", Expect: expect, Why: why},
		{Name: dns.Fqdn(name), Type: "AAAA", Expect: expect, Why: why},
	}
}

// runProbes sends the probes with at most cfg.concurrency in flight and
// cfg.rate a second, and classifies the answers.
func runProbes(cfg auditConfig, probes []auditProbe, progress func(done, total int)) []auditProbe {
	out := slices.Clone(probes)
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.rate))
	defer tick.Stop()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &dns.Client{Net: cfg.transport, Timeout: cfg.timeout, TLSConfig: cfg.tlsConfig}
			for i := range work {
				classify(&out[i], ask(client, cfg.server, out[i]), cfg)
				mu.Lock()
				done++
				progress(done, len(out))
				mu.Unlock()
			}
		}()
	}
	for i := range out {
		<-tick.C
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
func ask(c *dns.Client, server string, p auditProbe) answer {
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
func classify(p *auditProbe, a answer, cfg auditConfig) {
	p.Got, p.Detail = classError, ""
	switch {
	case a.err != nil:
		p.Detail = a.err.Error()
	case a.msg.Rcode != dns.RcodeSuccess && a.msg.Rcode != dns.RcodeNameError:
		p.Detail = "rcode " + dns.RcodeToString[a.msg.Rcode]
	default:
		p.Got, p.Detail = classifyAnswer(a.msg, p.Type, cfg)
	}
	p.Pass = p.Got == p.Expect
}

func classifyAnswer(m *dns.Msg, qtype string, cfg auditConfig) (string, string) {
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
		return classBlocked, detail
	}
	if ede != nil || matchesNotice(addrs, cfg.notice) {
		return classBlockedOther, detail
	}
	return classNotBlocked, detail
}

// expectedBlock reports whether m is the block answer the auditor expects.
// An answer without addresses (NXDOMAIN, NODATA) counts only with a blocking
// EDE: an unlisted name that does not exist looks the same without one.
func expectedBlock(m *dns.Msg, qtype string, addrs []string, ede bool, cfg auditConfig) bool {
	switch {
	case cfg.nxdomain:
		return m.Rcode == dns.RcodeNameError && ede
	case len(cfg.notice) == 0:
		return ede
	case m.Rcode != dns.RcodeSuccess:
		return false
	}
	var want []string
	for _, a := range cfg.notice {
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

// progressTo returns a progress callback that draws a bar when w is a
// terminal, and does nothing otherwise.
func progressTo(w io.Writer) func(done, total int) {
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

func printReport(w io.Writer, r *auditReport) {
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
		r.Counts[classBlocked], r.Counts[classBlockedOther], r.Counts[classNotBlocked], r.Counts[classError])
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
