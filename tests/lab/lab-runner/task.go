package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	runnerv1 "gitea.dev/actions-proto-go/runner/v1"
	docker_container "github.com/docker/docker/api/types/container"
	"github.com/nektos/act/pkg/common"
	"github.com/nektos/act/pkg/model"
	"github.com/nektos/act/pkg/runner"
	"github.com/sirupsen/logrus"
)

// errCancelled is the cause of a job context cancelled by the forge or by shutdown.
var errCancelled = errors.New("cancelled")

// Job is one task taken from the forge, run by act.
type Job struct {
	task     *runnerv1.Task
	cfg      *Config
	labels   []Label
	client   *Client
	workflow *model.Workflow
	jobID    string
}

// NewJob reads the task's single-job workflow and attaches the results and outputs of its needs.
func NewJob(task *runnerv1.Task, cfg *Config, labels []Label, c *Client) (*Job, error) {
	wf, err := model.ReadWorkflow(bytes.NewReader(task.WorkflowPayload))
	if err != nil {
		return nil, fmt.Errorf("task %d: workflow payload: %w", task.Id, err)
	}
	ids := wf.GetJobIDs()
	if len(ids) != 1 {
		return nil, fmt.Errorf("task %d: the payload has %d jobs, not one", task.Id, len(ids))
	}
	jobID := ids[0]
	if len(task.Needs) > 0 {
		needs := make([]string, 0, len(task.Needs))
		for id, need := range task.Needs {
			needs = append(needs, id)
			wf.Jobs[id] = &model.Job{
				Outputs: need.Outputs,
				Result:  strings.ToLower(strings.TrimPrefix(need.Result.String(), "RESULT_")),
			}
		}
		sort.Strings(needs)
		if err := wf.Jobs[jobID].RawNeeds.Encode(needs); err != nil {
			return nil, fmt.Errorf("task %d: needs: %w", task.Id, err)
		}
	}
	return &Job{task: task, cfg: cfg, labels: labels, client: c, workflow: wf, jobID: jobID}, nil
}

// StepCount is the number of steps the forge shows for the job.
func (j *Job) StepCount() int { return len(j.workflow.Jobs[j.jobID].Steps) }

// Run runs the job and reports it; ctx's cancellation (with cause errCancelled) cancels it.
func (j *Job) Run(ctx context.Context) runnerv1.Result {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rep := NewReporter(j.client, j.task.Id, j.StepCount(), NewMasker(j.task.Secrets),
		j.cfg.Log.Level == "debug" || j.cfg.Log.Level == "trace", func() { cancel(errCancelled) })
	streamCtx, stopStream := context.WithCancel(context.Background())
	streamed := make(chan struct{})
	go func() { rep.Run(streamCtx, time.Second); close(streamed) }()

	jobCtx, stopJob := context.WithTimeoutCause(ctx, j.cfg.Runner.Timeout.Std(), context.DeadlineExceeded)
	defer stopJob()
	err := j.execute(jobCtx, rep)
	result := j.result(jobCtx, rep, err)
	stopStream()
	<-streamed // the final report must not race a periodic one
	rep.Close(result)
	return result
}

func (j *Job) result(ctx context.Context, rep *Reporter, err error) runnerv1.Result {
	switch {
	case errors.Is(context.Cause(ctx), errCancelled):
		rep.Logf("the job was cancelled")
		return runnerv1.Result_RESULT_CANCELLED
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		rep.Logf("the job exceeded runner.timeout (%s) and was stopped", j.cfg.Runner.Timeout.Std())
		return runnerv1.Result_RESULT_FAILURE
	case err != nil:
		rep.Logf("the job failed: %v", err)
		return runnerv1.Result_RESULT_FAILURE
	case rep.JobResult() == "":
		rep.Logf("the job ended without a result")
		return runnerv1.Result_RESULT_FAILURE
	}
	return resultOf(rep.JobResult())
}

// execute runs the job with act, with its log going to rep.
func (j *Job) execute(ctx context.Context, rep *Reporter) error {
	github, eventJSON, err := j.githubContext()
	if err != nil {
		return err
	}
	workdirParent := j.cfg.Host.WorkdirParent
	if workdirParent == "" {
		home, _ := os.UserHomeDir()
		workdirParent = filepath.Join(home, ".cache", "act")
	}
	taskDir := filepath.Join(workdirParent, fmt.Sprint(j.task.Id))
	defer os.RemoveAll(taskDir)
	workdir := filepath.Join(taskDir, "workspace", github.Repository)
	platform := Platform(j.labels, j.workflow.Jobs[j.jobID].RunsOn())
	if platform != "-self-hosted" {
		workdir = "/workspace/" + github.Repository
	}
	rep.Logf("%s runs task %d (job %s) on %s", runnerVersion(), j.task.Id, j.jobID, describePlatform(platform))

	level := logrus.DebugLevel
	socket := jobDaemonSocket(j.cfg.Container.DockerHost)
	if !j.cfg.Container.Privileged {
		for _, dropped := range j.confineContainers() {
			rep.Logf("privileged is off: the option %s of the workflow is ignored", dropped)
		}
	}
	config := &runner.Config{
		Workdir:               workdir,
		ActionCacheDir:        filepath.Join(taskDir, "actions"),
		BindWorkdir:           false,
		ReuseContainers:       false,
		ForcePull:             j.cfg.Container.ForcePull,
		LogOutput:             true,
		Env:                   j.cfg.Runner.Envs,
		Secrets:               j.task.Secrets,
		Vars:                  j.task.Vars,
		Privileged:            j.cfg.Container.Privileged,
		ValidVolumes:          j.cfg.Container.ValidVolumes,
		ContainerDaemonSocket: socket,
		ContainerNetworkMode:  docker_container.NetworkMode(j.cfg.Container.Network),
		GitHubInstance:        strings.TrimPrefix(strings.TrimPrefix(github.ServerURL, "https://"), "http://"),
		DefaultActionInstance: github.ServerURL,
		AutoRemove:            true,
		NoSkipCheckout:        true,
		PresetGitHubContext:   github,
		EventJSON:             eventJSON,
		ContainerNamePrefix:   fmt.Sprintf("FORGEJO-ACTIONS-TASK-%d", j.task.Id), // as forgejo-runner names them
		ContainerMaxLifetime:  j.cfg.Runner.Timeout.Std(),
		PlatformPicker:        func([]string) string { return platform },
		JobLoggerLevel:        &level,
		MaxParallel:           1,
	}
	r, err := runner.New(config)
	if err != nil {
		return fmt.Errorf("act: %w", err)
	}
	plan := &model.Plan{Stages: []*model.Stage{{Runs: []*model.Run{{Workflow: j.workflow, JobID: j.jobID}}}}}
	ctx = common.WithLoggerHook(ctx, rep)
	ctx = runner.WithJobLoggerFactory(ctx, quietLoggers{})
	err = r.NewPlanExecutor(plan)(ctx)
	rep.SetOutputs(j.workflow.Jobs[j.jobID].Outputs)
	return err
}

// githubContext is the task's github context, and its event as JSON.
func (j *Job) githubContext() (*model.GithubContext, string, error) {
	github := &model.GithubContext{}
	event := "{}"
	if j.task.Context == nil {
		return github, event, nil
	}
	data, err := json.Marshal(j.task.Context.AsMap())
	if err != nil {
		return nil, "", fmt.Errorf("task %d: github context: %w", j.task.Id, err)
	}
	if err := json.Unmarshal(data, github); err != nil {
		return nil, "", fmt.Errorf("task %d: github context: %w", j.task.Id, err)
	}
	if github.Event != nil {
		raw, err := json.Marshal(github.Event)
		if err != nil {
			return nil, "", fmt.Errorf("task %d: event: %w", j.task.Id, err)
		}
		event = string(raw)
	}
	return github, event, nil
}

func describePlatform(platform string) string {
	switch platform {
	case "-self-hosted":
		return "the host"
	case "":
		return "nothing: no label of this runner matches runs-on"
	}
	return "a container from image " + platform
}

// quietLoggers gives act job loggers that print nothing themselves: the Reporter hook takes every entry.
type quietLoggers struct{}

func (quietLoggers) WithJobLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
