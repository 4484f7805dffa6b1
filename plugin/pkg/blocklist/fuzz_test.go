package blocklist

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse: no input makes the parser panic; an accepted list holds only
// canonical names, and linting it does not panic either.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../../blocklists/example.list"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(header + "abuse.example ORDER-1 csam\n=x.example\n!y.abuse.example\n*.bulk.example - csam\n"))
	f.Add([]byte(header + "#! hashed: sha256 " + vectorSalt + "\n#! canary: canary.test\nh:2fab027504c360eeda1416ada192b061 O-1 csam\n!*.h:2FAB027504C360EEDA1416ADA192B061\nip:192.0.2.1\n"))
	f.Add([]byte(header + "#! canary: canary.test\nbücher.example\nxn--bcher-kva.example\n\\065.example\n"))
	f.Add([]byte("#! regblock-list 1\r\n#! name: x\r\n#! serial: 1\r\n#! issued: 2026-11-28T06:00:00Z\r\na.example\x00\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("fuzz.list", data)
		var streamed []Entry
		sl, serr := ParseFunc("fuzz.list", data, func(e Entry) { streamed = append(streamed, e) })
		if (err == nil) != (serr == nil) {
			t.Fatalf("Parse: %v, ParseFunc: %v", err, serr)
		}
		// Read as a stream, as OpenStream reads a list, the file gives the
		// same entries and the same errors.
		var fromReader []Entry
		p := parser{list: &List{File: "fuzz.list"}, seen: map[string]int{}, emit: func(e Entry) {
			e.Name, e.Order, e.Category = strings.Clone(e.Name), strings.Clone(e.Order), strings.Clone(e.Category)
			fromReader = append(fromReader, e)
		}}
		p.parseLines(&readerLines{r: bufio.NewReaderSize(bytes.NewReader(data), 64<<10)})
		if _, rerr := p.result(); fmt.Sprint(rerr) != fmt.Sprint(serr) || len(fromReader) != len(streamed) || len(streamed) > 0 && !reflect.DeepEqual(fromReader, streamed) {
			t.Fatalf("from a reader: %d entries, %v; from bytes: %d entries, %v", len(fromReader), rerr, len(streamed), serr)
		}
		if err != nil {
			return
		}
		if len(streamed) != len(l.Entries) || len(streamed) > 0 && !reflect.DeepEqual(streamed, l.Entries) || sl.Blocking() != l.Blocking() || sl.Entries != nil {
			t.Fatalf("ParseFunc handed %d entries (%d blocking), Parse kept %d (%d blocking)", len(streamed), sl.Blocking(), len(l.Entries), l.Blocking())
		}
		for _, e := range l.Entries {
			if e.Prefix.IsValid() {
				if e.Name != "" || e.Prefix != e.Prefix.Masked() {
					t.Fatalf("address entry %+v is not canonical", e)
				}
				continue
			}
			if e.Hashed != l.Hashed() || e.Hashed && e.Name != "" {
				t.Fatalf("entry %+v in a list hashed=%v", e, l.Hashed())
			}
			if e.Hashed {
				continue
			}
			if c, err := CanonicalName(e.Name); err != nil || c != e.Name {
				t.Fatalf("entry %q is not canonical: %q %v", e.Name, c, err)
			}
		}
		Lint(l, time.Now())
	})
}

// FuzzParseRPZ: no zone makes the RPZ parser panic; an accepted zone holds
// canonical names, streams the entries it keeps, and its entries' line
// numbers are lines of the file.
func FuzzParseRPZ(f *testing.F) {
	f.Add([]byte(rpzHead + "a.example CNAME .\n*.b.example CNAME *.\nc.example A 192.0.2.1\nc.example TXT \"x\"\n24.0.113.0.203.rpz-ip CNAME rpz-passthru.\n"))
	f.Add([]byte(";$ issuer: X\n$ORIGIN rpz.test.\n@ SOA a. b. (1 2 3 4 5)\n48.zz.db8.2001.rpz-ip CNAME rpz-drop.\nd CNAME d.\n"))
	f.Add([]byte(rpzHead + "$GENERATE 1-3 h$ CNAME .\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("fuzz.rpz", data)
		var streamed []Entry
		_, serr := ParseFunc("fuzz.rpz", data, func(e Entry) { streamed = append(streamed, e) })
		if (err == nil) != (serr == nil) {
			t.Fatalf("Parse: %v, ParseFunc: %v", err, serr)
		}
		if err != nil {
			return
		}
		if len(streamed) != len(l.Entries) {
			t.Fatalf("ParseFunc handed %d entries, Parse kept %d", len(streamed), len(l.Entries))
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range l.Entries {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("entry %+v: line %d of a %d-line file", e, e.Line, lines)
			}
			if e.Prefix.IsValid() {
				continue
			}
			if e.Hashed != l.Hashed() || e.Hashed && e.Name != "" {
				t.Fatalf("entry %+v in a list hashed=%v", e, l.Hashed())
			}
			if e.Hashed {
				continue
			}
			if c, err := CanonicalName(e.Name); err != nil || c != e.Name {
				t.Fatalf("entry %q is not canonical: %q %v", e.Name, c, err)
			}
		}
		Lint(l, time.Now())
	})
}
