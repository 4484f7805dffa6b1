package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
)

const exportUsage = `Usage: regblock export -format rpz [-p PUB] [-notice ADDR,...] [-ttl SECONDS] [-o FILE] LIST

Writes a list as a Response Policy Zone that BIND, Unbound, PowerDNS and
Knot enforce as regblockd enforces the list: NAME becomes NAME and *.NAME,
=NAME just NAME, *.NAME just *.NAME, !NAME a passthru at NAME and *.NAME,
ip:PREFIX an rpz-ip trigger. Blocked names get NXDOMAIN (CNAME .), or with
-notice the notice addresses as local data, as regblockd's notice option
gives them. The zone has no $ORIGIN, so it loads under any zone name; its
SOA serial is the list's serial, and the list's header travels in ";$"
comment lines that regblock reads back and other resolvers ignore.

With -p, the list's signature is checked first and a list that does not
verify is not exported.

Example:
  regblock export -format rpz -p regulator.pub -o /etc/unbound/national.rpz blocklists/example.list

`

func export(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("export", exportUsage, stderr)
	format := fs.String("format", "", "output format: rpz")
	var pubs, notices multiFlag
	fs.Var(&pubs, "p", "verify the list against these public key `files` first")
	fs.Var(&notices, "notice", "answer blocked names with these notice `addresses` (comma list) instead of NXDOMAIN")
	ttl := fs.Uint("ttl", 60, "TTL of the zone's records, in seconds")
	out := fs.String("o", "", "write the zone to `FILE` (atomically) instead of standard output")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{*format != "", "-format is required (rpz)"},
		need{fs.NArg() == 1, "want one LIST; got " + gotArgs(fs)},
	); code >= 0 {
		return code
	}
	if *format != "rpz" {
		return fail(stderr, 2, fmt.Errorf("unknown -format %q", *format), "the only format is rpz")
	}
	var notice []netip.Addr
	for _, n := range notices {
		addr, err := blocklist.ParseNoticeAddr(n)
		if err != nil {
			return fail(stderr, 2, fmt.Errorf("-notice %v", err), "")
		}
		notice = append(notice, addr)
	}
	if *ttl > 1<<31-1 {
		return fail(stderr, 2, fmt.Errorf("-ttl %d is too large", *ttl), "")
	}

	path := fs.Arg(0)
	var l *blocklist.List
	if len(pubs) > 0 {
		keys, err := readKeys(pubs)
		if err != nil {
			return fail(stderr, 2, err, "")
		}
		if l, err = load(admit.ByKeys(keys), path, regularfile.NoLimit); err != nil {
			printErrors(stderr, err)
			return fail(stderr, 1, fmt.Errorf("%s was not exported", path), "")
		}
	} else {
		var err error
		if l, err = parseFile(path, stderr); err != nil {
			return fail(stderr, 1, err, "")
		}
	}
	var buf strings.Builder
	if err := blocklist.WriteRPZ(&buf, l, notice, uint32(*ttl)); err != nil {
		return fail(stderr, 1, err, "")
	}
	if *out == "" {
		if _, err := io.WriteString(stdout, buf.String()); err != nil {
			return fail(stderr, 1, err, "")
		}
		return 0
	}
	if err := atomicfile.Write(*out, []byte(buf.String()), 0o644); err != nil {
		return fail(stderr, 1, err, "")
	}
	return 0
}
