package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/regblock/regblock/internal/testenv"
)

// TestSystemdUnits runs systemd-analyze verify on every unit, with the
// binaries they start present, and fails on any complaint, warnings
// included (systemd-analyze exits 0 on a value it ignores).
func TestSystemdUnits(t *testing.T) {
	analyze := testenv.Need(t, "systemd-analyze", "systemd")
	units, err := filepath.Glob("systemd/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in systemd/: %v", err)
	}
	timers, _ := filepath.Glob("systemd/*.timer")
	trust, _ := filepath.Glob("systemd/trust/*.service")
	units = append(append(units, timers...), trust...)
	dropins, _ := filepath.Glob("systemd/trust/*.service.d/*.conf")
	if len(trust) == 0 || len(dropins) == 0 {
		t.Fatalf("no trust units or drop-ins in systemd/trust/")
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	stub, _ := os.ReadFile(truePath)
	for _, name := range []string{"regblockd", "regblock"} {
		os.WriteFile(filepath.Join(bin, name), stub, 0o755)
	}
	var paths []string
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "/usr/local/bin/", bin+"/")
		path := filepath.Join(dir, filepath.Base(u))
		os.WriteFile(path, []byte(text), 0o644)
		paths = append(paths, path)
	}
	// The drop-ins apply to the units verified: systemd-analyze reads them
	// from the unit path, as systemd reads /etc/systemd/system.
	for _, d := range dropins {
		data, _ := os.ReadFile(d)
		to := filepath.Join(dir, filepath.Base(filepath.Dir(d)), filepath.Base(d))
		os.MkdirAll(filepath.Dir(to), 0o755)
		os.WriteFile(to, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/", bin+"/")), 0o644)
	}
	verify := exec.Command(analyze, append([]string{"verify"}, paths...)...)
	verify.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := verify.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, ".service") {
			continue
		}
		// systemd-analyze security's exposure, 0 (locked down) to 10.
		out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", p).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(p), err, out)
		} else if exposure, _ := strconv.ParseFloat(string(m[1]), 64); exposure > 1.5 {
			t.Errorf("%s: exposure %.1f, above 1.5 (systemd-analyze security --offline=yes)", filepath.Base(p), exposure)
		}
		unit, _ := os.ReadFile(p)
		for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "SystemCallFilter=@system-service", "User=regblock", "CapabilityBoundingSet="} {
			if !strings.Contains(string(unit), want) {
				t.Errorf("%s lacks %s", filepath.Base(p), want)
			}
		}
		// The same user runs them all: only regblockd may reach its state
		// directory, where a planted trust policy or a deleted mark would
		// outlive a restart.
		if filepath.Base(p) != "regblockd.service" && !strings.Contains(string(unit), "InaccessiblePaths=-/var/lib/regblock/state\n") {
			t.Errorf("%s can reach regblockd's state directory: want InaccessiblePaths=-/var/lib/regblock/state", filepath.Base(p))
		}
	}
}
