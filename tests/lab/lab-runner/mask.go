package main

import (
	"sort"
	"strings"
)

// Masker hides secret values in log lines. A multi-line secret is hidden line by line as well, since
// a log line never holds more than one of its lines.
type Masker struct {
	values []string
}

// NewMasker masks the non-empty values, longest first so a secret containing another is hidden whole.
func NewMasker(secrets map[string]string) *Masker {
	m := &Masker{}
	for _, v := range secrets {
		m.Add(v)
	}
	return m
}

// Add masks one more value (and its lines).
func (m *Masker) Add(value string) {
	for _, v := range append([]string{value}, strings.Split(value, "\n")...) {
		if v = strings.TrimSpace(v); v != "" && !m.has(v) {
			m.values = append(m.values, v)
		}
	}
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
}

func (m *Masker) has(v string) bool {
	for _, have := range m.values {
		if have == v {
			return true
		}
	}
	return false
}

// Mask returns line with every secret replaced by ***, extra values included.
func (m *Masker) Mask(line string, extra []string) string {
	for _, v := range m.values {
		line = strings.ReplaceAll(line, v, "***")
	}
	for _, v := range extra {
		if v != "" {
			line = strings.ReplaceAll(line, v, "***")
		}
	}
	return line
}
