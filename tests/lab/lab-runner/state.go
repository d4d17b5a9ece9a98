package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// State is the .runner file, in forgejo-runner's JSON layout.
type State struct {
	ID      int64    `json:"id"`
	UUID    string   `json:"uuid"`
	Name    string   `json:"name"`
	Token   string   `json:"token"`
	Address string   `json:"address"`
	Labels  []string `json:"labels"`
}

// ReadState reads a .runner file; a missing file gives an error that satisfies os.IsNotExist.
func ReadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.UUID == "" || s.Token == "" || s.Address == "" {
		return nil, fmt.Errorf("%s: uuid, token or address missing", path)
	}
	return &s, nil
}

// WriteState writes the file atomically, readable by its owner only (it holds the runner token).
func WriteState(path string, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
