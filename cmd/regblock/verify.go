package main

import (
	"fmt"
	"io"
	"strings"

	"aead.dev/minisign"

	"github.com/regblock/regblock/plugin/pkg/admit"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
	"github.com/regblock/regblock/plugin/pkg/minisig"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

const verifyUsage = `Usage: regblock verify -p PUB [-p PUB2] [-trust POLICY | -raw] LIST_OR_POLICY...

Verifies each list's signatures (LIST.minisig) against the public keys, as a
resolver does, then parses the list and prints its header and the keys that
signed it. With -trust, the keys are the pinned root keys of the trust
policy POLICY, and each list is judged by the policy's line for its name:
verify says which line and which keys satisfied it. A trust policy given as
an argument is verified as a resolver pinning the keys accepts its first
policy. With -raw, checks only that FILE.minisig signs the file's bytes
(a release's SHA256SUMS, signed with 'regblock sign -raw'). Exits 0 only
when every file is valid.

Examples:
  regblock verify -p blocklists/example.pub blocklists/example.list
  regblock verify -p root-a.pub,root-b.pub -trust regblock.trust mcmc-csam.list
  regblock verify -raw -p release.pub SHA256SUMS

`

func verify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", verifyUsage, stderr)
	var pubs multiFlag
	fs.Var(&pubs, "p", "trusted public key `file` (repeat, or separate with commas); with -trust, the pinned root keys")
	trustPath := fs.String("trust", "", "judge lists by the trust policy `file`, or its history directory (N.trust, walked from the pinned roots)")
	raw := fs.Bool("raw", false, "verify any file's signature over its bytes, not as a list or policy")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := require(fs,
		need{len(pubs) > 0, "-p is required: the public keys to verify against"},
		need{!*raw || *trustPath == "", "-raw and -trust exclude each other: a trust policy judges lists"},
		need{fs.NArg() > 0, "no LIST to verify"},
	); code >= 0 {
		return code
	}
	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	if *raw {
		return verifyRaw(fs.Args(), keys, stdout, stderr)
	}
	j, err := newJudge(*trustPath, keys, stderr)
	if err != nil {
		printErrors(stderr, err)
		return fail(stderr, 1, fmt.Errorf("trust policy %s not accepted", *trustPath), "")
	}
	code := 0
	for _, path := range fs.Args() {
		if data, err := regularfile.Read(path, trust.MaxSize); err == nil && trust.IsPolicy(data) {
			if p, _, err := trust.Load(path, nil, keys); err != nil {
				printErrors(stderr, err)
				code = fail(stderr, 1, fmt.Errorf("%s: not accepted", path), "")
			} else {
				fmt.Fprintf(stdout, "%s: trust policy serial %d valid, signed by %d of its %d root keys (threshold %d)\n",
					path, p.Serial, p.Root.Count(p.Signers), len(p.Root.Keys), p.Root.Threshold)
			}
			continue
		}
		if data, err := regularfile.Read(path, maxFileSize); err == nil && blocklist.IsDeltaData(data) {
			v, err := admit.OpenDelta(path, regularfile.NoLimit, j)
			if err != nil {
				code = fail(stderr, 1, err, "")
				continue
			}
			fmt.Fprintf(stdout, "%s: signature valid, %s\n", path, satisfied(j, v.Delta.List))
			for _, f := range v.Delta.Fields() {
				fmt.Fprintf(stdout, "  %-10s %s\n", f.Key+":", f.Value)
			}
			printDelta(stdout, v.Delta)
			continue
		}
		l, err := load(j, path, regularfile.NoLimit)
		if err != nil {
			code = fail(stderr, 1, err, "")
			continue
		}
		fmt.Fprintf(stdout, "%s: signature valid, %s\n", path, satisfied(j, l))
		printHeader(stdout, l)
	}
	return code
}

// printHeader prints a list's header, one field a line.
func printHeader(w io.Writer, l *blocklist.List) {
	for _, f := range l.Fields() {
		fmt.Fprintf(w, "  %-10s %s\n", f.Key+":", f.Value)
	}
	fmt.Fprintf(w, "  %-10s %d blocking, %d exceptions\n", "entries:", l.Blocking(), len(l.Entries)-l.Blocking())
}

// verifyRaw checks each file's signature over its bytes, nothing more.
func verifyRaw(paths []string, keys []minisign.PublicKey, stdout, stderr io.Writer) int {
	code := 0
	for _, path := range paths {
		data, err := regularfile.Read(path, maxFileSize)
		if err != nil {
			code = fail(stderr, 1, err, "")
			continue
		}
		sig, err := minisig.Read(path)
		if err == nil {
			var signers []minisign.PublicKey
			if signers, err = minisig.Verify(data, sig, keys); err == nil {
				var ids []string
				for _, k := range signers {
					ids = append(ids, fmt.Sprintf("%X", k.ID()))
				}
				fmt.Fprintf(stdout, "%s: signature valid, by key %s\n", path, strings.Join(ids, ", "))
				continue
			}
		}
		code = fail(stderr, 1, fmt.Errorf("%s: %w", path, err), "")
	}
	return code
}
