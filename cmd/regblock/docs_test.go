package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// toolkitDoc is the users' reference of the toolkit: every command's usage,
// as -h prints it.
const toolkitDoc = "../../docs/toolkit.md"

// TestToolkitDoc checks that docs/toolkit.md is what the commands say of
// themselves, so that it cannot go stale; REGBLOCK_UPDATE_DOCS=1 rewrites it.
func TestToolkitDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString("# The toolkit, `regblock`\n\n")
	b.WriteString("`go build -o regblock ./cmd/regblock` builds it. Every command prints this\n")
	b.WriteString("text with `-h`; this page is generated from it (`REGBLOCK_UPDATE_DOCS=1 go\n")
	b.WriteString("test ./cmd/regblock -run TestToolkitDoc`), so the two cannot differ.\n\n")
	b.WriteString("Output rules, for every command: results go to standard output and nothing\n")
	b.WriteString("else does; an error is one line on standard error, `regblock: error: ...`,\n")
	b.WriteString("naming the file (and line) or the flag at fault, with a `regblock: hint: ...`\n")
	b.WriteString("line when there is one. Exit status: 0 done, 1 failed (for `audit` and\n")
	b.WriteString("`verify-hashed`: the check did not pass), 2 misuse or could not run.\n\n")
	b.WriteString("| command | does |\n| --- | --- |\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", c.name, c.name, c.summary)
	}
	for _, c := range commands {
		var stdout, stderr strings.Builder
		if code := c.run([]string{"-h"}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s -h: exit %d", c.name, code)
		}
		fmt.Fprintf(&b, "\n## %s\n\n```\n%s```\n", c.name, strings.TrimRight(stdout.String()+stderr.String(), "\n")+"\n")
	}
	want := b.String()
	if os.Getenv("REGBLOCK_UPDATE_DOCS") != "" {
		if err := os.WriteFile(toolkitDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(toolkitDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what the commands print with -h: run REGBLOCK_UPDATE_DOCS=1 go test ./cmd/regblock -run TestToolkitDoc", toolkitDoc)
	}
}
