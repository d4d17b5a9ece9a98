package main

import (
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"gitea.dev/actions-proto-go/runner/v1/runnerv1connect"
)

// version is set at build time from the hash of this source.
var version = "dev"

func runnerVersion() string { return "lab-runner-" + version }

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
