// Command regblock is regblock's toolkit for regulators, operators and
// auditors. Each subcommand lives in its own file with its own flag set;
// the work itself is done in plugin/pkg and internal packages.
//
// Output rules, for every command:
//   - Results go to standard output; nothing else does.
//   - An error is one line on standard error, "regblock: error: " and a
//     message in lower case without a final period, naming the file (and
//     line) or the flag at fault; a hint, when there is one, follows as
//     "regblock: hint: ". A list's own errors are printed one a line as
//     "FILE:LINE: error: MESSAGE" before that line.
//   - Exit status: 0 done, 1 failed (or, for audit and verify-hashed, the
//     check did not pass), 2 misuse or could not run.
//   - Misuse names the problem ("-dir is required", "-tls-cert needs
//     -tls-key") rather than printing the usage; -h prints the usage.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// command is one subcommand: run gets the arguments after its name and
// returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"keygen", "make a minisign key pair for signing lists", keygen},
	{"sign", "lint, then sign lists (writes LIST.minisig)", sign},
	{"verify", "verify lists against public keys and print their headers", verify},
	{"policy", "write or edit a trust policy's root and list lines from public key files", policyCmd},
	{"lint", "check lists without signing: every error with file:line, and warnings", lint},
	{"inspect", "print a list's header, entry counts and time to expiry; a delta's changes", inspect},
	{"diff", "entries added, removed and changed between two versions of a list", diff},
	{"delta", "write the delta that turns one version of a list into the next (sign it like a list)", deltaCmd},
	{"hash", "write the confidential (hashed) form of a plain list", hashCmd},
	{"verify-hashed", "check that a hashed list is exactly the hash of a plain one", verifyHashed},
	{"export", "write a list as an RPZ zone for BIND, Unbound, PowerDNS and Knot", export},
	{"audit", "query a resolver for listed and control names and report compliance", auditCmd},
	{"sync", "fetch a signed list from a web server into the lists directory", syncCmd},
	{"notice", "serve the legal notice page (HTTP 451) for blocked hosts", noticeCmd},
	{"probe", "exit 0 when a URL answers 200 (a container health check)", probe},
	{"verify-ledger", "check the audit log's hash chain and print which serial was in force when", verifyLedger},
	{"receipts", "take resolvers' signed enforcement receipts, keep them and export metrics (the regulator's side)", receiptsCmd},
	{"report", "build the transparency report for a period from receipts and the published lists", reportCmd},
	{"version", "print the version of this build", versionCmd},
}

const usage = `regblock: the toolkit of regblock, resolver-side DNS blocking on signed lists.

Usage: regblock COMMAND [FLAGS] [ARGS]

Commands:
%s
Run 'regblock COMMAND -h' for a command's flags and an example.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		code := 0
		if len(args) == 0 {
			w, code = stderr, 2
		}
		list := ""
		for _, c := range commands {
			list += fmt.Sprintf("  %-14s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, usage, list)
		return code
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "regblock: error: unknown command %q\nregblock: hint: run 'regblock -h' for the list of commands\n", args[0])
	return 2
}

// newFlagSet returns a flag set that prints usage (text, then the flags) on
// -h and reports its errors on stderr.
func newFlagSet(name, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("regblock "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit code to stop with, or -1 to
// go on. A flag given after the arguments (Go's flags stop at the first
// argument) is misuse, and the hint rebuilds the command meant.
func parseFlags(fs *flag.FlagSet, args []string) int {
	// The flag package prints its own errors and the whole usage on any
	// mistake; keep it quiet and say it as every other error is said.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0
	case err != nil:
		return fail(out, 2, err, fmt.Sprintf("run '%s -h' for usage", fs.Name()))
	}
	rest := fs.Args()
	for i, arg := range rest {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if strings.HasPrefix(arg, "-") && fs.Lookup(name) != nil {
			meant := append(slices.Clone(rest[i:]), rest[:i]...)
			return fail(fs.Output(), 2, fmt.Errorf("flag %s comes after the arguments, where it is taken as an argument", arg),
				fmt.Sprintf("flags go first: did you mean '%s %s'?", fs.Name(), strings.Join(meant, " ")))
		}
	}
	return -1
}

// need is a condition a command line must meet, and the problem to name
// when it does not.
type need struct {
	ok      bool
	problem string
}

// require checks needs in order and reports the first one not met as
// misuse (exit 2), with a pointer to the usage; it returns -1 when all are
// met.
func require(fs *flag.FlagSet, needs ...need) int {
	for _, n := range needs {
		if !n.ok {
			return fail(fs.Output(), 2, errors.New(n.problem), fmt.Sprintf("run '%s -h' for usage", fs.Name()))
		}
	}
	return -1
}

// gotArgs names a command's count of arguments for a misuse message.
func gotArgs(fs *flag.FlagSet) string {
	switch fs.NArg() {
	case 0:
		return "none"
	case 1:
		return fmt.Sprintf("1 (%q)", fs.Arg(0))
	}
	return fmt.Sprintf("%d (%s)", fs.NArg(), strings.Join(fs.Args(), " "))
}

// writeJSON writes v as indented JSON, as the commands' -json prints it.
func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// fail prints an error, and a hint when there is one, and returns code.
func fail(stderr io.Writer, code int, err error, hint string) int {
	fmt.Fprintf(stderr, "regblock: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(stderr, "regblock: hint: %s\n", hint)
	}
	return code
}
