// Command lab-runner is the lab's stand-in for forgejo-runner: it registers with a Forgejo or Gitea
// forge, takes tasks over the runner protocol and runs them with the act engine (gitea.com/gitea/act),
// on the host or in docker containers, with forgejo-runner's command line, .runner file and config.yml.
package main

import (
	"fmt"
	"log"
	"os"
)

const usage = `usage: lab-runner register --no-interactive --instance URL --token TOKEN [--name NAME] [--labels a,b] [--config FILE]
       lab-runner daemon [--config FILE]
       lab-runner generate-config
       lab-runner --version
(register also takes --url URL and --state FILE, daemon --state FILE and --interval D, as earlier lab runners did)`

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "register":
		err = registerCommand(os.Args[2:])
	case "daemon":
		err = daemonCommand(os.Args[2:])
	case "generate-config":
		fmt.Print(defaultConfig)
	case "version", "--version", "-v":
		fmt.Printf("lab-runner version %s (the foundation.runners lab runner, a stand-in for forgejo-runner)\n", runnerVersion())
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab-runner:", err)
		os.Exit(1)
	}
}
