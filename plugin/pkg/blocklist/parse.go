package blocklist

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/regblock/regblock/plugin/pkg/safename"
)

// Version is the list format version this package reads.
const Version = 1

const (
	versionLine = "#! regblock-list 1"
	maxErrors   = 1000
	// MaxLine is the longest line accepted, in bytes: a name is at most 253
	// bytes, and a header value has no reason to be longer.
	MaxLine = 4096
)

// Error is a problem at one line of a list file.
type Error struct {
	File string
	Line int // from 1; 0 when the problem is the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrorList is every error found in one list file, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", l[0], len(l)-1)
}

// Parse parses the list in data, read from file (used in messages only).
// It returns every error it finds as an ErrorList, and no list when there is
// any.
func Parse(file string, data []byte) (*List, error) {
	return parse(file, data, nil)
}

// ParseFunc parses like Parse, but hands each entry to fn as it is read
// instead of keeping it: the list it returns has no Entries, which saves
// their memory when they are only needed to build an index. fn sees the
// entries of a list that may still turn out to have errors; it must discard
// what it built when ParseFunc returns one. ParseFunc does not copy data
// (a list can be hundreds of megabytes): the strings of the entries fn sees
// share its memory, and data must not change while they are in use.
func ParseFunc(file string, data []byte, fn func(Entry)) (*List, error) {
	return parse(file, data, fn)
}

func parse(file string, data []byte, emit func(Entry)) (*List, error) {
	p := parser{list: &List{File: file, SHA256: sha256.Sum256(data)}, seen: map[string]int{}, emit: emit}
	text := unsafe.String(unsafe.SliceData(data), len(data))
	if emit == nil {
		text = string(data) // the entries kept must not change with data
	}
	if IsRPZ(file) {
		p.parseRPZ(text)
	} else {
		p.parse(text)
	}
	return p.result()
}

// result is the parsed list, or every error found.
func (p *parser) result() (*List, error) {
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	if p.emit != nil {
		p.list.blocking = p.blocking
	}
	return p.list, nil
}

type parser struct {
	list     *List
	errs     ErrorList
	line     int
	seen     map[string]int // the line of each header key given
	emit     func(Entry)    // nil: keep the entries in list.Entries
	blocking int            // blocking entries handed to emit
	delta    *Delta         // non-nil when parsing a delta
	removing bool           // the entry being parsed is a delta's "-" line
	// changed holds, for a delta, the line of each entry's text it removes
	// (negative) or adds: an entry both removed and added is refused.
	changed map[string]int
}

func (p *parser) errorf(format string, args ...any) {
	if len(p.errs) == maxErrors {
		p.errs = append(p.errs, &Error{File: p.list.File, Line: p.line, Msg: "too many errors, stopped"})
	}
	if len(p.errs) > maxErrors {
		return
	}
	p.errs = append(p.errs, &Error{File: p.list.File, Line: p.line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(text string) {
	if p.emit == nil {
		p.list.Entries = make([]Entry, 0, strings.Count(text, "\n"))
	}
	t := textLines(text)
	p.parseLines(&t)
}

// lineSource yields the lines of a list file, each without its "\n" or
// "\r\n", and its length: a line longer than MaxLine may yield its length
// only.
type lineSource interface {
	next() (line string, length int, ok bool)
}

// textLines is a file held whole.
type textLines string

func (t *textLines) next() (string, int, bool) {
	if len(*t) == 0 {
		return "", 0, false
	}
	line, rest, _ := strings.Cut(string(*t), "\n")
	*t = textLines(rest)
	line = strings.TrimSuffix(line, "\r")
	return line, len(line), true
}

// readerLines is a file read as a stream, a buffer at a time. A line is
// valid until the next one is read.
type readerLines struct {
	r   *bufio.Reader
	err error // the read error that ended the file early, if any
}

func (rl *readerLines) next() (string, int, bool) {
	b, err := rl.r.ReadSlice('\n')
	n := len(b)
	for err == bufio.ErrBufferFull { // longer than the buffer: count it, keep none of it
		b, err = rl.r.ReadSlice('\n')
		n += len(b)
	}
	switch {
	case err != nil && err != io.EOF:
		rl.err = err
		return "", 0, false
	case n == 0:
		return "", 0, false
	case n > len(b):
		return "", n - 1, true
	}
	line := strings.TrimSuffix(strings.TrimSuffix(unsafe.String(unsafe.SliceData(b), len(b)), "\n"), "\r")
	return line, len(line), true
}

func (p *parser) parseLines(src lineSource) {
	var buf [4]string // an entry's fields; a fourth means too many
	entries := false
	for {
		line, length, ok := src.next()
		if !ok {
			break
		}
		p.line++
		if p.line == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if length > MaxLine {
			p.errorf("line is %d bytes long; at most %d are allowed", length, MaxLine)
			continue
		}
		if !printable(line) { // most lines are, and pass both checks
			if !utf8.ValidString(line) {
				p.errorf("line is not valid UTF-8")
				continue
			}
			if i := strings.IndexFunc(line, isControl); i >= 0 {
				r, _ := utf8.DecodeRuneInString(line[i:])
				p.errorf("control character %U in column %d", r, i+1)
				continue
			}
		}

		if p.line == 1 && p.delta != nil {
			if strings.TrimSpace(line) != deltaVersionLine {
				p.errorf("not a regblock delta: the first line must be %q", deltaVersionLine)
				return
			}
			p.list.Version = Version
			continue
		}
		if p.line == 1 {
			if !strings.HasPrefix(line, "#! regblock-list") {
				p.errorf("not a regblock list: the first line must be %q", versionLine)
				return
			}
			if strings.TrimSpace(line) != versionLine {
				p.errorf("unsupported list format %q, want %q", line, versionLine)
				return
			}
			p.list.Version = Version
			continue
		}
		if header, ok := strings.CutPrefix(line, "#!"); ok {
			if entries {
				p.errorf("header line after the first entry: headers must come first")
				continue
			}
			p.header(header)
			continue
		}
		text := stripComment(line)
		if p.delta != nil {
			var ok bool
			if text, ok = p.deltaSign(text); !ok {
				entries = true
				continue
			}
		}
		fields := splitFields(text, &buf)
		if len(fields) == 0 {
			continue
		}
		entries = true
		p.entry(fields)
	}
	if p.line == 0 {
		p.errorf("empty file: the first line must be %q", versionLine)
		return
	}
	p.line = 1 // missing headers belong to the header block
	required := []string{"name", "serial", "issued"}
	if p.delta != nil {
		required = append(required, deltaHeaders...)
	}
	for _, key := range required {
		if p.seen[key] == 0 {
			p.errorf("missing required header %q", key)
		}
	}
}

// splitFields splits line at blanks into buf, without allocating, and
// returns the fields found, at most len(buf).
func splitFields(line string, buf *[4]string) []string {
	n := 0
	for n < len(buf) {
		// Byte loops: a line's fields are a few bytes each, and
		// strings.TrimLeft builds its set of blanks on every call.
		start := 0
		for start < len(line) && isBlank(line[start]) {
			start++
		}
		if start == len(line) {
			break
		}
		end := start
		for end < len(line) && !isBlank(line[end]) {
			end++
		}
		buf[n] = line[start:end]
		n++
		line = line[end:]
	}
	return buf[:n]
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isControl reports the characters a list may not hold: C0 controls but
// the tab, DEL, and C1 controls. They would reach log lines, the audit log,
// EDE texts and the notice page.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r >= 0x7f && r < 0xa0
}

// printable reports whether line holds only printable ASCII and tabs: valid
// UTF-8 without a control character, found in one pass over its bytes.
func printable(line string) bool {
	for i := 0; i < len(line); i++ {
		if c := line[i]; (c < 0x20 || c >= 0x7f) && c != '\t' {
			return false
		}
	}
	return true
}

// stripComment removes a '#' comment that starts the line or follows a blank.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func (p *parser) header(text string) {
	key, value, ok := strings.Cut(text, ":")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !ok || key == "" {
		p.errorf("header line %q is not \"#! key: value\"", "#!"+text)
		return
	}
	if p.seen[key] > 0 {
		p.errorf("header %q given twice", key)
		return
	}
	p.seen[strings.Clone(key)] = p.line // key may be in a stream's buffer
	if value == "" {
		p.errorf("header %q has no value", key)
		return
	}

	h := &p.list.Header
	// A copy: the header outlives the file text, whose substrings would keep
	// the whole file in memory.
	value = strings.Clone(value)
	var err error
	switch key {
	case "name":
		if !safename.Valid(value) {
			err = fmt.Errorf("list name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", value)
		}
		h.Name = value
	case "issuer":
		h.Issuer = value
	case "serial":
		h.Serial, err = strconv.ParseUint(value, 10, 64)
		if err != nil {
			err = fmt.Errorf("serial %q is not an unsigned integer", value)
		}
	case "issued":
		h.Issued, err = parseTime(key, value)
	case "expires":
		h.Expires, err = parseTime(key, value)
	case "authority":
		h.Authority = value
	case "appeal":
		err = checkWebAddress(value)
		h.Appeal = value
	case "contact":
		h.Contact, err = parseContact(value)
	case "canary":
		h.Canary, err = CanonicalName(value)
		if err != nil {
			err = fmt.Errorf("canary: %v", err)
		}
	case "hashed":
		h.Salt, err = parseSalt(value)
	case "from", "sha256", "digest":
		if p.delta == nil {
			err = fmt.Errorf("header %q belongs in a delta, not in a list", key)
			break
		}
		err = p.deltaHeader(key, value)
	default:
		err = fmt.Errorf("unknown header key %q (known: name, issuer, serial, issued, expires, authority, appeal, contact, canary, hashed)", key)
	}
	if err != nil {
		p.errorf("%v", err)
	}
}

func parseTime(key, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return t, fmt.Errorf("%s %q is not an RFC 3339 time such as 2026-11-28T06:00:00Z", key, value)
	}
	return t, nil
}

// The appeal address and the contacts go into HTTP headers (the notice
// page's Link), HTML links and the EDE's JSON: they are absolute URIs of
// the schemes allowed, with none of the characters that could end or break
// out of a header value, an attribute or a string.
const uriForbidden = " \t\"'<>\\`{}|^"

func checkWebAddress(value string) error {
	u, err := url.Parse(value)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(value, uriForbidden) {
		return fmt.Errorf("appeal %q is not an https:// web address (without spaces, quotes or angle brackets)", value)
	}
	return nil
}

func parseContact(value string) ([]string, error) {
	uris := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	for _, u := range uris {
		scheme, rest, _ := strings.Cut(u, ":")
		scheme = strings.ToLower(scheme)
		if (scheme != "mailto" && scheme != "tel") || rest == "" || strings.ContainsAny(u, uriForbidden) {
			return nil, fmt.Errorf("contact %q is not a mailto: or tel: URI (without quotes or angle brackets)", u)
		}
	}
	return uris, nil
}

func (p *parser) entry(fields []string) {
	if len(fields) > 3 {
		p.errorf("too many fields: want PATTERN [ORDER-REF [CATEGORY]]")
		return
	}
	e := Entry{Line: p.line}
	pattern := fields[0]
	if rest, ok := strings.CutPrefix(pattern, "!"); ok {
		e.Kind, pattern = Exception, rest
		switch {
		case strings.HasPrefix(rest, "="):
			e.Kind, pattern = ExceptExact, rest[1:]
		case strings.HasPrefix(rest, "*."):
			e.Kind, pattern = ExceptBelow, rest[2:]
		}
	} else {
		switch {
		case strings.HasPrefix(pattern, "*."):
			e.Kind, pattern = Below, pattern[2:]
		case strings.HasPrefix(pattern, "="):
			e.Kind, pattern = Exact, pattern[1:]
		}
	}
	if addr, ok := strings.CutPrefix(pattern, IPPrefix); ok && (e.Kind == Subtree || e.Kind == Exception) {
		prefix, err := parsePrefix(addr)
		if err != nil && p.seen["hashed"] > 0 {
			p.errorf("entry %s: not an address prefix such as 203.0.113.0/24", p.shown(fields[0]))
			return
		} else if err != nil {
			p.errorf("entry %s: %v", p.shown(fields[0]), err)
			return
		}
		e.Prefix = prefix
	} else if hex, ok := strings.CutPrefix(pattern, HashPrefix); ok {
		if !p.list.Hashed() {
			p.errorf("hashed entry %s in a list without a \"hashed: sha256 SALT\" header", p.shown(fields[0]))
			return
		}
		d, err := parseDigest(hex)
		if err != nil {
			p.errorf("entry %s: %v", p.shown(fields[0]), err)
			return
		}
		e.Hashed, e.Digest = true, d
	} else {
		if pattern == "" || !startsName(pattern) {
			p.errorf("unknown entry prefix in %s: use NAME, *.NAME, =NAME, !NAME, !=NAME, !*.NAME, h:DIGEST or ip:PREFIX", p.shown(fields[0]))
			return
		}
		if p.list.Hashed() {
			// Not quoted: a name in a confidential list must not reach a
			// resolver's log.
			p.errorf("a plain name in a hashed list (not shown here): hash the list with regblock hash")
			return
		}
		name, err := CanonicalName(pattern)
		if err != nil {
			p.errorf("entry %s: %v", p.shown(fields[0]), err)
			return
		}
		e.Name = name
	}
	if len(fields) > 1 && fields[1] != "-" {
		e.Order = fields[1]
	}
	if len(fields) > 2 {
		cat := strings.ToLower(fields[2])
		if !validCategory(cat) {
			p.errorf("category %q: use 1 to 32 letters, digits, '_' or '-'", fields[2])
			return
		}
		if cat == CategoryCanary {
			p.errorf("category %q is reserved for the canary header", fields[2])
			return
		}
		e.Category = cat
	}
	p.add(e)
}

// shown is how an error quotes an entry: not at all in a hashed list (one
// with a "hashed" header, even a bad one), whose malformed entry may be the
// plain name the regulator hashed the list to keep out of logs, ledgers
// and lint output.
func (p *parser) shown(entry string) string {
	if p.seen["hashed"] > 0 {
		return "(not shown: the list is hashed)"
	}
	return quote(entry)
}

// add keeps e in the list, or hands it to emit.
func (p *parser) add(e Entry) {
	if p.delta != nil {
		p.deltaEntry(e)
		return
	}
	if p.emit == nil {
		p.list.Entries = append(p.list.Entries, e)
		return
	}
	if !e.Kind.IsException() {
		p.blocking++
	}
	p.emit(e)
}

// parsePrefix parses the address prefix of an "ip:" entry: an IPv4 or IPv6
// prefix in CIDR notation with no host bits set, or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	var prefix netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if prefix, err = netip.ParsePrefix(s); err != nil {
			return prefix, fmt.Errorf("%q is not an address prefix such as 203.0.113.0/24", s)
		}
	} else {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return prefix, fmt.Errorf("%q is not an address or prefix such as 203.0.113.0/24", s)
		}
		prefix = netip.PrefixFrom(addr, addr.BitLen())
	}
	if prefix.Addr().Is4In6() {
		return prefix, fmt.Errorf("%q: write IPv4 prefixes in IPv4 notation", s)
	}
	if prefix.Masked() != prefix {
		return prefix, fmt.Errorf("%q has bits set after the prefix length: did you mean %s?", s, prefix.Masked())
	}
	return prefix, nil
}

// startsName reports whether s starts like a plain name (valid or not) rather
// than with a prefix this format does not know.
func startsName(s string) bool {
	c := s[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c >= 0x80
}

func validCategory(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
