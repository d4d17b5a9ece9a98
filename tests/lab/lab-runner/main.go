// Command lab-runner is the lab runner: a minimal Forgejo/Gitea Actions runner that
// speaks the runner protocol (register, declare, fetch) so a forge sees it online.
// It runs no jobs: a task it is handed is reported back as failed at once.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	runnerv1 "code.gitea.io/actions-proto-go/runner/v1"
	"code.gitea.io/actions-proto-go/runner/v1/runnerv1connect"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// version is set at build time from the hash of this source.
var version = "dev"

// state is what register writes and daemon reads, in the spirit of a runner's .runner file.
type state struct {
	ID      int64    `json:"id"`
	UUID    string   `json:"uuid"`
	Name    string   `json:"name"`
	Token   string   `json:"token"`
	Address string   `json:"address"`
	Labels  []string `json:"labels"`
}

func runnerVersion() string { return "lab-runner-" + version }

func client(address string) runnerv1connect.RunnerServiceClient {
	httpClient := &http.Client{Timeout: 30 * time.Second}
	return runnerv1connect.NewRunnerServiceClient(httpClient, strings.TrimSuffix(address, "/")+"/api/actions")
}

// authenticated adds the runner's credentials to every request.
func authenticated[T any](s *state, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("x-runner-uuid", s.UUID)
	req.Header().Set("x-runner-token", s.Token)
	req.Header().Set("x-runner-version", runnerVersion())
	return req
}

func readState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.UUID == "" || s.Token == "" || s.Address == "" {
		return nil, fmt.Errorf("%s: uuid, token or address missing", path)
	}
	return &s, nil
}

func writeState(path string, s *state) error {
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

func splitLabels(labels string) []string {
	var out []string
	for _, label := range strings.Split(labels, ",") {
		if label = strings.TrimSpace(label); label != "" {
			out = append(out, label)
		}
	}
	return out
}

func register(args []string) error {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	address := fs.String("url", "", "forge URL, e.g. http://198.51.100.10:3000")
	token := fs.String("token", "", "registration token")
	name := fs.String("name", "", "runner name")
	labels := fs.String("labels", "", "comma-separated labels")
	statePath := fs.String("state", ".runner", "state file (reused when present)")
	_ = fs.Parse(args)

	if s, err := readState(*statePath); err == nil {
		fmt.Printf("registered already: %s (uuid %s, id %d)\n", s.Name, s.UUID, s.ID)
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if *address == "" || *token == "" || *name == "" {
		return errors.New("register needs --url, --token and --name")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client(*address).Register(ctx, connect.NewRequest(&runnerv1.RegisterRequest{
		Name:    *name,
		Token:   *token,
		Version: runnerVersion(),
		Labels:  splitLabels(*labels),
	}))
	if err != nil {
		return fmt.Errorf("register %s at %s: %w", *name, *address, err)
	}
	r := resp.Msg.Runner
	s := &state{ID: r.Id, UUID: r.Uuid, Name: r.Name, Token: r.Token, Address: *address, Labels: r.Labels}
	if err := writeState(*statePath, s); err != nil {
		return err
	}
	fmt.Printf("registered: %s (uuid %s, id %d)\n", s.Name, s.UUID, s.ID)
	return nil
}

// failTask reports a task the lab runner cannot run as failed, so it does not hang.
func failTask(ctx context.Context, c runnerv1connect.RunnerServiceClient, s *state, task *runnerv1.Task) {
	now := timestamppb.Now()
	_, err := c.UpdateTask(ctx, authenticated(s, &runnerv1.UpdateTaskRequest{
		State: &runnerv1.TaskState{Id: task.Id, Result: runnerv1.Result_RESULT_FAILURE, StartedAt: now, StoppedAt: now},
	}))
	if err != nil {
		log.Printf("task %d: reporting failure: %v", task.Id, err)
		return
	}
	log.Printf("task %d: reported as failed (the lab runner runs no jobs)", task.Id)
}

func daemon(args []string) error {
	fs := flag.NewFlagSet("daemon", flag.ExitOnError)
	statePath := fs.String("state", ".runner", "state file written by register")
	interval := fs.Duration("interval", 2*time.Second, "fetch interval")
	_ = fs.Parse(args)

	s, err := readState(*statePath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c := client(s.Address)

	declared := false
	var tasksVersion int64
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	log.Printf("%s: daemon for %s (uuid %s) at %s", runnerVersion(), s.Name, s.UUID, s.Address)
	for {
		if !declared {
			_, err := c.Declare(ctx, authenticated(s, &runnerv1.DeclareRequest{Version: runnerVersion(), Labels: s.Labels}))
			switch {
			case err == nil:
				declared = true
				log.Printf("declared version %s, labels %v", runnerVersion(), s.Labels)
			case connect.CodeOf(err) == connect.CodeUnimplemented:
				declared = true
				log.Printf("declare not supported by the forge, skipped")
			case ctx.Err() == nil:
				log.Printf("declare: %v", err)
			}
		}
		if declared {
			resp, err := c.FetchTask(ctx, authenticated(s, &runnerv1.FetchTaskRequest{TasksVersion: tasksVersion}))
			switch {
			case err == nil:
				tasksVersion = resp.Msg.TasksVersion
				if resp.Msg.Task != nil {
					failTask(ctx, c, s, resp.Msg.Task)
				}
			case ctx.Err() == nil:
				log.Printf("fetch: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			log.Printf("stopping")
			return nil
		case <-ticker.C:
		}
	}
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	usage := "usage: lab-runner register --url URL --token TOKEN --name NAME [--labels a,b] --state FILE\n" +
		"       lab-runner daemon --state FILE [--interval 2s]\n       lab-runner version"
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "register":
		err = register(os.Args[2:])
	case "daemon":
		err = daemon(os.Args[2:])
	case "version", "--version":
		fmt.Println(runnerVersion())
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab-runner:", err)
		os.Exit(1)
	}
}
