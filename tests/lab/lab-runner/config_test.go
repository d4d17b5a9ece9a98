package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsMatchGenerateConfig(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runner.File != ".runner" || cfg.Runner.Capacity != 1 || cfg.Runner.Timeout.Std() != 3*time.Hour {
		t.Errorf("defaults: file %q capacity %d timeout %s", cfg.Runner.File, cfg.Runner.Capacity, cfg.Runner.Timeout.Std())
	}
	if cfg.Runner.FetchInterval.Std() != 2*time.Second || cfg.Runner.ShutdownTimeout.Std() != 0 || cfg.Log.Level != "info" {
		t.Errorf("defaults: fetch %s shutdown %s level %q", cfg.Runner.FetchInterval.Std(), cfg.Runner.ShutdownTimeout.Std(), cfg.Log.Level)
	}
	if cfg.Container.ForcePull {
		t.Error("force_pull must default to false: the lab has no registry")
	}
}

func TestForgejoRunnerKeys(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `
log: {level: debug}
runner:
  file: /var/lib/runner/.runner
  capacity: 3
  timeout: 1h30m
  shutdown_timeout: 90s
  fetch_interval: 500ms
  fetch_timeout: 5s
  insecure: false
  labels: [fenced:host, lab-docker:docker://lab/debian12:1]
  envs: {A: "1"}
cache: {enabled: false}
container:
  network: host
  privileged: true
  docker_host: unix:///run/lab/docker.sock
  force_pull: false
host: {workdir_parent: /srv/work}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Runner
	if r.File != "/var/lib/runner/.runner" || r.Capacity != 3 || r.Timeout.Std() != 90*time.Minute ||
		r.ShutdownTimeout.Std() != 90*time.Second || r.FetchInterval.Std() != 500*time.Millisecond {
		t.Errorf("runner keys: %+v", r)
	}
	if len(r.Labels) != 2 || r.Envs["A"] != "1" || cfg.Log.Level != "debug" {
		t.Errorf("labels %v envs %v level %q", r.Labels, r.Envs, cfg.Log.Level)
	}
	c := cfg.Container
	if c.Network != "host" || !c.Privileged || c.DockerHost != "unix:///run/lab/docker.sock" || c.ForcePull {
		t.Errorf("container keys: %+v", c)
	}
	if cfg.Host.WorkdirParent != "/srv/work" {
		t.Errorf("host.workdir_parent: %q", cfg.Host.WorkdirParent)
	}
}

func TestDurationInSeconds(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "runner: {shutdown_timeout: 45}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runner.ShutdownTimeout.Std() != 45*time.Second {
		t.Errorf("45 reads as %s", cfg.Runner.ShutdownTimeout.Std())
	}
}

func TestBadConfigs(t *testing.T) {
	for text, want := range map[string]string{
		"runner: {capacity: 0}\n":                  "capacity must be at least 1",
		"runner: {timeout: soon}\n":                `"soon" is not a duration`,
		"runner: {fetch_interval: 0s}\n":           "fetch_interval must be positive",
		"runner: {shutdown_timeout: -1s}\n":        "must not be negative",
		"runner: {labels: ['x:vm://y']}\n":         "scheme must be host or docker",
		"log: {level: loud}\n":                     "log.level must be",
		"runner: [1, 2]\n":                         "cannot unmarshal",
		"runner: {file: ''}\n":                     "runner.file must not be empty",
		"container: {privileged: sometimes}\n":     "cannot unmarshal",
		"runner: {capacity: 0, timeout: -1s}\n":    "timeout must be positive",
		"runner: {labels: [':docker://image']}\n":  "empty name",
		"runner: {labels: ['a:docker://']}\n":      "needs an image",
		"runner: {fetch_interval: 1fortnight}\n":   "is not a duration",
		"runner: {shutdown_timeout: [1]}\n":        "is not a duration",
		"host: {workdir_parent: {a: b}}\n":         "cannot unmarshal",
		"runner: {envs: [a]}\n":                    "cannot unmarshal",
		"runner: {capacity: two}\n":                "cannot unmarshal",
		"log: {level: INFO}\n":                     "log.level must be",
		"runner: {labels: ['ok:host', 'x:ssh']}\n": "scheme must be host or docker",
	} {
		_, err := LoadConfig(writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error containing %q, got %v", text, want, err)
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.yml")); !os.IsNotExist(err) {
		t.Errorf("want a not-exist error, got %v", err)
	}
}
