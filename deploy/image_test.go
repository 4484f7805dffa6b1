//go:build linux

package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regblock/regblock/internal/testenv"
	"github.com/regblock/regblock/plugin/pkg/blocklist/blocklisttest"
)

// TestImage builds the image with deploy/image.sh (buildah, from scratch,
// nothing pulled), runs it with podman in a network namespace of its own,
// and asks the resolver inside for a listed name with dig, entering that
// namespace with nsenter: the answer is the notice address.
//
// The runtime is runc with cgroupfs: these machines mount cgroups in
// hybrid mode, which Debian 12's crun refuses. Limits are set at or below
// the sandbox's own, which a container may not raise.
func TestImage(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{
		{"buildah", "buildah"}, {"podman", "podman"}, {"runc", "runc"}, {"nsenter", "util-linux"}, {"dig", "dnsutils"},
	} {
		testenv.Need(t, tool.name, tool.pkg)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestImage runs containers as root; CI runs as root")
		}
		t.Skip("running containers needs root here; skipping")
	}
	// The image store, removed by hand: podman's cleanup of a container
	// may still be writing to it when the test ends.
	store, err := os.MkdirTemp("", "regblock-image-test")
	if err != nil {
		t.Fatal(err)
	}
	conmon := filepath.Join(store, "conmon.pid")
	t.Cleanup(func() {
		// conmon outlives the container and cleans up after it in the
		// store: wait for it to end first.
		if pid, err := os.ReadFile(conmon); err == nil {
			for range 100 {
				if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		if err := os.RemoveAll(store); err != nil {
			t.Errorf("removing the image store: %v", err)
		}
	})
	global := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}
	podman := func(args ...string) string {
		t.Helper()
		args = append(append([]string{}, global...), args...)
		out, err := exec.Command("podman", args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}

	const image = "localhost/regblock:test"
	// Under a strict umask: the runtime user must still read and run
	// what root owns.
	build := exec.Command("bash", "-c", `umask 077 && exec ./image.sh "$0"`, image)
	build.Env = append(os.Environ(), "BUILDAH=buildah "+strings.Join(global, " "), "VERSION=v0.0.0-test")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/image.sh: %v\n%s", err, out)
	}

	// Binaries and configuration are root's, the lists, state and audit
	// directories the runtime user's.
	rootfs := podman("image", "mount", image)
	owners := map[string]uint32{
		"usr/local/bin/regblockd": 0, "usr/local/bin/regblock": 0, "etc/regblock/Corefile": 0,
		"var/lib/regblock/lists": 65532, "var/lib/regblock/state": 65532, "var/log/regblock": 65532,
	}
	for path, uid := range owners {
		fi, err := os.Stat(filepath.Join(rootfs, path))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Sys().(*syscall.Stat_t).Uid; got != uid {
			t.Errorf("/%s in the image belongs to uid %d, want %d", path, got, uid)
		}
	}
	podman("image", "unmount", image)

	key := blocklisttest.NewKey(t)
	lists, state, audit := t.TempDir(), t.TempDir(), t.TempDir()
	key.WriteList(t, lists, "example-csam.list", fleetList)
	pub := key.WritePublic(t, t.TempDir())
	for _, dir := range []string{state, audit} {
		if err := os.Chown(dir, 65532, 65532); err != nil {
			t.Fatal(err)
		}
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := podman("run", "-d", "--conmon-pidfile", conmon, "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-e", "POD_IP=127.0.0.1",
		"-v", resolv+":/etc/resolv.conf:ro", "-v", lists+":/var/lib/regblock/lists:ro",
		"-v", pub+":/etc/regblock/regulator.pub:ro", "-v", state+":/var/lib/regblock/state",
		"-v", audit+":/var/log/regblock", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("podman", append(append([]string{}, global...), "logs", id)...).CombinedOutput()
			t.Logf("the container's output:\n%s", out)
		}
		exec.Command("podman", append(append([]string{}, global...), "rm", "-f", id)...).Run()
	})
	pid := podman("inspect", "-f", "{{.State.Pid}}", id)

	var answer string
	testenv.Eventually(t, 30*time.Second, "the container answers a listed name with the notice address", func() bool {
		out, _ := exec.Command("nsenter", "-t", pid, "-n", "dig", "+short", "+time=1", "+tries=1",
			"@127.0.0.1", "-p", "1053", "abuse.example", "A").Output()
		answer = strings.TrimSpace(string(out))
		return answer == "192.0.2.80"
	})

	// The resolver runs as the runtime user: its ledger is that user's.
	fi, err := os.Stat(filepath.Join(audit, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65532 {
		t.Errorf("the audit log belongs to uid %d: the resolver does not run as the image's user", uid)
	}
}
