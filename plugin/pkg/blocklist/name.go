package blocklist

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// CanonicalName returns name in the form lists are matched in: ASCII
// (Unicode labels become punycode), lower case, without a trailing dot.
// Punycode labels must decode to a valid IDN. It rejects the root, empty labels and characters that a host name cannot
// hold; the underscore is allowed, as in service names.
func CanonicalName(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if isCanonical(name) { // most names of a list: one pass over their bytes
		return name, nil
	}
	return canonical(name)
}

// canonical is CanonicalName for a name without its trailing dot.
func canonical(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if len(name) > 4*253 { // even in Unicode, too long to become a valid name
		return "", fmt.Errorf("name of %d bytes is longer than a DNS name can be", len(name))
	}
	if isASCII(name) {
		name = strings.ToLower(name) // so that XN-- is punycode, checked, too
	}
	if !isASCII(name) || strings.Contains(name, "xn--") {
		ascii, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("invalid internationalized name %s: %v", quote(name), err)
		}
		name = ascii
	}
	name = strings.ToLower(name)
	if len(name) > 253 {
		return "", fmt.Errorf("name %s is longer than 253 characters", quote(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return "", fmt.Errorf("name %s has an empty label", quote(name))
		}
		if len(label) > 63 {
			return "", fmt.Errorf("name %s has a label longer than 63 characters", quote(name))
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isNameByte(c) {
				return "", fmt.Errorf("name %s has an invalid character %q", quote(name), c)
			}
		}
	}
	return name, nil
}

// isCanonical reports whether name is in the form CanonicalName returns
// already: 1 to 253 bytes of lower-case labels of name bytes, each 1 to 63
// bytes long, and no "xn--" anywhere (punycode is checked by decoding it).
func isCanonical(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	label := 0 // the length of the label so far
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c == '-' && i >= 2 && name[i-2:i] == "xn" && i+1 < len(name) && name[i+1] == '-':
			return false
		case isNameByte(c):
			if label++; label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quote returns s quoted for an error message, cut to 64 bytes so that a
// hostile value is never echoed whole.
func quote(s string) string {
	if len(s) <= 64 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…", s[:64])
}
