package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v4"
)

// Duration reads forgejo-runner's durations: Go duration strings ("90s", "3h") or whole seconds.
type Duration time.Duration

// UnmarshalYAML accepts "1m30s" or a number of seconds.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if secs, err := strconv.ParseFloat(node.Value, 64); err == nil && node.Tag != "!!str" {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	parsed, err := time.ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 90s or 3h)", node.Line, node.Value)
	}
	*d = Duration(parsed)
	return nil
}

// Std is the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Config holds the forgejo-runner config.yml keys this runner honours; other keys are accepted and ignored.
type Config struct {
	Log struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
	Runner struct {
		File            string            `yaml:"file"`
		Capacity        int               `yaml:"capacity"`
		Timeout         Duration          `yaml:"timeout"`
		ShutdownTimeout Duration          `yaml:"shutdown_timeout"`
		FetchInterval   Duration          `yaml:"fetch_interval"`
		Labels          []string          `yaml:"labels"`
		Envs            map[string]string `yaml:"envs"`
	} `yaml:"runner"`
	Container struct {
		Network      string   `yaml:"network"`
		Privileged   bool     `yaml:"privileged"`
		DockerHost   string   `yaml:"docker_host"`
		ForcePull    bool     `yaml:"force_pull"`
		ValidVolumes []string `yaml:"valid_volumes"`
	} `yaml:"container"`
	Host struct {
		WorkdirParent string `yaml:"workdir_parent"`
	} `yaml:"host"`
}

// defaultConfig is what generate-config prints and what a missing key falls back to.
const defaultConfig = `# Lab runner configuration, in forgejo-runner's config.yml layout.
log:
  # debug, info, warn or error
  level: info

runner:
  # where register writes the runner's credentials
  file: .runner
  # how many tasks run at the same time
  capacity: 1
  # a job running longer is cancelled and fails
  timeout: 3h
  # on SIGTERM, how long running jobs may finish before they are cancelled
  shutdown_timeout: 0s
  # how often to ask the forge for a task
  fetch_interval: 2s
  # labels used when register is given none: NAME:host or NAME:docker://IMAGE
  labels: []
  # extra environment variables for every job
  envs: {}

container:
  # network of job containers: empty for a network per job, or host, none, bridge, a network name
  network: ""
  privileged: false
  # the docker daemon: empty to detect it, "-" to not mount it into jobs, or unix:///path
  docker_host: ""
  # pull images even when present
  force_pull: false

host:
  # where host jobs get their working directories (default $HOME/.cache/act)
  workdir_parent: ""
`

// LoadConfig reads path over the defaults; an empty path gives the defaults alone.
func LoadConfig(path string) (*Config, error) {
	cfg := &Config{}
	if err := yaml.Unmarshal([]byte(defaultConfig), cfg); err != nil {
		return nil, fmt.Errorf("built-in defaults: %w", err)
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(data, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.Runner.Capacity < 1 {
		errs = append(errs, fmt.Errorf("runner.capacity must be at least 1, not %d", c.Runner.Capacity))
	}
	if c.Runner.FetchInterval.Std() <= 0 {
		errs = append(errs, errors.New("runner.fetch_interval must be positive"))
	}
	if c.Runner.Timeout.Std() <= 0 {
		errs = append(errs, errors.New("runner.timeout must be positive"))
	}
	if c.Runner.ShutdownTimeout.Std() < 0 {
		errs = append(errs, errors.New("runner.shutdown_timeout must not be negative"))
	}
	if c.Runner.File == "" {
		errs = append(errs, errors.New("runner.file must not be empty"))
	}
	for _, l := range c.Runner.Labels {
		if _, err := ParseLabel(l); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level must be trace, debug, info, warn or error, not %q", c.Log.Level))
	}
	return errors.Join(errs...)
}
