package main

import (
	"reflect"
	"testing"
)

func TestJobDaemonSocketFollowsForgejoRunner(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///run/dind/docker.sock")
	cases := map[string]string{
		"":                            "-",
		"-":                           "-",
		"automount":                   "unix:///run/dind/docker.sock",
		"unix:///var/run/docker.sock": "unix:///var/run/docker.sock",
	}
	for dockerHost, want := range cases {
		if got := jobDaemonSocket(dockerHost); got != want {
			t.Errorf("docker_host %q mounts %q, want %q", dockerHost, got, want)
		}
	}
	if !automaticDockerHost("automount") || automaticDockerHost("tcp://dind:2375") {
		t.Error("automount must leave DOCKER_HOST alone; an explicit host must set it")
	}
}

func TestSanitizeOptionsDropsWhatEscapes(t *testing.T) {
	kept, dropped := sanitizeOptions(`--pid=host --cap-add SYS_ADMIN --memory 1g -v /var/run/docker.sock:/s ` +
		`-v/:/host --security-opt apparmor=unconfined --privileged --env A="b c" --device=/dev/kmsg --mount type=bind,src=/,dst=/h`)
	if kept != `--memory 1g --env 'A=b c'` {
		t.Errorf("kept %q", kept)
	}
	want := []string{"--pid=host", "--cap-add SYS_ADMIN", "-v /var/run/docker.sock:/s", "-v/:/host",
		"--security-opt apparmor=unconfined", "--privileged", "--device=/dev/kmsg", "--mount type=bind,src=/,dst=/h"}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %q", dropped)
	}
}
