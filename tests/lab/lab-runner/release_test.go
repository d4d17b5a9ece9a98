package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReleaseVersionFromTheTrailer(t *testing.T) {
	dir := t.TempDir()
	binary := make([]byte, 4096)
	plain := filepath.Join(dir, "plain")
	release := filepath.Join(dir, "release")
	if err := os.WriteFile(plain, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(release, append(binary, []byte("\nlab-runner-release=v99.1.0\n")...), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := releaseVersion(release); got != "v99.1.0" {
		t.Errorf("release: got %q", got)
	}
	if got := releaseVersion(plain); got != "lab-runner-"+version {
		t.Errorf("plain: got %q", got)
	}
	if got := releaseVersion(filepath.Join(dir, "missing")); got != "lab-runner-"+version {
		t.Errorf("missing: got %q", got)
	}
}
