package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
)

// shBlocks returns the commands of the README's ```sh blocks in the part
// of it that starts at heading and ends at the next "## " heading.
func shBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	start := strings.Index(readme, heading)
	if start < 0 {
		t.Fatalf("the README has no %q", heading)
	}
	part := readme[start+len(heading):]
	if end := strings.Index(part, "\n## "); end >= 0 {
		part = part[:end]
	}
	var lines []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(part, -1) {
		// A command continued with a backslash is one line.
		for _, line := range strings.Split(strings.ReplaceAll(m[1], "\\\n", " "), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				lines = append(lines, line)
			}
		}
	}
	if len(lines) == 0 {
		t.Fatalf("the README has no commands under %q", heading)
	}
	return lines
}

// TestReadmeWalkthrough runs the README's regulator walkthrough and its
// auditor's command, as written, in a copy of the repository's Corefile and
// example lists: key, trust, list, lint, sign, verify, inspect, diff, the
// names added blocked without a restart, and an audit that passes. Only
// the ports are moved, so that it can run beside the other tests.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	testenv.Need(t, "dig", "dnsutils")
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	regulator := shBlocks(t, readme, "### From a key to a list the resolver enforces")
	auditor := shBlocks(t, readme, "## For auditors")

	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "blocklists"), os.DirFS("../../blocklists")); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Build(work, "../regblock", "regblock"); err != nil {
		t.Fatal(err)
	}
	port, metrics := testenv.FreePort(t), testenv.FreePort(t)
	ports := strings.NewReplacer("-p 1053", "-p "+port, "127.0.0.1:1053", "127.0.0.1:"+port)
	corefile, err := os.ReadFile("../../Corefile")
	if err != nil {
		t.Fatal(err)
	}
	corefile = []byte(strings.NewReplacer(".:1053", ".:"+port, "127.0.0.1:9153", "127.0.0.1:"+metrics).Replace(string(corefile)))
	if err := os.WriteFile(filepath.Join(work, "Corefile"), corefile, 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "REGBLOCK_PASSWORD=walkthrough password")
	sh := func(line string) string {
		t.Helper()
		cmd := exec.Command("bash", "-c", line)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return string(out)
	}
	// A dig the README runs right after a list is signed: the resolver
	// takes it within a second, so it is asked again until then.
	blocked := func(line string, want ...string) {
		t.Helper()
		var out string
		testenv.Eventually(t, 5*time.Second, line+" answers with the notice address", func() bool {
			out = sh(line)
			if !strings.Contains(out, "status: NOERROR") || !regexp.MustCompile(`\sIN\s+A\s+127\.0\.0\.1\n`).MatchString(out) {
				return false
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					return false
				}
			}
			return true
		})
	}

	started := false
	for _, line := range append(regulator, auditor...) {
		line = ports.Replace(line)
		switch {
		case strings.HasPrefix(line, "go build -o regblock "):
			// Built above, from the repository rather than the copy.
		case strings.HasPrefix(line, "dig "):
			if strings.Contains(line, "newly-added.example") {
				blocked(line, "ORDER-2026-0100")
			} else {
				blocked(line)
			}
		default:
			// The walkthrough restarts the resolver once its Corefile
			// trusts the new key, before the first list is signed.
			if !started && strings.Contains(line, "sign ") {
				if !strings.Contains(string(sh("cat Corefile")), "my.pub") {
					t.Fatal("the walkthrough signs before the Corefile trusts my.pub")
				}
				conf, err := os.ReadFile(filepath.Join(work, "Corefile"))
				if err != nil {
					t.Fatal(err)
				}
				testenv.Regblockd(t, bin, string(conf), work, "127.0.0.1:"+port, "canary.example-csam.regblock.test.")
				started = true
			}
			sh(line)
		}
	}
	if !started {
		t.Fatal("the walkthrough never signed a list")
	}
	if _, err := os.Stat(filepath.Join(work, "report.html")); err != nil {
		t.Errorf("the auditor's command wrote no report: %v", err)
	}
}
