package main

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/ledger"
)

// bin is the regblock binary TestMain builds, so that tests see exit codes
// and output as a user does.
var bin string

func TestMain(m *testing.M) {
	// The tests that run in parallel mostly wait on the processes they
	// start (resolvers, daemons, key derivations in the binary): let them
	// all run at once, not one a core, unless -parallel says otherwise.
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == f.DefValue {
		flag.Set("test.parallel", "16")
	}
	testenv.Main(m, ".", "regblock", &bin)
}

// regblock runs the binary and returns its exit code, stdout and stderr.
func regblock(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	if code, _, stderr := regblock(t); code != 2 || !strings.Contains(stderr, "verify-ledger") {
		t.Errorf("no arguments: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := regblock(t, "-h"); code != 0 || !strings.Contains(stdout, "Commands:") {
		t.Errorf("-h: exit %d, %q", code, stdout)
	}
	if code, _, stderr := regblock(t, "frobnicate"); code != 2 || !strings.Contains(stderr, `regblock: error: unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := regblock(t, "version"); code != 0 || !strings.HasPrefix(stdout, "regblock ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

// TestVersionStamp builds the toolkit as a release does, with a version
// stamped at link time, and checks that version prints it.
func TestVersionStamp(t *testing.T) {
	t.Parallel()
	stamped := filepath.Join(t.TempDir(), "regblock")
	ldflags := "-X github.com/regblock/regblock/plugin/pkg/version.stamped=v9.8.7-test"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "regblock v9.8.7-test (") {
		t.Errorf("version of a stamped build: %v %q", err, out)
	}
}

// TestMisuse checks that each kind of misuse exits 2 with one error line
// naming the problem (not the usage), and a hint.
func TestMisuse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the error line, after "regblock: error: "
		hint string
	}{
		{[]string{"sync", "-url", "https://lists.regulator.example/", "-name", "x", "-p", "k.pub"}, "-dir is required: the lists directory to write into", "run 'regblock sync -h' for usage"},
		{[]string{"sync", "-url", "u", "-name", "x", "-dir", ".", "-p", "k", "-once", "-every", "1m"}, "-once and -every exclude each other", ""},
		{[]string{"notice", "-p", "k.pub", "-tls-cert", "c.pem", "lists"}, "-tls-cert needs -tls-key", ""},
		{[]string{"notice", "-p", "k.pub", "-tls-key", "k.pem", "lists"}, "-tls-key needs -tls-cert", ""},
		{[]string{"notice", "lists"}, "-p is required: the public keys the lists are signed with, as the resolver's", ""},
		{[]string{"inspect", "a.list", "b.list"}, "want one LIST; got 2 (a.list b.list)", ""},
		{[]string{"diff", "a.list"}, `want two lists, OLD and NEW; got 1 ("a.list")`, ""},
		{[]string{"audit", "-p", "k.pub", "a.list"}, "-server is required: the resolver to audit, host:port", ""},
		{[]string{"verify", "a.list", "-p", "k.pub"}, "flag -p comes after the arguments, where it is taken as an argument",
			"flags go first: did you mean 'regblock verify -p k.pub a.list'?"},
		{[]string{"sign", "-bogus"}, "flag provided but not defined: -bogus", "run 'regblock sign -h' for usage"},
	} {
		code, stdout, stderr := regblock(t, tc.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 2 || stdout != "" || len(lines) != 2 || lines[0] != "regblock: error: "+tc.want || !strings.HasPrefix(lines[1], "regblock: hint: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and the error %q with a hint", tc.args, code, stdout, stderr, tc.want)
			continue
		}
		if tc.hint != "" && lines[1] != "regblock: hint: "+tc.hint {
			t.Errorf("%v: %s, want the hint %q", tc.args, lines[1], tc.hint)
		}
	}
}

// writeLedger writes an audit log as the resolver does: ledger events
// chained with ledger.Seal, block events between them, and FILE.head.
func writeLedger(t *testing.T, path, head string, events []ledger.Event) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range events {
		line, h, err := ledger.Seal(&e, head)
		if err != nil {
			t.Fatal(err)
		}
		head = h
		b.Write(line)
		b.WriteString("\n")
		b.WriteString(`{"time":"2026-11-28T06:30:00Z","event":"block","list":"example-csam","qname":"abuse.example."}` + "\n")
	}
	os.WriteFile(path, b.Bytes(), 0o640)
	os.WriteFile(path+".head", []byte(head+"\n"), 0o640)
	return head
}

func TestVerifyLedger(t *testing.T) {
	dir := t.TempDir()
	at := func(h int) time.Time { return time.Date(2026, 11, 28, h, 0, 0, 0, time.UTC) }
	serial := func(s uint64) *uint64 { return &s }
	old, cur := filepath.Join(dir, "audit.jsonl.1"), filepath.Join(dir, "audit.jsonl")
	head := writeLedger(t, old, "", []ledger.Event{
		{Time: at(6), Event: ledger.ListApplied, List: "example-csam", Serial: serial(2026112801), File: "blocklists/example.list"},
		{Time: at(7), Event: ledger.ListRejected, List: "example-csam", Reason: "bad_signature", Error: "signature does not match", InForce: serial(2026112801)},
	})
	os.Remove(old + ".head") // only the current file has one
	writeLedger(t, cur, head, []ledger.Event{
		{Time: at(8), Event: ledger.ListApplied, List: "example-csam", Serial: serial(2026112802), File: "blocklists/example.list"},
		{Time: at(9), Event: ledger.ListApplied, List: "other", Serial: serial(5), File: "blocklists/other.list"},
		{Time: at(10), Event: ledger.ListRemoved, List: "other", Serial: serial(5), Reason: "its file blocklists/other.list was removed"},
	})

	code, stdout, stderr := regblock(t, "verify-ledger", old, cur)
	if code != 0 {
		t.Fatalf("intact chain: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"2026-11-28T06:00:00Z  example-csam         applied   serial 2026112801  from blocklists/example.list",
		"rejected                     bad_signature: signature does not match (serial 2026112801 stays in force)",
		"in force at the end of the ledger:\n  example-csam         serial 2026112802 since 2026-11-28T08:00:00Z\n",
		"chain intact: 5 ledger events in 2 files",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// The current file alone: its chain starts from wherever it starts.
	if code, _, stderr := regblock(t, "verify-ledger", cur); code != 0 {
		t.Errorf("current file alone: exit %d: %s", code, stderr)
	}

	data, _ := os.ReadFile(cur)
	lines := strings.SplitAfter(string(data), "\n")
	tests := []struct {
		name, text, err string
	}{
		{"ledger line removed", lines[0] + lines[1] + strings.Join(lines[4:], ""), "audit.jsonl:3: ledger chain broken"},
		{"ledger line edited", strings.Replace(string(data), "2026112802", "2026112803", 1), "audit.jsonl:3: ledger chain broken"},
		{"last ledger line removed", strings.Join(lines[:4], ""), "ledger lines at the end were removed or edited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(cur, []byte(tc.text), 0o640)
			code, _, stderr := regblock(t, "verify-ledger", old, cur)
			if code != 1 || !strings.Contains(stderr, tc.err) || !strings.HasPrefix(stderr, "regblock: error: ") {
				t.Errorf("exit %d, %q; want 1 and %q", code, stderr, tc.err)
			}
		})
	}
	// Right after a rotation the current file is empty and its head names
	// the last line of the rotated one: not a broken chain.
	fresh := filepath.Join(dir, "fresh.jsonl")
	os.WriteFile(fresh, nil, 0o640)
	os.WriteFile(fresh+".head", []byte(head+" 2\n"), 0o640)
	if code, stdout, stderr := regblock(t, "verify-ledger", fresh); code != 0 || !strings.Contains(stdout, "continues a chain from an earlier file") {
		t.Errorf("a fresh file after a rotation: exit %d\n%s%s", code, stdout, stderr)
	}

	// The files in the wrong order break the chain too.
	os.WriteFile(cur, data, 0o640)
	if code, _, _ := regblock(t, "verify-ledger", cur, old); code != 1 {
		t.Errorf("files out of order: exit %d, want 1", code)
	}
	if code, _, stderr := regblock(t, "verify-ledger", filepath.Join(dir, "absent")); code != 2 || !strings.Contains(stderr, "absent") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
	if code, _, _ := regblock(t, "verify-ledger"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code, _, stderr := regblock(t, "verify-ledger", "-h"); code != 0 || !strings.Contains(stderr, "Example:") {
		t.Errorf("-h: exit %d, %q", code, stderr)
	}
}

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer ok.Close()
	if code, _, stderr := regblock(t, "probe", ok.URL+"/ready"); code != 0 {
		t.Errorf("ready: exit %d, %s", code, stderr)
	}
	if code, _, stderr := regblock(t, "probe", ok.URL+"/other"); code != 1 || !strings.Contains(stderr, "503") {
		t.Errorf("not ready: exit %d, %s", code, stderr)
	}
	ok.Close()
	if code, _, _ := regblock(t, "probe", ok.URL+"/ready"); code != 1 {
		t.Errorf("down: exit %d", code)
	}
}
