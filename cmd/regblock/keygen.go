package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"aead.dev/minisign"
)

const keygenUsage = `Usage: regblock keygen -p PUB -s SEC [-W] [-password-file FILE]

Makes a minisign key pair for signing lists: the public key goes to the
resolvers, the secret key stays with the regulator. The secret key is
encrypted with a password, asked on the terminal, or taken from
-password-file or $REGBLOCK_PASSWORD; -W leaves it unencrypted. Existing
files are never overwritten. The stock minisign CLI reads both files.

Example:
  regblock keygen -p regulator.pub -s regulator.key

`

func keygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", keygenUsage, stderr)
	pubPath := fs.String("p", "regblock.pub", "public key `file` to write")
	secPath := fs.String("s", "regblock.key", "secret key `file` to write")
	noPassword := fs.Bool("W", false, "do not encrypt the secret key")
	passwordFile := fs.String("password-file", "", "read the password from `file`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs, need{fs.NArg() == 0, "keygen takes no arguments; got " + gotArgs(fs)}); code >= 0 {
		return code
	}
	for _, path := range []string{*pubPath, *secPath} {
		if _, err := os.Stat(path); err == nil {
			return fail(stderr, 1, fmt.Errorf("%s already exists", path), "keygen never overwrites a key; choose another name or remove the file yourself")
		}
	}

	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	var secret []byte
	if *noPassword {
		secret, err = priv.MarshalText()
	} else {
		var pw string
		if pw, err = readPassword(*passwordFile, true); err != nil {
			return fail(stderr, 1, err, "use -W for a key without password")
		}
		secret, err = minisign.EncryptKey(pw, priv)
	}
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	public, _ := pub.MarshalText()
	if err := createFile(*secPath, append(secret, '\n'), 0o600); err != nil {
		return fail(stderr, 1, err, "")
	}
	if err := createFile(*pubPath, append(public, '\n'), 0o644); err != nil {
		os.Remove(*secPath)
		return fail(stderr, 1, err, "")
	}
	fmt.Fprintf(stdout, "secret key: %s (keep it secret)\npublic key: %s\nkey id:     %X\n%s\n", *secPath, *pubPath, pub.ID(), pub)
	return 0
}
