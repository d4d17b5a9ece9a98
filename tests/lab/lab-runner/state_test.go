package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRunnerFileLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", ".runner")
	s := &State{ID: 7, UUID: "u-1", Name: "r1", Token: "tok", Address: "http://forge:3000", Labels: []string{"a:host"}}
	if err := WriteState(path, s); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf(".runner mode %o, want 600: it holds the runner token", info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	for _, k := range []string{"id", "uuid", "name", "token", "address", "labels"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("forgejo-runner key %q missing from %s", k, data)
		}
	}
	if len(keys) != 6 || raw["id"] != float64(7) {
		t.Errorf("unexpected layout: %s", data)
	}
	back, err := ReadState(path)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestReadForgejoRunnerFile(t *testing.T) {
	// forgejo-runner writes a WARNING key too; it is ignored.
	path := filepath.Join(t.TempDir(), ".runner")
	text := `{"WARNING":"do not edit","id":3,"uuid":"abc","name":"n","token":"t","address":"http://f","labels":["x:host"]}`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadState(path)
	if err != nil || s.ID != 3 || s.Labels[0] != "x:host" {
		t.Errorf("%+v, %v", s, err)
	}
}

func TestIncompleteRunnerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".runner")
	_ = os.WriteFile(path, []byte(`{"id":1,"uuid":"u"}`), 0o600)
	if _, err := ReadState(path); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("want a missing-field error, got %v", err)
	}
	_ = os.WriteFile(path, []byte(`not json`), 0o600)
	if _, err := ReadState(path); err == nil {
		t.Error("want a JSON error")
	}
}

func TestRegisterRefusesWhenRegistered(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".runner")
	s := &State{ID: 9, UUID: "u", Name: "r", Token: "t", Address: "http://127.0.0.1:1"}
	if err := WriteState(path, s); err != nil {
		t.Fatal(err)
	}
	err := Register(path, "http://127.0.0.1:1", "tok", "r", nil)
	if !errors.Is(err, ErrAlreadyRegistered) || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("want an already-registered refusal, got %v", err)
	}
}

func TestMasker(t *testing.T) {
	m := NewMasker(map[string]string{"A": "hunter2", "B": "", "C": "line1\nline2"})
	got := m.Mask("pw hunter2, line2 and extra-x", []string{"extra-x", ""})
	if got != "pw ***, *** and ***" {
		t.Errorf("Mask = %q", got)
	}
}
