// Package trust reads regblock's trust policy: a signed file that says
// which keys may sign which lists, how many signatures each list needs,
// and who may sign the next version of the policy, after TUF's root and
// delegations. The format is described in docs/trust.md.
package trust

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/result"
	"github.com/regblock/regblock/plugin/pkg/safename"
)

// MaxSize bounds a policy file: a few lines a key.
const MaxSize = 1 << 20

const versionLine = "#! regblock-trust 1"

// IsPolicy reports whether data starts as a trust policy does.
func IsPolicy(data []byte) bool {
	return strings.HasPrefix(strings.TrimPrefix(string(data), "\uFEFF"), "#! regblock-trust")
}

// Rule is a threshold of signatures by distinct keys of a set.
type Rule struct {
	Threshold int
	Keys      []minisign.PublicKey
	Line      int // in the policy file
}

// ListRule is a "list" line: the rule for the lists whose name matches
// Pattern, an exact name or a prefix ending in '*'.
type ListRule struct {
	Pattern string
	Rule
	// Issuer is the issuer the line grants, quoted at its end; a list that
	// claims another is untrusted. Empty when the line names none: then
	// the list's own claim stands (lint warns).
	Issuer string
}

// Policy is a parsed trust policy.
type Policy struct {
	Serial  uint64
	Issued  time.Time
	Expires time.Time // zero when it does not expire
	Root    Rule
	Lists   []ListRule
	File    string
	SHA256  [sha256.Size]byte
	Signers []minisign.PublicKey // the keys whose signatures of the file verified
}

// Errors a list or policy is refused with, besides blocklist's.
var (
	// ErrUntrusted: no line of the policy names the list.
	ErrUntrusted = result.New(result.Untrusted, "untrusted")
	// ErrThreshold: fewer valid signatures by the line's keys than its
	// threshold.
	ErrThreshold = result.New(result.Threshold, "threshold")
	// ErrRollback: a policy whose serial is not above the one in force.
	ErrRollback = result.New(result.Rollback, "rollback")
)

// Parse reads a trust policy from data, read from path. Every error names
// the file and line; the errors are a blocklist.ErrorList.
func Parse(path string, data []byte) (*Policy, error) {
	p := &Policy{File: path, SHA256: sha256.Sum256(data)}
	var errs blocklist.ErrorList
	errorf := func(line int, format string, args ...any) {
		errs = append(errs, &blocklist.Error{File: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]int{}
	rootLines := 0
	lines := strings.Split(strings.TrimPrefix(string(data), "\uFEFF"), "\n")
	for i, line := range lines {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		switch {
		case len(errs) >= 100:
			errorf(n, "too many errors, stopped")
			return nil, errs
		case len(line) > blocklist.MaxLine:
			errorf(n, "line is %d bytes long; at most %d are allowed", len(line), blocklist.MaxLine)
			continue
		case strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			errorf(n, "control character in the line")
			continue
		case n == 1:
			if strings.TrimSpace(line) != versionLine {
				errorf(n, "not a regblock trust policy: the first line must be %q", versionLine)
				return nil, errs
			}
			continue
		case strings.HasPrefix(line, "#!"):
			key, value, ok := strings.Cut(line[2:], ":")
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			if !ok || value == "" {
				errorf(n, "header line %q is not \"#! key: value\"", line)
				continue
			}
			if seen["#"+key] > 0 {
				errorf(n, "header %q given twice", key)
				continue
			}
			seen["#"+key] = n
			var err error
			switch key {
			case "serial":
				if p.Serial, err = strconv.ParseUint(value, 10, 64); err != nil {
					errorf(n, "serial %q is not an unsigned integer", value)
				}
			case "issued", "expires":
				t, err := time.Parse(time.RFC3339, value)
				if err != nil {
					errorf(n, "%s %q is not an RFC 3339 time such as 2026-12-01T00:00:00Z", key, value)
				}
				if key == "issued" {
					p.Issued = t
				} else {
					p.Expires = t
				}
			default:
				errorf(n, "unknown header key %q (known: serial, issued, expires)", key)
			}
			continue
		}
		issuer, line, err := cutIssuer(line)
		if err != nil {
			errorf(n, "%v", err)
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if issuer != "" && (len(fields) == 0 || fields[0] != "list") {
			errorf(n, "only a list line names an issuer")
			continue
		}
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "root":
			rootLines++
			if rootLines > 1 {
				errorf(n, "a second root line: the policy has one")
				continue
			}
			rule, err := parseRule(fields[1:], n)
			if err != nil {
				errorf(n, "root: %v", err)
				continue
			}
			p.Root = rule
		case "list":
			if len(fields) < 2 {
				errorf(n, "list: want list PATTERN THRESHOLD KEY... [\"ISSUER\"]")
				continue
			}
			pattern := fields[1]
			if err := checkPattern(pattern); err != nil {
				errorf(n, "list %q: %v", pattern, err)
				continue
			}
			if prev := seen[pattern]; prev > 0 {
				errorf(n, "list %q: already given on line %d", pattern, prev)
				continue
			}
			seen[pattern] = n
			rule, err := parseRule(fields[2:], n)
			if err != nil {
				errorf(n, "list %q: %v", pattern, err)
				continue
			}
			p.Lists = append(p.Lists, ListRule{Pattern: pattern, Rule: rule, Issuer: issuer})
		default:
			errorf(n, "unknown line %q: want root or list", fields[0])
		}
	}
	if seen["#serial"] == 0 {
		errorf(1, "missing required header %q", "serial")
	}
	if seen["#issued"] == 0 {
		errorf(1, "missing required header %q", "issued")
	}
	if rootLines == 0 {
		errorf(0, "no root line: a policy names the keys that sign its next version (root THRESHOLD KEY...)")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// One key ID for two public keys, or one public key under two IDs,
	// anywhere in the policy: a key could pose as another, or count twice.
	var keys []minisign.PublicKey
	var on []int // the line of each key
	var names []string
	for _, r := range append([]Rule{p.Root}, p.rules()...) {
		for _, k := range r.Keys {
			keys, on, names = append(keys, k), append(on, r.Line), append(names, fmt.Sprintf("line %d", r.Line))
		}
	}
	var clash *minisig.KeyClash
	if errors.As(minisig.CheckKeys(keys, names), &clash) {
		errorf(on[clash.Second], "%v", clash)
		return nil, errs
	}
	return p, nil
}

// rules returns the rules of the list lines.
func (p *Policy) rules() []Rule {
	rules := make([]Rule, len(p.Lists))
	for i, l := range p.Lists {
		rules[i] = l.Rule
	}
	return rules
}

// maxIssuer bounds the issuer a list line grants, as the list format
// bounds a header's value.
const maxIssuer = 200

// cutIssuer takes the quoted issuer off the end of a line: what is between
// the first '"' and the next, after which only a comment may follow. It
// returns the issuer ("" when the line has no quote) and the line before it.
func cutIssuer(line string) (issuer, rest string, err error) {
	q := strings.IndexByte(line, '"')
	if h := strings.IndexByte(line, '#'); q < 0 || h >= 0 && h < q {
		return "", line, nil // no quote, or only in a comment
	}
	end := strings.IndexByte(line[q+1:], '"')
	if end < 0 {
		return "", line, errors.New("the issuer's closing quote is missing")
	}
	issuer, after := line[q+1:q+1+end], strings.TrimSpace(line[q+2+end:])
	switch {
	case after != "" && !strings.HasPrefix(after, "#"):
		return "", line, fmt.Errorf("%q after the issuer: the issuer ends the line", short(after))
	case strings.TrimSpace(issuer) != issuer || issuer == "":
		return "", line, errors.New("the issuer is empty, or starts or ends with a space")
	case len(issuer) > maxIssuer:
		return "", line, fmt.Errorf("the issuer is %d bytes long; at most %d are allowed", len(issuer), maxIssuer)
	}
	return issuer, line[:q], nil
}

// parseRule reads "THRESHOLD KEY...". A threshold that the keys cannot
// meet is an error: a policy may not lock out its own root, nor a list.
func parseRule(fields []string, line int) (Rule, error) {
	if len(fields) < 2 {
		return Rule{}, errors.New("want a threshold and its keys (THRESHOLD KEY ...)")
	}
	t, err := strconv.Atoi(fields[0])
	if err != nil || t < 1 {
		return Rule{}, fmt.Errorf("threshold %q is not a whole number from 1", fields[0])
	}
	r := Rule{Threshold: t, Line: line}
	for _, text := range fields[1:] {
		var key minisign.PublicKey
		if err := key.UnmarshalText([]byte(text)); err != nil {
			return Rule{}, fmt.Errorf("%q is not a minisign public key (the second line of a .pub file)", short(text))
		}
		if err := minisig.CheckPublicKey(key); err != nil {
			return Rule{}, err
		}
		for _, k := range r.Keys {
			switch {
			case k.ID() == key.ID() && minisig.SameKey(k, key):
				return Rule{}, fmt.Errorf("key %X given twice", key.ID())
			case minisig.SameKey(k, key):
				return Rule{}, fmt.Errorf("key %X given again under key ID %X: one public key under two IDs counts once", k.ID(), key.ID())
			case k.ID() == key.ID():
				return Rule{}, fmt.Errorf("two different public keys under key ID %X: a key ID is chosen by whoever makes the key, so one of them may be posing as the other", key.ID())
			}
		}
		r.Keys = append(r.Keys, key)
	}
	if t > len(r.Keys) {
		return Rule{}, fmt.Errorf("threshold %d, but only %d keys: it could never be met", t, len(r.Keys))
	}
	return r, nil
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// checkPattern accepts a list name, or a prefix of one ending in '*' ("*"
// alone: every list).
func checkPattern(pattern string) error {
	name, prefix := strings.CutSuffix(pattern, "*")
	switch {
	case strings.Contains(name, "*"):
		return errors.New("'*' may only end a pattern")
	case name == "" && prefix, safename.Valid(name):
		return nil
	}
	return errors.New("not a list name (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit), nor such a prefix followed by a star")
}

// RuleFor returns the rule for the list named name: the exact line, else
// the longest prefix; nil when no line names it.
func (p *Policy) RuleFor(name string) *ListRule {
	var best *ListRule
	for i := range p.Lists {
		r := &p.Lists[i]
		prefix, wild := strings.CutSuffix(r.Pattern, "*")
		switch {
		case !wild && r.Pattern == name:
			return r
		case wild && strings.HasPrefix(name, prefix) && (best == nil || len(prefix) > len(strings.TrimSuffix(best.Pattern, "*"))):
			best = r
		}
	}
	return best
}

// Count returns how many distinct public keys of r are among signers, the
// keys whose signatures verified. Keys are compared whole, never by ID.
func (r Rule) Count(signers []minisign.PublicKey) int {
	n := 0
	for i, s := range signers {
		counted := slices.ContainsFunc(signers[:i], func(k minisign.PublicKey) bool { return minisig.SameKey(k, s) })
		if !counted && slices.ContainsFunc(r.Keys, func(k minisign.PublicKey) bool { return minisig.SameKey(k, s) }) {
			n++
		}
	}
	return n
}

// distinct returns how many distinct public keys r has.
func (r Rule) distinct() int { return r.Count(r.Keys) }

// Judge checks that signers, the keys whose signatures of a list named name
// verified, meet the policy's rule for that name, and that the issuer the
// list claims, if any, is the one the line grants, if it names one (a list
// that claims none takes the granted one: see Grant): an error
// wrapping ErrUntrusted when no line names it or the issuer differs,
// ErrThreshold when too few of the line's keys signed.
func (p *Policy) Judge(name, issuer string, signers []minisign.PublicKey) error {
	r := p.RuleFor(name)
	if r == nil {
		return fmt.Errorf("%w: no line of trust policy serial %d names list %q", ErrUntrusted, p.Serial, name)
	}
	if r.Issuer != "" && issuer != "" && issuer != r.Issuer {
		return fmt.Errorf("%w: list %q claims issuer %q, but line %d (list %s) of trust policy serial %d grants %q", ErrUntrusted, name, short(issuer), r.Line, r.Pattern, p.Serial, r.Issuer)
	}
	if n := r.Count(signers); n < r.Threshold {
		return fmt.Errorf("%w: list %q has %d valid signatures by the keys of line %d (list %s) of trust policy serial %d, which needs %d",
			ErrThreshold, name, n, r.Line, r.Pattern, p.Serial, r.Threshold)
	}
	return nil
}

// ListKeys returns every key of the policy's list lines, each once: the
// keys a list's signatures are verified against.
func (p *Policy) ListKeys() []minisign.PublicKey {
	var keys []minisign.PublicKey
	seen := map[[32]byte]bool{}
	for _, r := range p.Lists {
		for _, k := range r.Keys {
			if b := minisig.KeyBytes(k); !seen[b] {
				seen[b] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// Expired reports whether the policy has an expiry time before now.
func (p *Policy) Expired(now time.Time) bool { return !p.Expires.IsZero() && now.After(p.Expires) }

// Grant sets the issuer of l, a list the policy judged, to the one its
// line grants when l claims none, so that the notice page, EDE and ledger
// name it.
func (p *Policy) Grant(l *blocklist.List) {
	if r := p.RuleFor(l.Name); r != nil && l.Issuer == "" {
		l.Issuer = r.Issuer
	}
}

// Warnings returns what is valid in the policy but likely a mistake: list
// lines that grant no issuer, so that a list signed under them may claim
// any (another authority's name, in its notice page and EDE).
func (p *Policy) Warnings() []blocklist.Warning {
	var ws []blocklist.Warning
	granted := map[string]int{} // issuer: the first line granting it
	for _, r := range p.Lists {
		switch {
		case r.Issuer == "":
			ws = append(ws, blocklist.Warning{Line: r.Line, Msg: fmt.Sprintf("list %s grants no issuer: a list signed under it may claim any issuer; end the line with the issuer in quotes", r.Pattern)})
			continue
		case strings.ContainsFunc(r.Issuer, func(c rune) bool {
			return c != ' ' && !unicode.IsGraphic(c) || unicode.Is(unicode.Cf, c) || unicode.IsSpace(c) && c != ' '
		}):
			ws = append(ws, blocklist.Warning{Line: r.Line, Msg: fmt.Sprintf("list %s grants an issuer with an invisible or unusual space character: %+q", r.Pattern, r.Issuer)})
		}
		if first, ok := granted[r.Issuer]; ok && first != r.Line {
			ws = append(ws, blocklist.Warning{Line: r.Line, Msg: fmt.Sprintf("list %s grants the issuer of line %d too: their lists will show the same name", r.Pattern, first)})
		} else {
			granted[r.Issuer] = r.Line
		}
	}
	return ws
}
