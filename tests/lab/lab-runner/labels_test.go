package main

import (
	"reflect"
	"testing"
)

func TestParseLabel(t *testing.T) {
	for in, want := range map[string]Label{
		"fenced":                          {Name: "fenced", Scheme: "host"},
		"lab-host:host":                   {Name: "lab-host", Scheme: "host"},
		" spaced:host ":                   {Name: "spaced", Scheme: "host"},
		"lab-docker:docker://lab/deb:1":   {Name: "lab-docker", Scheme: "docker", Image: "lab/deb:1"},
		"u:docker://reg:5000/img:tag":     {Name: "u", Scheme: "docker", Image: "reg:5000/img:tag"},
		"heavy:docker://node:20-bookworm": {Name: "heavy", Scheme: "docker", Image: "node:20-bookworm"},
	} {
		got, err := ParseLabel(in)
		if err != nil || got != want {
			t.Errorf("ParseLabel(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":host", "x:docker://", "x:lxc://img", "x:vm"} {
		if _, err := ParseLabel(bad); err == nil {
			t.Errorf("ParseLabel(%q): want an error", bad)
		}
	}
}

func TestSplitLabels(t *testing.T) {
	got := SplitLabels(" a:host, ,b:docker://img:1,")
	if want := []string{"a:host", "b:docker://img:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SplitLabels = %v, want %v", got, want)
	}
}

func TestPlatform(t *testing.T) {
	labels, err := ParseLabels([]string{"lab-host:host", "lab-docker:docker://lab/debian12:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		runsOn []string
		want   string
	}{
		{[]string{"lab-host"}, "-self-hosted"},
		{[]string{"lab-docker"}, "lab/debian12:1"},
		{[]string{"other", "lab-docker"}, "lab/debian12:1"},
		{[]string{"other"}, ""},
	} {
		if got := Platform(labels, c.runsOn); got != c.want {
			t.Errorf("Platform(%v) = %q, want %q", c.runsOn, got, c.want)
		}
	}
	if names := labelNames(labels); !reflect.DeepEqual(names, []string{"lab-host", "lab-docker"}) {
		t.Errorf("labelNames = %v", names)
	}
}
