package blocklist

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const rpzHead = `$TTL 300
@ SOA localhost. hostmaster.regulator.example. 2026112801 3600 600 86400 300
  NS  localhost.
`

func TestParseRPZHeader(t *testing.T) {
	text := `;$ issuer: Regulator of Examples
;$ authority: Example Act 2026, section 1
;$ appeal: https://appeal.regulator.example/
;$ contact: mailto:complaints@regulator.example
;$ expires: 2026-12-05T06:00:00Z
;$ canary: canary.regblock.test
; an ordinary comment
$ORIGIN rpz.regulator.example.
@ 3600 IN SOA ns.regulator.example. hostmaster.regulator.example. (
	2026112802 ; serial
	3600 600 86400 300 )
@ NS ns.regulator.example.
abuse.example CNAME .
`
	l, err := Parse("national.rpz", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "national" || l.Serial != 2026112802 || l.Issuer != "Regulator of Examples" ||
		l.Authority != "Example Act 2026, section 1" || l.Appeal != "https://appeal.regulator.example/" ||
		len(l.Contact) != 1 || l.Canary != "canary.regblock.test" || l.Expires.IsZero() || !l.Issued.IsZero() {
		t.Errorf("header: %+v", l.Header)
	}
	if len(l.Entries) != 1 || l.Entries[0].Line != 13 {
		t.Errorf("entries: %+v", l.Entries)
	}

	named, err := Parse("x.rpz", []byte(";$ name: other-name\n"+rpzHead))
	if err != nil || named.Name != "other-name" {
		t.Errorf("name header: %v %+v", err, named)
	}
}

func TestParseRPZTriggers(t *testing.T) {
	for _, tc := range []struct {
		record string
		want   Entry // Line and Local are not compared
		local  string
	}{
		{"nx.example CNAME .", Entry{Kind: Exact, Name: "nx.example", Action: NXDomain}, ""},
		{"*.nx.example CNAME .", Entry{Kind: Below, Name: "nx.example", Action: NXDomain}, ""},
		{"nodata.example CNAME *.", Entry{Kind: Exact, Name: "nodata.example", Action: NoData}, ""},
		{"drop.example CNAME rpz-drop.", Entry{Kind: Exact, Name: "drop.example", Action: Drop}, ""},
		{"pass.example CNAME rpz-passthru.", Entry{Kind: ExceptExact, Name: "pass.example"}, ""},
		{"*.pass.example CNAME rpz-passthru.", Entry{Kind: ExceptBelow, Name: "pass.example"}, ""},
		{"old.example CNAME old.example.", Entry{Kind: ExceptExact, Name: "old.example"}, ""},
		{"Mixed.EXAMPLE. CNAME .", Entry{Kind: Exact, Name: "mixed.example", Action: NXDomain}, ""}, // absolute: outside the zone
		{"local.example A 192.0.2.10", Entry{Kind: Exact, Name: "local.example", Action: LocalData}, "A 192.0.2.10"},
		{"local.example 60 IN AAAA 2001:db8::10", Entry{Kind: Exact, Name: "local.example", Action: LocalData}, "AAAA 2001:db8::10"},
		{"cname.example CNAME notice.regulator.example.", Entry{Kind: Exact, Name: "cname.example", Action: LocalData}, "CNAME notice.regulator.example."},
		{"bücher.example CNAME .", Entry{Kind: Exact, Name: "xn--bcher-kva.example", Action: NXDomain}, ""},
		{"24.0.113.0.203.rpz-ip CNAME .", Entry{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Action: NXDomain}, ""},
		{"32.1.2.0.192.rpz-ip CNAME rpz-passthru.", Entry{Kind: Exception, Prefix: netip.MustParsePrefix("192.0.2.1/32")}, ""},
		{"48.zz.db8.2001.rpz-ip CNAME *.", Entry{Prefix: netip.MustParsePrefix("2001:db8::/48"), Action: NoData}, ""},
		{"128.1.zz.db8.2001.rpz-ip A 192.0.2.10", Entry{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Action: LocalData}, "A 192.0.2.10"},
		{"o.example CNAME . ; order=ORDER-7 category=csam", Entry{Kind: Exact, Name: "o.example", Action: NXDomain, Order: "ORDER-7", Category: "csam"}, ""},
		{"c.example CNAME . ; seized 2026-11-01", Entry{Kind: Exact, Name: "c.example", Action: NXDomain}, ""},
	} {
		text := rpzHead + tc.record + "\n"
		if strings.HasPrefix(tc.record, "Mixed") {
			text = strings.Replace(rpzHead, "@", "rpz.test.", 1) + strings.Replace(tc.record, "EXAMPLE.", "EXAMPLE.rpz.test.", 1) + "\n"
		}
		l, err := Parse("t.rpz", []byte(text))
		if err != nil {
			t.Errorf("%s: %v", tc.record, err)
			continue
		}
		if len(l.Entries) != 1 {
			t.Errorf("%s: %d entries, want 1", tc.record, len(l.Entries))
			continue
		}
		got := l.Entries[0]
		var local []string
		for _, rr := range got.Local {
			if rr.Header().Name != "." {
				t.Errorf("%s: local data keeps its owner %q", tc.record, rr.Header().Name)
			}
			local = append(local, strings.Join(strings.Fields(rr.String())[3:], " "))
		}
		if strings.Join(local, "\n") != tc.local {
			t.Errorf("%s: local data %q, want %q", tc.record, local, tc.local)
		}
		if got.Line != 4 {
			t.Errorf("%s: line %d, want 4", tc.record, got.Line)
		}
		got.Line, got.Local = 0, nil
		if got.Kind != tc.want.Kind || got.Name != tc.want.Name || got.Prefix != tc.want.Prefix || got.Action != tc.want.Action || got.Order != tc.want.Order || got.Category != tc.want.Category {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.record, got, tc.want)
		}
	}
}

func TestParseRPZLocalDataSet(t *testing.T) {
	l, err := Parse("t.rpz", []byte(rpzHead+"n.example A 192.0.2.10\nn.example A 192.0.2.11\nn.example TXT \"blocked\"\nm.example CNAME .\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 2 || len(l.Entries[0].Local) != 3 || l.Entries[0].Local[2].Header().Rrtype != dns.TypeTXT || l.Blocking() != 2 {
		t.Errorf("entries: %+v", l.Entries)
	}
}

func TestParseRPZErrors(t *testing.T) {
	for _, tc := range []struct {
		text, want string
	}{
		{rpzHead + "ns.example.rpz-nsdname CNAME .\n", "t.rpz:4: ns.example.rpz-nsdname: rpz-nsdname triggers (name server name) are not supported"},
		{rpzHead + "32.1.2.0.192.rpz-nsip CNAME .\n", "t.rpz:4: 32.1.2.0.192.rpz-nsip: rpz-nsip triggers"},
		{rpzHead + "a.example CNAME .\n24.0.2.0.192.rpz-client-ip CNAME .\n", "t.rpz:5: 24.0.2.0.192.rpz-client-ip: rpz-client-ip triggers"},
		{rpzHead + "x.rpz-foo CNAME .\n", `t.rpz:4: x.rpz-foo: unknown RPZ trigger "rpz-foo"`},
		{rpzHead + "24.1.113.0.203.rpz-ip CNAME .\n", "t.rpz:4: 24.1.113.0.203.rpz-ip: 203.0.113.1/24 has bits set after the prefix length"},
		{rpzHead + "33.1.2.0.192.rpz-ip CNAME .\n", "t.rpz:4: 33.1.2.0.192.rpz-ip: prefix length 33 does not fit 192.0.2.1"},
		{rpzHead + "a.example CNAME rpz-tcp-only.\n", "t.rpz:4: a.example.rpz.invalid.: the rpz-tcp-only action is not supported"},
		{rpzHead + "a.example CNAME .\na.example A 192.0.2.1\n", "t.rpz:5: a.example.rpz.invalid. has a A record besides its nxdomain action"},
		{rpzHead + "a.example A 192.0.2.1\na.example CNAME x.example.\n", "t.rpz:5: a.example.rpz.invalid. has a CNAME besides other records"},
		{rpzHead + "a.example CNAME .\nb.example CNAME .\na.example CNAME *.\n", "t.rpz:6: a.example already has records at line 4"},
		{rpzHead + "a.*.example CNAME .\n", "t.rpz:4: a.*.example: a wildcard may only be the first label"},
		{rpzHead + "a.example NS ns.example.\n", "t.rpz:4: a.example.rpz.invalid.: NS records are not supported as RPZ local data"},
		{rpzHead + "@ A 192.0.2.1\n", "t.rpz:4: A record at the zone's apex rpz.invalid."},
		{rpzHead + "a.example.other.test. CNAME .\n", "t.rpz:4: owner a.example.other.test. is outside the zone rpz.invalid."},
		{"a.example CNAME .\n", "t.rpz:1: the first record must be the zone's SOA, not CNAME"},
		{"; nothing\n", "t.rpz: no SOA record"},
		{rpzHead + "a.example CNAME\n", "t.rpz:4: a.example.rpz.invalid.: CNAME record without data"},
		{rpzHead + "$INCLUDE /etc/hosts\n", "t.rpz:4: $INCLUDE directive not allowed"},
		{rpzHead + "$GENERATE 0-65535 x$.abuse.example CNAME .\n", "t.rpz:4: $GENERATE directive not allowed"},
		{rpzHead + "$generate 1-2 x$ CNAME .\n", "t.rpz:4: $GENERATE directive not allowed"},
		{";$ serial: 5\n" + rpzHead, `t.rpz:1: the serial of an RPZ zone is its SOA serial`},
		{";$ colour: red\n" + rpzHead, `t.rpz:1: unknown header key "colour"`},
		{rpzHead + "a.example CNAME . \x01\n", "t.rpz:4: control character U+0001"},
		{";$ name: bad name\n" + rpzHead, `t.rpz:1: list name "bad name"`},
	} {
		_, err := Parse("t.rpz", []byte(tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s...", tc.text, err, tc.want)
		}
	}
}

func TestParseListAddressEntries(t *testing.T) {
	l, err := Parse("a.list", []byte(header+"ip:203.0.113.0/24 ORDER-1 csam\n!ip:203.0.113.8/29\nip:2001:db8::/32\nip:192.0.2.7\n!=x.example\n!*.y.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Entries {
		got = append(got, e.Pattern())
	}
	want := "ip:203.0.113.0/24 !ip:203.0.113.8/29 ip:2001:db8::/32 ip:192.0.2.7/32 !=x.example !*.y.example"
	if strings.Join(got, " ") != want {
		t.Errorf("patterns %q, want %q", strings.Join(got, " "), want)
	}
	if l.Blocking() != 3 {
		t.Errorf("blocking %d, want 3", l.Blocking())
	}
	for _, tc := range []struct{ entry, want string }{
		{"ip:203.0.113.1/24", `entry "ip:203.0.113.1/24": "203.0.113.1/24" has bits set after the prefix length: did you mean 203.0.113.0/24?`},
		{"ip:300.0.0.0/8", `entry "ip:300.0.0.0/8": "300.0.0.0/8" is not an address prefix`},
		{"ip:::ffff:192.0.2.0/120", "write IPv4 prefixes in IPv4 notation"},
		{"=ip:192.0.2.0/24", `entry "=ip:192.0.2.0/24": name "ip:192.0.2.0/24" has an invalid character ':'`},
	} {
		_, err := Parse("a.list", []byte(header+tc.entry+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %s", tc.entry, err, tc.want)
		}
	}
}

// TestParseRPZWildcardStops: a wildcard does not reach past a name of the
// zone below it, a trigger or an empty non-terminal; an exception below
// each such name says so.
func TestParseRPZWildcardStops(t *testing.T) {
	l, err := Parse("t.rpz", []byte(rpzHead+"*.ent.example CNAME .\na.b.ent.example CNAME *.\n*.c.ent.example CNAME rpz-passthru.\nother.test CNAME .\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Entries {
		got = append(got, fmt.Sprintf("%s:%d", e.Pattern(), e.Line))
	}
	want := "*.ent.example:4 =a.b.ent.example:5 !*.c.ent.example:6 =other.test:7 !*.a.b.ent.example:5 !*.b.ent.example:5"
	if strings.Join(got, " ") != want {
		t.Errorf("entries\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestRPZIPOwner(t *testing.T) {
	for prefix, want := range map[string]string{
		"203.0.113.0/24":           "24.0.113.0.203.rpz-ip",
		"192.0.2.1/32":             "32.1.2.0.192.rpz-ip",
		"2001:db8::/32":            "32.zz.db8.2001.rpz-ip",
		"2001:db8::1/128":          "128.1.zz.db8.2001.rpz-ip",
		"2001:db8:0:1::/64":        "64.zz.1.0.db8.2001.rpz-ip",
		"::1/128":                  "128.1.zz.rpz-ip",
		"2001:db8:1:2:3:4:5:6/128": "128.6.5.4.3.2.1.db8.2001.rpz-ip",
	} {
		if got := rpzIPOwner(netip.MustParsePrefix(prefix)); got != want {
			t.Errorf("%s: %s, want %s", prefix, got, want)
		}
	}
}
