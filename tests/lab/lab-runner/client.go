package main

import (
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"gitea.dev/actions-proto-go/runner/v1/runnerv1connect"
)

// version is set at build time from the hash of this source.
var version = "dev"

// releaseMarker starts the trailer of a lab "release": the lab runner with "\nlab-runner-release=VERSION\n"
// appended (tests/lab/mirror stages one), which reports VERSION. An executable ignores bytes after its sections,
// so two releases of the lab runner are two files that differ in their trailer only, and in their checksum.
const releaseMarker = "\nlab-runner-release="

var reportedVersion = releaseVersion(executable())

func runnerVersion() string { return reportedVersion }

func executable() string {
	path, err := os.Executable()
	if err != nil {
		return ""
	}
	return path
}

// releaseVersion is the version in the trailer of the file at path, or the build's own without one.
func releaseVersion(path string) string {
	own := "lab-runner-" + version
	f, err := os.Open(path)
	if err != nil {
		return own
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() < 64 {
		return own
	}
	tail := make([]byte, 64)
	if _, err := f.ReadAt(tail, info.Size()-64); err != nil {
		return own
	}
	text := strings.TrimSuffix(string(tail), "\n")
	i := strings.LastIndex(text, releaseMarker)
	if i < 0 || strings.Contains(text[i+len(releaseMarker):], "\n") {
		return own
	}
	return text[i+len(releaseMarker):]
}

// Client is the runner-protocol client of one registered runner.
type Client struct {
	runnerv1connect.RunnerServiceClient
	state *State
}

func newServiceClient(address string) runnerv1connect.RunnerServiceClient {
	httpClient := &http.Client{Timeout: 60 * time.Second}
	return runnerv1connect.NewRunnerServiceClient(httpClient, strings.TrimSuffix(address, "/")+"/api/actions")
}

// NewClient speaks for the runner in s.
func NewClient(s *State) *Client {
	return &Client{RunnerServiceClient: newServiceClient(s.Address), state: s}
}

// Request wraps msg with the runner's credentials.
func Request[T any](c *Client, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("x-runner-uuid", c.state.UUID)
	req.Header().Set("x-runner-token", c.state.Token)
	req.Header().Set("x-runner-version", runnerVersion())
	return req
}
