package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/regblock/regblock/internal/audit"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

const auditUsage = `Usage: regblock audit -server HOST:PORT -p PUB [-trust POLICY] [flags] LIST...

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

func auditCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit", auditUsage, stderr)
	server := fs.String("server", "", "resolver to audit, `host:port`")
	var pubs, notices multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas)")
	trustPath := fs.String("trust", "", "judge lists by the trust policy `file`, or its history directory (N.trust, walked from the pinned roots); -p then names the pinned root keys, as the resolver's")
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
	if code := require(fs,
		need{*server != "", "-server is required: the resolver to audit, host:port"},
		need{len(pubs) > 0, "-p is required: the public key the lists are signed with"},
		need{fs.NArg() > 0, "no LIST to audit"},
	); code >= 0 {
		return code
	}
	cfg := audit.Config{Server: *server, Transport: *transport, Timeout: *timeout, Concurrency: *concurrency, Rate: *rate,
		Sample: *sample, Seed: *seed, Canary: *canary, Progress: audit.ProgressTo(stderr)}
	switch cfg.Transport {
	case "udp", "tcp":
	case "tcp-tls":
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: *insecure}
	default:
		return fail(stderr, 2, fmt.Errorf("-net %q: want udp, tcp or tcp-tls", cfg.Transport), "")
	}
	if cfg.Rate <= 0 {
		return fail(stderr, 2, errors.New("-rate must be positive"), "")
	}
	for _, n := range notices {
		if strings.EqualFold(n, "nxdomain") {
			cfg.NXDomain = true
			continue
		}
		addr, err := blocklist.ParseNoticeAddr(n)
		if err != nil {
			return fail(stderr, 2, fmt.Errorf("-notice %v, nor nxdomain", err), "")
		}
		cfg.Notice = append(cfg.Notice, addr)
	}

	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	j, err := newJudge(*trustPath, keys, stderr)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	var lists []*blocklist.List
	for _, path := range fs.Args() {
		l, err := load(j, path, regularfile.NoLimit)
		if err != nil {
			return fail(stderr, 2, err, "only a list whose signature verifies can be audited")
		}
		lists = append(lists, l)
	}
	if *controls != "" {
		if cfg.Controls, err = audit.ReadControls(*controls); err != nil {
			return fail(stderr, 2, err, "")
		}
	}

	r, err := audit.Run(cfg, lists)
	if err != nil {
		return fail(stderr, 2, err, "")
	}
	if *htmlFile != "" {
		if err := r.WriteHTML(*htmlFile); err != nil {
			return fail(stderr, 2, err, "")
		}
	}
	if *asJSON {
		writeJSON(stdout, r)
	} else {
		r.WriteText(stdout)
	}
	switch {
	case r.Unanswered():
		return fail(stderr, 2, fmt.Errorf("no answer from %s to any of %d queries", cfg.Server, len(r.Probes)), "check the address, the port and -net")
	case !r.Compliant:
		return 1
	}
	return 0
}
