package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	runnerv1 "gitea.dev/actions-proto-go/runner/v1"
	"github.com/nektos/act/pkg/runner"
	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Reporter is a logrus hook on the act job logger: it turns log entries into log rows and step states,
// and streams both to the forge (UpdateLog, UpdateTask) until Close.
type Reporter struct {
	client   *Client
	masker   *Masker
	verbose  bool
	onCancel func() // called when the forge says the task was cancelled

	mu          sync.Mutex
	state       *runnerv1.TaskState
	rows        []*runnerv1.LogRow
	logOffset   int64 // rows before this index are acknowledged by the forge
	outputs     map[string]string
	sentOutputs map[string]bool
	jobResult   string
}

// NewReporter reports task taskID, whose job has stepCount steps.
func NewReporter(c *Client, taskID int64, stepCount int, masker *Masker, verbose bool, onCancel func()) *Reporter {
	steps := make([]*runnerv1.StepState, stepCount)
	for i := range steps {
		steps[i] = &runnerv1.StepState{Id: int64(i)}
	}
	return &Reporter{
		client: c, masker: masker, verbose: verbose, onCancel: onCancel,
		state:       &runnerv1.TaskState{Id: taskID, StartedAt: timestamppb.Now(), Steps: steps},
		outputs:     map[string]string{},
		sentOutputs: map[string]bool{},
	}
}

// Levels: every level, so that debug-level step results (skipped steps) are seen too.
func (r *Reporter) Levels() []logrus.Level { return logrus.AllLevels }

// Fire records one act log entry.
func (r *Reporter) Fire(entry *logrus.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if result, ok := entry.Data["jobResult"].(string); ok {
		r.jobResult = result
	}
	step := r.mainStep(entry)
	if step != nil && step.StartedAt == nil {
		step.StartedAt = timestamppb.New(entry.Time)
		step.LogIndex = int64(len(r.rows))
	}
	if result, ok := entry.Data["stepResult"]; ok && step != nil {
		step.Result = resultOf(fmt.Sprint(result))
		step.StoppedAt = timestamppb.New(entry.Time)
	}
	if entry.Level > logrus.InfoLevel && !r.verbose {
		return nil
	}
	var masks []string
	if entry.Context != nil {
		masks = *runner.Masks(entry.Context)
	}
	for _, line := range strings.Split(strings.TrimRight(entry.Message, "\r\n"), "\n") {
		r.rows = append(r.rows, &runnerv1.LogRow{
			Time: timestamppb.New(entry.Time), Content: r.masker.Mask(strings.TrimRight(line, "\r"), masks),
		})
	}
	if step != nil {
		step.LogLength = int64(len(r.rows)) - step.LogIndex
	}
	return nil
}

// mainStep is the step an entry of a main step stage belongs to, or nil (set-up, pre and post lines).
func (r *Reporter) mainStep(entry *logrus.Entry) *runnerv1.StepState {
	if stage, _ := entry.Data["stage"].(string); stage != "Main" {
		return nil
	}
	n, ok := entry.Data["stepNumber"].(int)
	if !ok || n < 0 || n >= len(r.state.Steps) {
		return nil
	}
	return r.state.Steps[n]
}

func resultOf(s string) runnerv1.Result {
	switch s {
	case "success":
		return runnerv1.Result_RESULT_SUCCESS
	case "skipped":
		return runnerv1.Result_RESULT_SKIPPED
	case "cancelled":
		return runnerv1.Result_RESULT_CANCELLED
	default:
		return runnerv1.Result_RESULT_FAILURE
	}
}

// Logf adds a runner line (not from act) to the job log.
func (r *Reporter) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, &runnerv1.LogRow{Time: timestamppb.Now(), Content: r.masker.Mask(fmt.Sprintf(format, args...), nil)})
}

// JobResult is the result act logged for the job ("success", "failure"), or "".
func (r *Reporter) JobResult() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobResult
}

// SetOutputs records the job's outputs, sent with the next task update.
func (r *Reporter) SetOutputs(outputs map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range outputs {
		r.outputs[k] = v
	}
}

// Run streams every interval until ctx ends.
func (r *Reporter) Run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			_ = r.flushLog(ctx, false)
			_ = r.flushState(ctx)
		}
	}
}

func (r *Reporter) flushLog(ctx context.Context, noMore bool) error {
	r.mu.Lock()
	rows := r.rows[r.logOffset:]
	req := &runnerv1.UpdateLogRequest{TaskId: r.state.Id, Index: r.logOffset, Rows: rows, NoMore: noMore}
	r.mu.Unlock()
	if len(rows) == 0 && !noMore {
		return nil
	}
	resp, err := r.client.UpdateLog(ctx, Request(r.client, req))
	if err != nil {
		return fmt.Errorf("update log of task %d: %w", req.TaskId, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logOffset = resp.Msg.AckIndex
	if r.logOffset < int64(len(r.rows)) && noMore {
		return fmt.Errorf("update log of task %d: forge acknowledged %d of %d rows", req.TaskId, r.logOffset, len(r.rows))
	}
	return nil
}

func (r *Reporter) flushState(ctx context.Context) error {
	r.mu.Lock()
	state, _ := proto.Clone(r.state).(*runnerv1.TaskState)
	outputs := map[string]string{}
	for k, v := range r.outputs {
		if !r.sentOutputs[k] {
			outputs[k] = v
		}
	}
	r.mu.Unlock()
	resp, err := r.client.UpdateTask(ctx, Request(r.client, &runnerv1.UpdateTaskRequest{State: state, Outputs: outputs}))
	if err != nil {
		return fmt.Errorf("update task %d: %w", state.Id, err)
	}
	r.mu.Lock()
	for _, k := range resp.Msg.SentOutputs {
		r.sentOutputs[k] = true
	}
	r.mu.Unlock()
	if resp.Msg.State != nil && resp.Msg.State.Result == runnerv1.Result_RESULT_CANCELLED && state.Result == runnerv1.Result_RESULT_UNSPECIFIED {
		r.onCancel()
	}
	return nil
}

// Close sets the final result, settles the steps that never finished, and sends everything, retrying
// for up to a minute so a forge that blinks still learns the result.
func (r *Reporter) Close(result runnerv1.Result) {
	r.mu.Lock()
	r.state.Result = result
	r.state.StoppedAt = timestamppb.Now()
	for _, step := range r.state.Steps {
		if step.Result != runnerv1.Result_RESULT_UNSPECIFIED {
			continue
		}
		step.Result = runnerv1.Result_RESULT_SKIPPED
		if step.StartedAt != nil || result == runnerv1.Result_RESULT_CANCELLED {
			step.Result = result
		}
		if step.StartedAt != nil {
			step.StoppedAt = r.state.StoppedAt
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logErr, stateErr error = errPending, errPending
	for ctx.Err() == nil {
		if logErr != nil {
			logErr = r.flushLog(ctx, true)
		}
		if logErr == nil {
			if stateErr = r.flushState(ctx); stateErr == nil {
				return
			}
		}
		log.Printf("task %d: final report: %v", r.state.Id, errorsOf(logErr, stateErr))
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	log.Printf("task %d: gave up reporting the result %s", r.state.Id, result)
}

var errPending = fmt.Errorf("not sent yet")

func errorsOf(errs ...error) error {
	for _, err := range errs {
		if err != nil && err != errPending {
			return err
		}
	}
	return errPending
}
