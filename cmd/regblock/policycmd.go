package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
	"github.com/regblock/regblock/plugin/pkg/regularfile"
	"github.com/regblock/regblock/plugin/pkg/trust"
)

const policyUsage = `Usage: regblock policy [-f POLICY] [-issuer NAME] root THRESHOLD PUB...
       regblock policy [-f POLICY] [-issuer NAME] list PATTERN THRESHOLD PUB...

Writes a trust policy line from public key files, so that nobody pastes
keys: "root THRESHOLD KEY..." or "list PATTERN THRESHOLD KEY... "ISSUER"".
Without -f it prints the line. With -f it sets the line in POLICY (the
root line, or the list line of PATTERN; else it is added), raises the
serial by one and sets issued to now, or creates POLICY at serial 1; the
result must parse, or POLICY is left as it was. Sign it after, with the
root keys (regblock sign -s ROOT.key [-append] POLICY).

Example:
  regblock policy -f regblock.trust root 2 root-a.pub root-b.pub root-c.pub
  regblock policy -f regblock.trust -issuer "Example Communications Commission" list example-csam 1 regulator.pub

`

func policyCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("policy", policyUsage, stderr)
	file := fs.String("f", "", "the policy `file` to set the line in (created when missing)")
	issuer := fs.String("issuer", "", "the issuer a list line grants (`name`)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	a := fs.Args()
	kind := ""
	if len(a) > 0 {
		kind = a[0]
	}
	minArgs := map[string]int{"root": 3, "list": 4}[kind]
	if code := require(fs,
		need{kind == "root" || kind == "list", "want root or list, then its threshold and public key files"},
		need{len(a) >= minArgs, "want " + map[string]string{"root": "root THRESHOLD PUB...", "list": "list PATTERN THRESHOLD PUB..."}[kind]},
		need{*issuer == "" || kind == "list", "-issuer goes with a list line"},
	); code >= 0 {
		return code
	}
	head, pubs := a[:minArgs-1], a[minArgs-1:]
	keys, err := readKeys(pubs)
	if err != nil {
		return fail(stderr, 1, err, "")
	}
	line := strings.Join(head, " ")
	for _, k := range keys {
		line += " " + k.String()
	}
	if *issuer != "" {
		line += " " + strconv.Quote(*issuer)
	}
	if *file == "" {
		// Checked as a policy would take it, then printed.
		probe := fmt.Sprintf("#! regblock-trust 1\n#! serial: 1\n#! issued: 2026-01-01T00:00:00Z\n%s\n", line)
		if kind == "list" {
			probe += "root 1 " + keys[0].String() + "\n"
		}
		if _, err := trust.Parse("(the line)", []byte(probe)); err != nil {
			printErrors(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, line)
		return 0
	}
	data, err := regularfile.Read(*file, trust.MaxSize)
	var text string
	switch {
	case errors.Is(err, os.ErrNotExist):
		text = fmt.Sprintf("%s\n#! serial: 1\n#! issued: %s\n%s\n", "#! regblock-trust 1", time.Now().UTC().Format(time.RFC3339), line)
	case err != nil:
		return fail(stderr, 1, err, "")
	default:
		p, err := trust.Parse(*file, data)
		if err != nil {
			printErrors(stderr, err)
			return fail(stderr, 1, fmt.Errorf("%s: not changed: fix the errors above first", *file), "")
		}
		text = setLine(string(data), kind, head, line, p.Serial+1)
	}
	if _, err := trust.Parse(*file, []byte(text)); err != nil {
		printErrors(stderr, err)
		return fail(stderr, 1, fmt.Errorf("%s: not changed", *file), "")
	}
	if err := atomicfile.Write(*file, []byte(text), 0o644); err != nil {
		return fail(stderr, 1, err, "")
	}
	p, _ := trust.Parse(*file, []byte(text))
	fmt.Fprintf(stdout, "%s: trust policy serial %d: %s\n", *file, p.Serial, strings.Join(head, " "))
	fmt.Fprintf(stderr, "regblock: hint: sign it with the root keys: regblock sign -s ROOT.key [-append] %s\n", *file)
	return 0
}

// setLine returns a policy's text with line in place of its root line (or
// the list line of the same pattern), or added at the end, and its serial
// and issue time set.
func setLine(text, kind string, head []string, line string, serial uint64) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	done := false
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "#!" && strings.HasPrefix(f[1], "serial:"):
			lines[i] = "#! serial: " + strconv.FormatUint(serial, 10)
		case len(f) >= 1 && strings.HasPrefix(strings.TrimSpace(l), "#! issued:"):
			lines[i] = "#! issued: " + time.Now().UTC().Format(time.RFC3339)
		case kind == "root" && len(f) > 0 && f[0] == "root",
			kind == "list" && len(f) > 1 && f[0] == "list" && f[1] == head[1]:
			lines[i], done = line, true
		}
	}
	if !done {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n") + "\n"
}
