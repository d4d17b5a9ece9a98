package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"connectrpc.com/connect"
	runnerv1 "gitea.dev/actions-proto-go/runner/v1"
)

// ErrAlreadyRegistered is returned when the runner file exists: a second registration would leave a
// duplicate runner record on the forge.
var ErrAlreadyRegistered = errors.New("already registered")

func registerCommand(args []string) error {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	configPath := fs.String("config", "", "config.yml (runner.file says where .runner goes)")
	fs.StringVar(configPath, "c", "", "shorthand for --config")
	instance := fs.String("instance", "", "forge URL, e.g. http://198.51.100.10:3001")
	legacyURL := fs.String("url", "", "same as --instance")
	token := fs.String("token", "", "registration token")
	name := fs.String("name", "", "runner name (default the host name)")
	labels := fs.String("labels", "", "comma-separated labels NAME:host or NAME:docker://IMAGE (default runner.labels)")
	statePath := fs.String("state", "", "runner file (default runner.file)")
	_ = fs.Bool("no-interactive", false, "accepted for forgejo-runner compatibility; this runner never asks")
	_ = fs.Parse(args)

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	path := cfg.Runner.File
	if *statePath != "" {
		path = *statePath
	}
	address := *instance
	if address == "" {
		address = *legacyURL
	}
	labelList := SplitLabels(*labels)
	if len(labelList) == 0 {
		labelList = cfg.Runner.Labels
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	return Register(path, address, *token, *name, labelList)
}

// Register registers a runner and writes its .runner file, refusing when the file exists.
func Register(path, address, token, name string, labels []string) error {
	if s, err := ReadState(path); err == nil {
		return fmt.Errorf("runner %s is %w (uuid %s, id %d) in %s; remove that file to register a new runner",
			s.Name, ErrAlreadyRegistered, s.UUID, s.ID, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if address == "" || token == "" {
		return errors.New("register needs --instance and --token")
	}
	parsed, err := ParseLabels(labels)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := newServiceClient(address).Register(ctx, connect.NewRequest(&runnerv1.RegisterRequest{
		Name: name, Token: token, Version: runnerVersion(), Labels: labelNames(parsed),
	}))
	if err != nil {
		return fmt.Errorf("register %s at %s: %w", name, address, err)
	}
	r := resp.Msg.Runner
	s := &State{ID: r.Id, UUID: r.Uuid, Name: r.Name, Token: r.Token, Address: address, Labels: labels}
	if err := WriteState(path, s); err != nil {
		return err
	}
	fmt.Printf("registered: %s (uuid %s, id %d)\n", s.Name, s.UUID, s.ID)
	return nil
}
