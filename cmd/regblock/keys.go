package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"aead.dev/minisign"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"golang.org/x/term"
)

// passwordEnv names the environment variable that holds a secret key's
// password for automation.
const passwordEnv = "REGBLOCK_PASSWORD"

// readPassword returns the password of a secret key: from passwordFile if
// given, else from $REGBLOCK_PASSWORD, else asked on the terminal (twice
// when confirm is set, for a new key). A new key's password is never
// empty, wherever it comes from: an empty file or variable is a mistake,
// and -W is how to ask for no password.
func readPassword(passwordFile string, confirm bool) (string, error) {
	if passwordFile != "" {
		data, err := regularfile.Read(passwordFile, 4<<10)
		if err != nil {
			return "", err
		}
		pw := strings.TrimRight(string(data), "\r\n")
		if confirm && pw == "" {
			return "", fmt.Errorf("empty password in %s", passwordFile)
		}
		return pw, nil
	}
	if pw, ok := os.LookupEnv(passwordEnv); ok {
		if confirm && pw == "" {
			return "", fmt.Errorf("empty password in $%s", passwordEnv)
		}
		return pw, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		return "", fmt.Errorf("no password: not on a terminal, and neither -password-file nor $%s is set", passwordEnv)
	}
	defer tty.Close()
	ask := func(prompt string) (string, error) {
		fmt.Fprint(tty, prompt)
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return string(pw), err
	}
	pw, err := ask("Password: ")
	if err != nil || !confirm {
		return pw, err
	}
	again, err := ask("Password (again): ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	if pw == "" {
		return "", errors.New("empty password: use -W for a key without password")
	}
	return pw, nil
}

// readSecretKey reads a minisign secret key file, decrypting it when it is
// password-protected.
func readSecretKey(path, passwordFile string) (minisign.PrivateKey, error) {
	return minisig.ReadSecretKey(path, func() (string, error) { return readPassword(passwordFile, false) })
}

// createFile writes data to a new file, refusing to replace one that exists.
func createFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// readKeys reads the trusted public key files, refusing two that a key ID
// would confuse (minisig.CheckKeys).
func readKeys(paths []string) ([]minisign.PublicKey, error) {
	var keys []minisign.PublicKey
	for _, p := range paths {
		key, err := minisig.ReadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if err := minisig.CheckKeys(keys, paths); err != nil {
		return nil, err
	}
	return keys, nil
}

// multiFlag collects a flag given several times or as a comma list.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}
