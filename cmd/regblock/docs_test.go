package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
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

// TestArchitectureNames checks that every function, method and type that
// docs/architecture.md names in backquotes (`pkg.Func`, `Type.Method`,
// `file.go`) is still defined, so that the map of a list version's road
// cannot go stale unseen.
func TestArchitectureNames(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder // every non-test Go file of the module
	files := map[string]bool{}
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return err
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files[d.Name()] = true
			data, err := os.ReadFile(path)
			src.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := src.String()
	checked := 0
	for _, m := range regexp.MustCompile("`([A-Za-z][A-Za-z0-9_./]*)`").FindAllStringSubmatch(string(doc), -1) {
		name := m[1]
		if strings.HasSuffix(name, ".go") {
			if !files[filepath.Base(name)] {
				t.Errorf("docs/architecture.md names %s: no such file", name)
			}
			checked++
			continue
		}
		parts := strings.Split(name, ".")
		last := parts[len(parts)-1]
		if len(parts) < 2 || last == "" || !unicode.IsLetter(rune(last[0])) || strings.Contains(name, "/") || parts[0] == strings.ToUpper(parts[0]) {
			continue // a package, a path, a word, a file name pattern (FILE.head)
		}
		defined := regexp.MustCompile(`(?m)^(func (\([^)]*\) )?|type |\t)` + regexp.QuoteMeta(last) + `\b`)
		if !defined.MatchString(code) {
			t.Errorf("docs/architecture.md names %s: %s is defined nowhere", name, last)
		}
		checked++
	}
	if checked < 30 {
		t.Errorf("only %d names checked in docs/architecture.md: the pattern no longer finds them", checked)
	}
}
