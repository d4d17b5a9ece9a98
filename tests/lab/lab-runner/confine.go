package main

import (
	"os"
	"strings"

	"github.com/kballard/go-shellquote"
	"go.yaml.in/yaml/v4"
)

// automaticDockerHost reports whether docker_host leaves the daemon to be found (DOCKER_HOST, then the
// default socket) rather than naming it: forgejo-runner's "" and "-", and "automount".
func automaticDockerHost(dockerHost string) bool {
	return dockerHost == "" || dockerHost == "-" || dockerHost == "automount"
}

// jobDaemonSocket is the daemon socket act mounts into job containers, with forgejo-runner's meanings of
// docker_host: "" and "-" mount none, "automount" mounts the daemon the runner uses, any other value is the
// daemon to use, mounted as well.
func jobDaemonSocket(dockerHost string) string {
	switch dockerHost {
	case "", "-":
		return "-"
	case "automount":
		if host := os.Getenv("DOCKER_HOST"); host != "" {
			return host
		}
		return "unix:///var/run/docker.sock"
	}
	return dockerHost
}

// escapeOptions are the docker run options that reach past the job's own container (host namespaces,
// capabilities, devices, mounts); with privileged off they are dropped from a workflow's options.
var escapeOptions = map[string]bool{
	"--privileged": false, "--pid": true, "--ipc": true, "--uts": true, "--userns": true, "--cgroupns": true,
	"--cap-add": true, "--security-opt": true, "--device": true, "--device-cgroup-rule": true,
	"--volume": true, "-v": true, "--mount": true, "--volumes-from": true, "--tmpfs": true, "--sysctl": true,
	"--group-add": true, "--runtime": true, "--cgroup-parent": true,
}

// sanitizeOptions returns options without the escape options (and their values), and what it dropped.
func sanitizeOptions(options string) (string, []string) {
	words, err := shellquote.Split(options)
	if err != nil {
		return "", []string{options}
	}
	var kept, dropped []string
	for i := 0; i < len(words); i++ {
		name, _, inline := strings.Cut(words[i], "=")
		takesValue, escapes := escapeOptions[name]
		if !escapes && strings.HasPrefix(name, "-v") && !strings.HasPrefix(name, "--") && len(name) > 2 {
			escapes = true // -v/host:/container
		}
		if !escapes {
			kept = append(kept, words[i])
			continue
		}
		if takesValue && !inline && i+1 < len(words) {
			dropped = append(dropped, words[i]+" "+words[i+1])
			i++
			continue
		}
		dropped = append(dropped, words[i])
	}
	return shellquote.Join(kept...), dropped
}

// confineContainers drops the escape options of the job's container and its services, as forgejo-runner
// does when privileged is off, and returns what it dropped.
func (j *Job) confineContainers() []string {
	job := j.workflow.Jobs[j.jobID]
	var dropped []string
	if job.RawContainer.Kind == yaml.MappingNode {
		content := job.RawContainer.Content
		for i := 0; i+1 < len(content); i += 2 {
			if content[i].Value == "options" {
				var gone []string
				content[i+1].Value, gone = sanitizeOptions(content[i+1].Value)
				dropped = append(dropped, gone...)
			}
		}
	}
	for _, service := range job.Services {
		var gone []string
		service.Options, gone = sanitizeOptions(service.Options)
		dropped = append(dropped, gone...)
	}
	return dropped
}
