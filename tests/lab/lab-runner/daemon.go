package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	runnerv1 "gitea.dev/actions-proto-go/runner/v1"
	"github.com/sirupsen/logrus"
)

// Daemon polls the forge for tasks and runs up to runner.capacity of them at once.
type Daemon struct {
	cfg    *Config
	state  *State
	labels []Label
	client *Client

	running sync.WaitGroup
	active  atomic.Int32 // jobs running now
	slots   chan struct{}
}

func daemonCommand(args []string) error {
	fs := flag.NewFlagSet("daemon", flag.ExitOnError)
	configPath := fs.String("config", "", "config.yml in forgejo-runner's layout (see generate-config)")
	fs.StringVar(configPath, "c", "", "shorthand for --config")
	statePath := fs.String("state", "", "runner file (default runner.file)")
	interval := fs.Duration("interval", 0, "fetch interval (default runner.fetch_interval)")
	_ = fs.Parse(args)

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *statePath != "" {
		cfg.Runner.File = *statePath
	}
	if *interval > 0 {
		cfg.Runner.FetchInterval = Duration(*interval)
	}
	if level, err := logrus.ParseLevel(cfg.Log.Level); err == nil {
		logrus.SetLevel(level) // act's own messages outside job logs
	}
	d, err := NewDaemon(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return d.Run(ctx)
}

// NewDaemon reads the runner file; a daemon never registers, so a runner keeps one identity.
func NewDaemon(cfg *Config) (*Daemon, error) {
	s, err := ReadState(cfg.Runner.File)
	if err != nil {
		return nil, fmt.Errorf("%w (register first)", err)
	}
	labels, err := ParseLabels(s.Labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Runner.File, err)
	}
	if host := cfg.Container.DockerHost; !automaticDockerHost(host) {
		if err := os.Setenv("DOCKER_HOST", host); err != nil {
			return nil, err
		}
	}
	return &Daemon{
		cfg: cfg, state: s, labels: labels, client: NewClient(s),
		slots: make(chan struct{}, cfg.Runner.Capacity),
	}, nil
}

func labelNames(labels []Label) []string {
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i] = l.Name
	}
	return names
}

// Run fetches tasks until ctx ends, then drains: running jobs get runner.shutdown_timeout to finish,
// after which they are cancelled and reported cancelled.
func (d *Daemon) Run(ctx context.Context) error {
	log.Printf("%s: daemon for %s (uuid %s, id %d) at %s, capacity %d", runnerVersion(), d.state.Name,
		d.state.UUID, d.state.ID, d.state.Address, d.cfg.Runner.Capacity)
	jobsCtx, cancelJobs := context.WithCancelCause(context.Background())
	defer cancelJobs(nil)
	d.declare(ctx)
	d.poll(ctx, jobsCtx)
	return d.drain(cancelJobs)
}

func (d *Daemon) declare(ctx context.Context) {
	for ctx.Err() == nil {
		_, err := d.client.Declare(ctx, Request(d.client, &runnerv1.DeclareRequest{
			Version: runnerVersion(), Labels: labelNames(d.labels),
		}))
		switch {
		case err == nil:
			log.Printf("declared version %s, labels %v", runnerVersion(), d.state.Labels)
			return
		case connect.CodeOf(err) == connect.CodeUnimplemented:
			log.Printf("declare not supported by the forge, skipped")
			return
		case ctx.Err() == nil:
			log.Printf("declare: %v", err)
		}
		sleep(ctx, d.cfg.Runner.FetchInterval.Std())
	}
}

func (d *Daemon) poll(ctx, jobsCtx context.Context) {
	var tasksVersion int64
	for ctx.Err() == nil {
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		task, err := d.fetch(&tasksVersion)
		if task == nil {
			<-d.slots
			if err != nil && ctx.Err() == nil {
				log.Printf("fetch: %v", err)
			}
			sleep(ctx, d.cfg.Runner.FetchInterval.Std())
			continue
		}
		d.running.Add(1)
		d.active.Add(1)
		go func() {
			defer func() { <-d.slots; d.active.Add(-1); d.running.Done() }()
			d.runTask(jobsCtx, task)
		}()
	}
}

// fetch asks for a task. A SIGTERM does not abort it: a task the forge hands out in that moment is
// assigned to this runner already, and is run (and drained) rather than left to time out on the forge.
func (d *Daemon) fetch(tasksVersion *int64) (*runnerv1.Task, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := d.client.FetchTask(ctx, Request(d.client, &runnerv1.FetchTaskRequest{TasksVersion: *tasksVersion}))
	if err != nil {
		return nil, err
	}
	*tasksVersion = resp.Msg.TasksVersion
	if resp.Msg.Task != nil {
		// The forge answers "nothing new" to a fetch at an unchanged version, and taking a task does not
		// change it; without this reset a second free slot would wait for some other change.
		*tasksVersion = 0
	}
	return resp.Msg.Task, nil
}

func (d *Daemon) runTask(ctx context.Context, task *runnerv1.Task) {
	start := time.Now()
	job, err := NewJob(task, d.cfg, d.labels, d.client)
	if err != nil {
		log.Printf("task %d: %v", task.Id, err)
		rep := NewReporter(d.client, task.Id, 0, NewMasker(task.Secrets), false, func() {})
		rep.Logf("the lab runner cannot run this task: %v", err)
		rep.Close(runnerv1.Result_RESULT_FAILURE)
		return
	}
	log.Printf("task %d: job %s started", task.Id, job.jobID)
	result := job.Run(ctx)
	log.Printf("task %d: job %s ended %s after %.1f s", task.Id, job.jobID, result, time.Since(start).Seconds())
}

func (d *Daemon) drain(cancelJobs context.CancelCauseFunc) error {
	done := make(chan struct{})
	go func() { d.running.Wait(); close(done) }()
	timeout := d.cfg.Runner.ShutdownTimeout.Std()
	log.Printf("stopping: no new tasks; running jobs have %s to finish", timeout)
	if d.active.Load() == 0 {
		log.Printf("stopped: no job running")
		return nil
	}
	select {
	case <-done:
		log.Printf("stopped: running jobs finished")
		return nil
	case <-time.After(timeout):
	}
	log.Printf("shutdown timeout reached: cancelling running jobs")
	cancelJobs(errCancelled)
	<-done
	log.Printf("stopped: running jobs cancelled and reported")
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
