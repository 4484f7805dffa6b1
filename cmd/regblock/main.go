// Command regblock is regblock's toolkit for regulators, operators and
// auditors. Each subcommand lives in its own file with its own flag set.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
	{"lint", "check lists without signing: every error with file:line, and warnings", lint},
	{"inspect", "print a list's header, entry counts and time to expiry", inspect},
	{"diff", "entries added, removed and changed between two versions of a list", diff},
	{"export", "write a list as an RPZ zone for BIND, Unbound, PowerDNS and Knot", export},
	{"audit", "query a resolver for listed and control names and report compliance", auditCmd},
	{"sync", "fetch a signed list from a web server into the lists directory", syncCmd},
	{"notice", "serve the legal notice page (HTTP 451) for blocked hosts", noticeCmd},
	{"probe", "exit 0 when a URL answers 200 (a container health check)", probe},
	{"verify-ledger", "check the audit log's hash chain and print which serial was in force when", verifyLedger},
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
// go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	return -1
}

// fail prints an error, and a hint when there is one, and returns code.
func fail(stderr io.Writer, code int, err error, hint string) int {
	fmt.Fprintf(stderr, "regblock: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(stderr, "regblock: hint: %s\n", hint)
	}
	return code
}
