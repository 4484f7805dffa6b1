package blocklist

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const header = `#! regblock-list 1
#! name: test-list
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
`

func TestParse(t *testing.T) {
	text := `#! regblock-list 1
#! name: mcmc-csam
#! issuer: Example Regulator
#! serial: 2026112801
#! issued: 2026-11-28T06:00:00Z
#! expires: 2026-12-05T06:00:00Z
#! authority: Example Act 1998, section 263(2)
#! appeal: https://complaints.regulator.example/
#! contact: mailto:complaints@regulator.example tel:+60-3-0000-0000
#! canary: Canary.MCMC-csam.regblock.test.
# a comment line

Abuse.Example.         ORDER-2026-0012  CSAM   # trailing comment
=cdn7.hosting.example  ORDER-2026-0013  csam
!help.abuse.example    ORDER-2026-0014
*.bulk.example         -                csam
bücher.example
a#b.example
`
	_, err := Parse("mcmc.list", []byte(text))
	if err == nil {
		t.Fatalf("Parse accepted %q, a name with '#' inside", "a#b.example")
	}
	var errs ErrorList
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 18 {
		t.Fatalf("want one error at line 18, got %v", err)
	}

	l, err := Parse("mcmc.list", []byte(strings.TrimSuffix(text, "a#b.example\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		Version:   1,
		Name:      "mcmc-csam",
		Issuer:    "Example Regulator",
		Serial:    2026112801,
		Issued:    time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC),
		Expires:   time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC),
		Authority: "Example Act 1998, section 263(2)",
		Appeal:    "https://complaints.regulator.example/",
		Contact:   []string{"mailto:complaints@regulator.example", "tel:+60-3-0000-0000"},
		Canary:    "canary.mcmc-csam.regblock.test",
	}
	if got := l.Header; got.Name != want.Name || got.Issuer != want.Issuer || got.Serial != want.Serial ||
		!got.Issued.Equal(want.Issued) || !got.Expires.Equal(want.Expires) || got.Authority != want.Authority ||
		got.Appeal != want.Appeal || strings.Join(got.Contact, " ") != strings.Join(want.Contact, " ") ||
		got.Canary != want.Canary || got.Version != 1 {
		t.Errorf("header:\n got %+v\nwant %+v", got, want)
	}
	entries := []Entry{
		{Kind: Subtree, Name: "abuse.example", Order: "ORDER-2026-0012", Category: "csam", Line: 13},
		{Kind: Exact, Name: "cdn7.hosting.example", Order: "ORDER-2026-0013", Category: "csam", Line: 14},
		{Kind: Exception, Name: "help.abuse.example", Order: "ORDER-2026-0014", Line: 15},
		{Kind: Below, Name: "bulk.example", Category: "csam", Line: 16},
		{Kind: Subtree, Name: "xn--bcher-kva.example", Line: 17},
	}
	if len(l.Entries) != len(entries) {
		t.Fatalf("got %d entries, want %d: %+v", len(l.Entries), len(entries), l.Entries)
	}
	for i, e := range entries {
		if !reflect.DeepEqual(l.Entries[i], e) {
			t.Errorf("entry %d: got %+v, want %+v", i, l.Entries[i], e)
		}
	}
	if n := l.Blocking(); n != 4 {
		t.Errorf("Blocking() = %d, want 4", n)
	}
	if l.Expired(want.Expires.Add(-time.Second)) || !l.Expired(want.Expires.Add(time.Second)) {
		t.Errorf("Expired is wrong around %v", want.Expires)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string
	}{
		{"empty file", "", 0, "first line must be"},
		{"not a list", "abuse.example\n", 1, "not a regblock list"},
		{"future version", "#! regblock-list 2\n", 1, "unsupported list format"},
		{"unknown header", header + "#! issuer-name: x\n", 5, `unknown header key "issuer-name"`},
		{"header without colon", header + "#! issuer\n", 5, "not \"#! key: value\""},
		{"duplicate header", header + "#! serial: 3\n", 5, `header "serial" given twice`},
		{"empty header value", header + "#! issuer:\n", 5, `header "issuer" has no value`},
		{"missing name", "#! regblock-list 1\n#! serial: 1\n#! issued: 2026-11-28T06:00:00Z\n", 1, `missing required header "name"`},
		{"missing serial", "#! regblock-list 1\n#! name: x\n#! issued: 2026-11-28T06:00:00Z\n", 1, `missing required header "serial"`},
		{"missing issued", "#! regblock-list 1\n#! name: x\n#! serial: 1\n", 1, `missing required header "issued"`},
		{"negative serial", strings.Replace(header, "2026112801", "-1", 1), 3, "not an unsigned integer"},
		{"bad issued", strings.Replace(header, "2026-11-28T06:00:00Z", "2026-11-28", 1), 4, "not an RFC 3339 time"},
		{"bad expires", header + "#! expires: tomorrow\n", 5, "not an RFC 3339 time"},
		{"bad list name", strings.Replace(header, "test-list", "test list", 1), 2, "list name"},
		{"list name .", strings.Replace(header, "test-list", ".", 1), 2, `list name "."`},
		{"list name ..", strings.Replace(header, "test-list", "..", 1), 2, `list name ".."`},
		{"hidden list name", strings.Replace(header, "test-list", ".test-list", 1), 2, `list name ".test-list"`},
		{"list name with a slash", strings.Replace(header, "test-list", "../state/x", 1), 2, "list name"},
		{"list name with a leading dash", strings.Replace(header, "test-list", "-x", 1), 2, "list name"},
		{"list name too long", strings.Replace(header, "test-list", strings.Repeat("a", 65), 1), 2, "list name"},
		{"appeal not a web address", header + "#! appeal: complaints@regulator.example\n", 5, "not an https:// web address"},
		{"appeal over http", header + "#! appeal: http://complaints.regulator.example/\n", 5, "not an https:// web address"},
		{"appeal with a quote", header + "#! appeal: https://complaints.regulator.example/\"onmouseover=x\n", 5, "not an https:// web address"},
		{"appeal with angle brackets", header + "#! appeal: https://complaints.regulator.example/>; rel=x, <https://evil.example/\n", 5, "not an https:// web address"},
		{"appeal with a user", header + "#! appeal: https://user@complaints.regulator.example/\n", 5, "not an https:// web address"},
		{"appeal relative", header + "#! appeal: /complaints\n", 5, "not an https:// web address"},
		{"contact with angle brackets", header + "#! contact: mailto:a@regulator.example>;rel=x\n", 5, "not a mailto: or tel: URI"},
		{"contact with a quote", header + "#! contact: tel:+60\"3\n", 5, "not a mailto: or tel: URI"},
		{"contact over https", header + "#! contact: https://regulator.example/\n", 5, "not a mailto: or tel: URI"},
		{"contact not a URI", header + "#! contact: complaints@regulator.example\n", 5, "not a mailto: or tel: URI"},
		{"bad canary", header + "#! canary: canary..test\n", 5, "canary"},
		{"header after entries", header + "abuse.example\n#! issuer: x\n", 6, "header line after the first entry"},
		{"invalid character", header + "ab$use.example\n", 5, "invalid character"},
		{"empty label", header + "abuse..example\n", 5, "empty label"},
		{"label too long", header + strings.Repeat("a", 64) + ".example\n", 5, "longer than 63"},
		{"root", header + ".\n", 5, "empty name"},
		{"unknown prefix", header + "~abuse.example\n", 5, "unknown entry prefix"},
		{"wildcard inside", header + "abuse.*.example\n", 5, "invalid character"},
		{"bare wildcard", header + "*abuse.example\n", 5, "unknown entry prefix"},
		{"too many fields", header + "abuse.example ORDER-1 csam extra\n", 5, "too many fields"},
		{"bad category", header + "abuse.example ORDER-1 c$am\n", 5, "category"},
		{"reserved category", header + "abuse.example ORDER-1 canary\n", 5, "reserved"},
		{"line too long", header + strings.Repeat("a.", 3000) + "example\n", 5, "at most 4096"},
		{"invalid UTF-8", header + "abuse.example ORDER-\xff\n", 5, "not valid UTF-8"},
		{"NUL byte", header + "abuse\x00.example\n", 5, "control character"},
		{"control character in a header", header + "#! issuer: Evil\x1b[31m Inc\n", 5, "control character"},
		{"C1 control", header + "#! issuer: Evil\u0085Inc\n", 5, "control character"},
		{"invalid IDN", header + "a\u2488.example\n", 5, "internationalized"},
		{"invalid punycode", header + "xn--zz.example\n", 5, "internationalized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse("bad.list", []byte(tc.text))
			if err == nil {
				t.Fatalf("Parse accepted the list: %+v", l)
			}
			var errs ErrorList
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not an ErrorList", err)
			}
			if errs[0].Line != tc.line || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Errorf("got %q, want line %d with %q", errs[0], tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "bad.list:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	text := header + "ok.example\nbad$.example\n#! issuer: late\n~x.example\n"
	_, err := Parse("bad.list", []byte(text))
	var errs ErrorList
	if !errors.As(err, &errs) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if len(lines) != 3 || lines[0] != 6 || lines[1] != 7 || lines[2] != 8 {
		t.Errorf("errors at lines %v, want [6 7 8]: %v", lines, errs)
	}
	if !strings.Contains(err.Error(), "and 2 more errors") {
		t.Errorf("summary %q does not count the other errors", err)
	}
}

func TestParseLineEndings(t *testing.T) {
	text := "\uFEFF" + strings.ReplaceAll(header+"abuse.example\tORDER-1\n\n  # indented comment\n", "\n", "\r\n")
	l, err := Parse("crlf.list", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries[0].Name != "abuse.example" || l.Entries[0].Order != "ORDER-1" {
		t.Errorf("entries = %+v", l.Entries)
	}
}

// TestParseBounds: hostile files get one clear error a line, and an error
// never quotes a huge value back.
func TestParseBounds(t *testing.T) {
	huge := header + strings.Repeat("x", 1<<20) + "\n" + strings.Repeat("a.", 130) + "example\n"
	_, err := Parse("huge.list", []byte(huge))
	var errs ErrorList
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	for _, e := range errs {
		if len(e.Error()) > 400 {
			t.Errorf("error of %d bytes: %.100s…", len(e.Error()), e.Error())
		}
	}
	_, err = Parse("many.list", []byte(header+strings.Repeat("bad$\n", 5000)))
	if !errors.As(err, &errs) || len(errs) != maxErrors+1 || !strings.Contains(errs[maxErrors].Msg, "too many errors") {
		t.Errorf("5000 bad lines: %d errors, want %d and a stop", len(errs), maxErrors+1)
	}
}
