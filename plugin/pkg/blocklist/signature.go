package blocklist

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"aead.dev/minisign"
)

// SignatureSuffix is appended to a list's path to name its detached signature.
const SignatureSuffix = ".minisig"

// maxKeySize bounds a public key file: its two lines take about 100 bytes.
const maxKeySize = 4 << 10

// MaxSignatureSize bounds a signature file; a minisign signature
// with generous comments is well under 1 KiB.
const MaxSignatureSize = 64 << 10

// ReadPublicKey reads a minisign public key file, as written by
// "minisign -G" or "regblock keygen".
func ReadPublicKey(path string) (minisign.PublicKey, error) {
	var key minisign.PublicKey
	data, err := ReadFile(path, maxKeySize)
	if err != nil {
		return key, fmt.Errorf("public key: %w", err)
	}
	if err := key.UnmarshalText(data); err != nil {
		return key, fmt.Errorf("public key %s: not a minisign public key (%s)", path, strings.TrimPrefix(err.Error(), "minisign: "))
	}
	return key, nil
}

// Verify checks that sig is a minisign signature of data by one of keys.
// Both prehashed (the minisign default) and legacy signatures verify.
func Verify(data, sig []byte, keys []minisign.PublicKey) error {
	s, key, err := signer(sig, keys)
	if err != nil {
		return err
	}
	if !minisign.Verify(key, data, sig) {
		return fmt.Errorf("signature by key %X does not match the list's contents", s.KeyID)
	}
	return nil
}

// signer decodes sig and returns the trusted key that made it.
func signer(sig []byte, keys []minisign.PublicKey) (minisign.Signature, minisign.PublicKey, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return s, minisign.PublicKey{}, fmt.Errorf("not a minisign signature: %v", err)
	}
	for _, key := range keys {
		if key.ID() == s.KeyID {
			return s, key, nil
		}
	}
	return s, minisign.PublicKey{}, fmt.Errorf("signed by key %X, which is not a trusted public key", s.KeyID)
}

// ReadSignature reads the signature of the list at path, path+".minisig".
// A missing signature is an error that wraps ErrNoSignature.
func ReadSignature(path string) ([]byte, error) {
	sigPath := path + SignatureSuffix
	sig, err := ReadFile(sigPath, MaxSignatureSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &LoadError{ReasonBadSignature, fmt.Errorf("%s: %w: %s is missing", path, ErrNoSignature, sigPath)}
	}
	return sig, err
}
