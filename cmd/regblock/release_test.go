package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regblock/regblock/internal/testenv"
)

// TestRelease runs scripts/release.sh as a release manager would, twice,
// the second time with an empty build cache: both give the same
// SHA256SUMS (reproducible builds), which the README's commands verify
// (regblock verify -raw, stock minisign -V, sha256sum -c); the binaries
// carry the version; each has a CycloneDX SBOM naming its modules. One
// architecture, to keep it to two cold builds.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release twice, once from an empty cache: not with -short")
	}
	minisign := testenv.Need(t, "minisign", "minisign")
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "release.key"), filepath.Join(dir, "release.pub")
	if code, _, stderr := regblock(t, "keygen", "-W", "-p", pub, "-s", key); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	release := func(out string, env ...string) {
		t.Helper()
		cmd := exec.Command("../../scripts/release.sh", "v9.9.9-test", "-o", out, "-s", key, "-arch", "amd64")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("release.sh: %v\n%s", err, out)
		}
	}
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	release(first)
	release(second, "GOCACHE="+t.TempDir())
	sums := mustRead(t, filepath.Join(first, "SHA256SUMS"))
	if again := mustRead(t, filepath.Join(second, "SHA256SUMS")); again != sums {
		t.Errorf("two builds of one commit differ:\n%s\n%s", sums, again)
	}
	for _, name := range []string{"regblockd_v9.9.9-test_linux_amd64", "regblock_v9.9.9-test_linux_amd64",
		"regblockd_v9.9.9-test_linux_amd64.cdx.json", "regblock_v9.9.9-test_linux_amd64.cdx.json"} {
		if !strings.Contains(sums, "  "+name+"\n") {
			t.Errorf("SHA256SUMS has no %s:\n%s", name, sums)
		}
	}

	// The README's verification, in the release directory.
	for _, argv := range [][]string{
		{bin, "verify", "-raw", "-p", pub, "SHA256SUMS"},
		{minisign, "-Vm", "SHA256SUMS", "-p", pub},
		{"sha256sum", "-c", "SHA256SUMS"},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = first
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	os.WriteFile(filepath.Join(first, "SHA256SUMS"), []byte(strings.Replace(sums, "  regblock_", "  regblockd_", 1)), 0o644)
	if code, _, _ := regblock(t, "verify", "-raw", "-p", pub, filepath.Join(first, "SHA256SUMS")); code != 1 {
		t.Errorf("verify -raw of an altered SHA256SUMS: exit %d, want 1", code)
	}

	out, err := exec.Command(filepath.Join(second, "regblock_v9.9.9-test_linux_amd64"), "version").Output()
	if err != nil || !strings.Contains(string(out), "v9.9.9-test") {
		t.Errorf("regblock version: %q, %v", out, err)
	}
	var sbom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct{ Name, Version string }
	}
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(second, "regblockd_v9.9.9-test_linux_amd64.cdx.json"))), &sbom); err != nil || sbom.BOMFormat != "CycloneDX" {
		t.Fatalf("SBOM: %v, format %q", err, sbom.BOMFormat)
	}
	found := map[string]bool{}
	for _, c := range sbom.Components {
		found[c.Name] = true
	}
	for _, m := range []string{"github.com/coredns/coredns", "github.com/miekg/dns", "aead.dev/minisign", "std"} {
		if !found[m] {
			t.Errorf("regblockd's SBOM does not name %s", m)
		}
	}
}
