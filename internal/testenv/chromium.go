package testenv

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Chromium runs headless Chromium (skipping the test where it is not
// installed, failing it under CI) with a profile of its own in dir, the
// flags that keep it from reaching anything but the page, and args, the
// page's URL last; it returns what Chromium wrote to standard output (the
// DOM, with --dump-dom). It fails the test if Chromium fails or runs for
// more than 60 s.
func Chromium(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	chromium := Need(t, "chromium", "chromium")
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile")}, args...)
	var out bytes.Buffer
	cmd := exec.Command(chromium, args...)
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("chromium did not finish in 60 s")
	}
	return out.Bytes()
}
