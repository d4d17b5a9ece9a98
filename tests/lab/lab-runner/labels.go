package main

import (
	"fmt"
	"strings"
)

// Label is one runner label: jobs whose runs-on names it run on the host or in a container from Image.
type Label struct {
	Name   string
	Scheme string // "host" or "docker"
	Image  string // docker only
}

// ParseLabel reads NAME, NAME:host or NAME:docker://IMAGE (a bare NAME runs on the host).
func ParseLabel(s string) (Label, error) {
	name, rest, found := strings.Cut(strings.TrimSpace(s), ":")
	if name == "" {
		return Label{}, fmt.Errorf("label %q: empty name", s)
	}
	if !found || rest == "host" {
		return Label{Name: name, Scheme: "host"}, nil
	}
	image, ok := strings.CutPrefix(rest, "docker://")
	if !ok {
		return Label{}, fmt.Errorf("label %q: the scheme must be host or docker://IMAGE", s)
	}
	if image == "" {
		return Label{}, fmt.Errorf("label %q: docker:// needs an image", s)
	}
	return Label{Name: name, Scheme: "docker", Image: image}, nil
}

// ParseLabels reads a list of labels, stopping at the first bad one.
func ParseLabels(list []string) ([]Label, error) {
	out := make([]Label, 0, len(list))
	for _, s := range list {
		l, err := ParseLabel(s)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// SplitLabels splits a comma-separated --labels value, dropping blanks.
func SplitLabels(labels string) []string {
	var out []string
	for _, label := range strings.Split(labels, ",") {
		if label = strings.TrimSpace(label); label != "" {
			out = append(out, label)
		}
	}
	return out
}

// Platform is what act runs a job on for its runs-on names: "-self-hosted" for the host, an image for
// docker, or "" when no label of this runner matches.
func Platform(labels []Label, runsOn []string) string {
	for _, want := range runsOn {
		for _, l := range labels {
			if l.Name != want {
				continue
			}
			if l.Scheme == "docker" {
				return l.Image
			}
			return "-self-hosted"
		}
	}
	return ""
}
