// Package receipt is regblock's enforcement receipt: what a resolver
// enforces and where its ledger stands, signed with the resolver's minisign
// key and sent to the regulator, who keeps every receipt. A receipt proves
// what the ISP committed to, not that it told the truth: a canary audit is
// the check on that. The format is in docs/receipts.md.
package receipt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/safename"
)

// SignatureHeader is the HTTP header that carries a receipt's signature:
// the text of a minisign signature of the request body, base64-encoded
// (standard encoding, with padding).
const SignatureHeader = "Minisign-Signature"

// MaxSize bounds a receipt's body; one with 256 lists is a few tens of KiB.
const MaxSize = 256 << 10

// MaxLists bounds the lists of a receipt: a resolver holds at most as many
// (blockindex.MaxLists).
const MaxLists = 256

// UnknownResolver is the resolver label a receiver gives to what comes from
// no resolver it knows; no resolver may be named so.
const UnknownResolver = "unknown"

// Receipt is what a resolver says it enforces.
type Receipt struct {
	Resolver string    `json:"resolver"`
	Time     time.Time `json:"time"`
	// Started is when the resolver's process started: the Blocked counts
	// of its lists run from then. Zero in receipts of older resolvers.
	Started time.Time `json:"started,omitzero"`
	Lists   []List    `json:"lists"`
	Ledger  Ledger    `json:"ledger"`
}

// List is a list version in force.
type List struct {
	Name    string    `json:"name"`
	Serial  uint64    `json:"serial"`
	SHA256  string    `json:"sha256"` // of the list file's bytes, hex
	Applied time.Time `json:"applied"`
	// Blocked counts the queries this list blocked since Started (whatever
	// its version): an aggregate, naming no query and no client.
	Blocked uint64 `json:"blocked"`
}

// Ledger is where the resolver's ledger stands: the hash of its last line
// and the count of ledger events. Without an audit log, both are zero.
type Ledger struct {
	Head   string `json:"head"`
	Events uint64 `json:"events"`
}

// Sign returns r's body and the value of its SignatureHeader.
func Sign(r Receipt, key minisign.PrivateKey) (body []byte, header string, err error) {
	body, err = json.Marshal(r)
	if err != nil {
		return nil, "", err
	}
	return body, base64.StdEncoding.EncodeToString(minisign.Sign(key, body)), nil
}

// Why a receipt is refused.
var (
	ErrMalformed    = errors.New("malformed receipt")
	ErrUnknownKey   = errors.New("receipt signed by an unknown key")
	ErrBadSignature = errors.New("receipt signature does not verify")
)

// Verify checks a receipt's body against its SignatureHeader value and
// keys, and returns the receipt and the ID of the key that signed it. Its
// errors wrap ErrMalformed, ErrUnknownKey or ErrBadSignature.
//
// The header must hold exactly one signature as stock minisign writes it,
// and the body must be a receipt whose keys are spelled exactly as the
// format says, each once: evidence that a receiver accepts must verify,
// and read the same, with other tools (minisign -V, jq).
func Verify(body []byte, header string, keys []minisign.PublicKey) (Receipt, uint64, error) {
	var r Receipt
	sig, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(sig) == 0 || len(sig) > minisig.MaxSize {
		return r, 0, fmt.Errorf("%w: %s is not a base64 minisign signature", ErrMalformed, SignatureHeader)
	}
	if err := checkOneSignature(sig); err != nil {
		return r, 0, fmt.Errorf("%w: %s: %v", ErrMalformed, SignatureHeader, err)
	}
	id := minisig.KeyIDs(sig)[0]
	signers, err := minisig.Verify(body, sig, keys)
	if err != nil || len(signers) == 0 {
		for _, k := range keys {
			if k.ID() == id {
				return r, 0, fmt.Errorf("%w (key %016X)", ErrBadSignature, id)
			}
		}
		return r, 0, fmt.Errorf("%w (key %016X)", ErrUnknownKey, id)
	}
	if err := checkKeys(body); err != nil {
		return r, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, 0, fmt.Errorf("%w: %.200v", ErrMalformed, err)
	}
	if err := CheckResolverName(r.Resolver); err != nil {
		return r, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Time.IsZero() {
		return r, 0, fmt.Errorf("%w: no time", ErrMalformed)
	}
	if len(r.Lists) > MaxLists {
		return r, 0, fmt.Errorf("%w: %d lists, more than a resolver holds (%d)", ErrMalformed, len(r.Lists), MaxLists)
	}
	for i, l := range r.Lists {
		if !safename.Valid(l.Name) {
			return r, 0, fmt.Errorf("%w: list name %.70q", ErrMalformed, l.Name)
		}
		for _, prev := range r.Lists[:i] {
			if prev.Name == l.Name {
				return r, 0, fmt.Errorf("%w: list %q given twice", ErrMalformed, l.Name)
			}
		}
	}
	return r, signers[0].ID(), nil
}

// checkOneSignature accepts the text of exactly one minisign signature:
// its four lines, as minisign -S writes them, within the limits stock
// minisign reads (comments of at most 1 024 and 8 192 bytes), and without
// a NUL or carriage return, which it would cut a line at where Go's base64
// passes them by.
func checkOneSignature(sig []byte) error {
	lines := strings.Split(strings.TrimSuffix(string(sig), "\n"), "\n")
	switch {
	case len(lines) != 4 || len(minisig.KeyIDs(sig)) != 1:
		return errors.New("not exactly one minisign signature")
	case !strings.HasPrefix(lines[0], "untrusted comment: ") || !strings.HasPrefix(lines[2], "trusted comment: "):
		return errors.New("not a minisign signature: its first and third lines are its comments")
	case len(lines[0]) > maxUntrustedComment || len(lines[2]) > maxTrustedComment:
		return fmt.Errorf("a comment longer than stock minisign reads (%d and %d bytes)", maxUntrustedComment, maxTrustedComment)
	case strings.ContainsAny(string(sig), "\x00\r"):
		return errors.New("a NUL or carriage return, which stock minisign would not read past")
	}
	return nil
}

// Stock minisign's limits on a signature's comment lines (COMMENTMAXBYTES
// and TRUSTEDCOMMENTMAXBYTES), its prefix included, less a margin.
const (
	maxUntrustedComment = 1000
	maxTrustedComment   = 8000
)

// fields are the keys of a receipt's objects, by depth: the receipt, then
// a list or the ledger.
var fields = map[string][]string{
	"":       {"resolver", "time", "started", "lists", "ledger"},
	"lists":  {"name", "serial", "sha256", "applied", "blocked"},
	"ledger": {"head", "events"},
}

// checkKeys refuses a body with a key the format does not have, spelled
// otherwise (encoding/json matches keys without case, jq does not) or given
// twice (tools differ in which one counts).
func checkKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func(in string, depth int) error
	walk = func(in string, depth int) error {
		tok, err := dec.Token()
		if err != nil || depth > 3 {
			return errors.New("not a receipt")
		}
		switch tok {
		case json.Delim('['):
			for dec.More() {
				if err := walk(in, depth+1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('{'):
			var seen []string
			for dec.More() {
				key, err := dec.Token()
				name, ok := key.(string)
				if err != nil || !ok {
					return errors.New("not a receipt")
				}
				if !slices.Contains(fields[in], name) || slices.Contains(seen, name) {
					return fmt.Errorf("key %.40q is not a receipt's, or is given twice", name)
				}
				seen = append(seen, name)
				if err := walk(name, depth+1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// CheckResolverName refuses a name a resolver may not report under: one
// that is not 1 to 64 letters, digits, '.', '_' or '-' starting with a
// letter or digit (it names the resolver's file), or UnknownResolver.
func CheckResolverName(name string) error {
	switch {
	case !safename.Valid(name):
		return fmt.Errorf("resolver name %.70q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	case name == UnknownResolver:
		return fmt.Errorf("resolver name %q is what a receiver calls the resolvers it does not know: choose another", name)
	}
	return nil
}
