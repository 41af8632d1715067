package cairn

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// Durable runs. A run executes a graph on a thread. StartRun queues it; a
// worker ClaimRuns it and holds it under a RunLease, Heartbeats while
// working, passes the lease to Save (WithRunLease) and PutWrites
// (TaskWrites.RunLease) so that those writes are fenced, and ends the run with
// CompleteRun or FailRun. A call under a lease that may not go on fails with
// an *Error matching ErrRunStopped (and ErrLeaseLost, ErrRunCancelled or
// ErrRunTimedOut): stop working on the run, nothing was stored.

// RunStatus is where a run is in its life.
type RunStatus int32

const (
	RunPending     = RunStatus(cairnv1.RunStatus_RUN_STATUS_PENDING)     // waiting for a worker
	RunRunning     = RunStatus(cairnv1.RunStatus_RUN_STATUS_RUNNING)     // held by a worker under a lease
	RunInterrupted = RunStatus(cairnv1.RunStatus_RUN_STATUS_INTERRUPTED) // waiting for a human
	RunCompleted   = RunStatus(cairnv1.RunStatus_RUN_STATUS_COMPLETED)   // final
	RunFailed      = RunStatus(cairnv1.RunStatus_RUN_STATUS_FAILED)      // final
	RunCancelled   = RunStatus(cairnv1.RunStatus_RUN_STATUS_CANCELLED)   // final
)

// String is the status name without its prefix: "PENDING", "RUNNING", ...
func (s RunStatus) String() string {
	return strings.TrimPrefix(cairnv1.RunStatus(s).String(), "RUN_STATUS_")
}

// Final reports whether the run will not change again (COMPLETED, FAILED or CANCELLED).
func (s RunStatus) Final() bool { return s == RunCompleted || s == RunFailed || s == RunCancelled }

// RetryPolicy says how the server retries a run whose attempt failed with a
// retryable error (FailRun). Zero fields take the server's defaults.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included (0 or 1: no retry).
	MaxAttempts int32
	// InitialBackoff is the wait before the first retry (0: 1s).
	InitialBackoff time.Duration
	// BackoffCoefficient multiplies the wait for each further retry (0: 2.0).
	BackoffCoefficient float64
	// MaxBackoff caps the wait (0: 100 x InitialBackoff).
	MaxBackoff time.Duration
	// MaxRecoveries is how often the run may be taken over after its worker
	// stopped heartbeating before it is FAILED (0: no limit).
	MaxRecoveries int32
}

// RunLease is a worker's claim on a run: pass it to Heartbeat, fenced writes,
// CompleteRun and FailRun.
type RunLease struct {
	RunID     string
	Epoch     int64  // 1 for the first claim, +1 for each claim after
	Token     string // opaque secret of this claim
	ExpiresAt time.Time
}

// RunError says why an attempt or a run failed.
type RunError struct {
	// Reason is set by the server: ERROR (reported by a worker),
	// EXECUTION_TIMEOUT, LEASE_EXPIRED, RECOVERIES_EXHAUSTED or CANCELLED.
	Reason    string
	Type      string // the error's type in the worker's language
	Message   string
	Retryable bool
}

// RunAttempt is one claim of a run by a worker.
type RunAttempt struct {
	Number    int32
	WorkerID  string
	Status    RunStatus // RUNNING while it goes on
	StartedAt time.Time
	EndedAt   time.Time // zero while it goes on
	Error     *RunError
	Recovered bool // it took over an abandoned run
}

// Run is a run as the server keeps it (proto message Run).
type Run struct {
	RunID, ThreadID, Queue string
	Status                 RunStatus
	Input                  []byte
	InputType              string
	Metadata               map[string]any
	RetryPolicy            RetryPolicy
	ExecutionTimeout       time.Duration // 0: none
	CreatedAt, StartedAt   time.Time
	UpdatedAt, EndedAt     time.Time
	AttemptCount           int32
	FailedAttemptCount     int32
	RecoveryCount          int32
	CancelRequested        bool
	WorkerID               string
	LeaseEpoch             int64
	LeaseExpiresAt         time.Time
	NotBefore              time.Time
	Error                  *RunError
	Output                 []byte
	OutputType             string
	CheckpointID           string       // the thread's head when the run ended
	Attempts               []RunAttempt // GetRun only, oldest first
}

// Claim is a claimed run and the lease to work on it under.
type Claim struct {
	Run       *Run
	Lease     *RunLease
	Recovered bool // the run was abandoned by another worker: resume it
}

// RunSpec describes a run to start.
type RunSpec struct {
	ThreadID string // required; must have no PENDING or RUNNING run
	Queue    string // "" is "default"
	// RunID makes a retried StartRun idempotent ("": the server makes one).
	RunID string
	Input []byte
	// InputType tags Input ("" is "json" when Input is set).
	InputType        string
	Metadata         map[string]any
	Retry            *RetryPolicy // nil: one attempt, no retry
	ExecutionTimeout time.Duration
	NotBefore        time.Time // zero: claimable at once
}

// StartRun queues a run. A thread that already has a PENDING or RUNNING run
// fails with ErrFailedPrecondition (reason THREAD_BUSY).
func (c *Client) StartRun(ctx context.Context, spec RunSpec) (*Run, error) {
	md, err := toStruct(spec.Metadata)
	if err != nil {
		return nil, err
	}
	queue, kind := spec.Queue, spec.InputType
	if queue == "" {
		queue = "default"
	}
	if kind == "" && len(spec.Input) > 0 {
		kind = "json"
	}
	req := &cairnv1.StartRunRequest{
		RunId: spec.RunID, ThreadId: spec.ThreadID, Queue: queue, Input: spec.Input, InputType: kind, Metadata: md,
		ExecutionTimeoutMs: spec.ExecutionTimeout.Milliseconds(), NotBefore: stamp(spec.NotBefore),
	}
	if p := spec.Retry; p != nil {
		req.RetryPolicy = &cairnv1.RetryPolicy{
			MaxAttempts: p.MaxAttempts, InitialBackoffMs: p.InitialBackoff.Milliseconds(),
			BackoffCoefficient: p.BackoffCoefficient, MaxBackoffMs: p.MaxBackoff.Milliseconds(),
			MaxRecoveries: p.MaxRecoveries,
		}
	}
	resp, err := c.rpc.StartRun(ctx, req)
	if err != nil {
		return nil, wrap(err)
	}
	return runFromProto(resp.GetRun()), nil
}

// ClaimOptions say what ClaimRun takes and for how long.
type ClaimOptions struct {
	Queue    string // "" is "default"
	WorkerID string // required; recorded on the attempt
	// Lease is how long the claim lasts without a heartbeat (0: the server's
	// 30s; else 1s..10min).
	Lease time.Duration
	// Wait is the long-poll: how long to wait for a claimable run (0: answer
	// at once; at most 60s).
	Wait time.Duration
}

// ClaimRun hands out the oldest claimable run of a queue (pending, or
// abandoned by a worker that stopped heartbeating) under a new lease, waiting
// up to o.Wait for one. It returns the run with its lease (Claim.Recovered
// when it was taken over from another worker), or (nil, nil) when none came.
func (c *Client) ClaimRun(ctx context.Context, o ClaimOptions) (*Claim, error) {
	queue := o.Queue
	if queue == "" {
		queue = "default"
	}
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		// The long-poll comes on top of the default timeout, which only bounds the answer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+o.Wait)
		defer cancel()
	}
	resp, err := c.rpc.ClaimRun(ctx, &cairnv1.ClaimRunRequest{
		Queue: queue, WorkerId: o.WorkerID, LeaseDurationMs: o.Lease.Milliseconds(), WaitMs: o.Wait.Milliseconds(),
	})
	if err != nil {
		return nil, wrap(err)
	}
	if resp.GetRun() == nil {
		return nil, nil
	}
	return &Claim{Run: runFromProto(resp.GetRun()), Lease: leaseFromProto(resp.GetLease()), Recovered: resp.GetRecovered()}, nil
}

// Heartbeat extends the lease by extend from now (0: the claim's length) and
// returns it with its new expiry. ErrRunStopped means: stop working on the run.
func (c *Client) Heartbeat(ctx context.Context, lease *RunLease, extend time.Duration) (*RunLease, error) {
	resp, err := c.rpc.Heartbeat(ctx, &cairnv1.HeartbeatRequest{Lease: lease.toProto(), LeaseDurationMs: extend.Milliseconds()})
	if err != nil {
		return nil, wrap(err)
	}
	return leaseFromProto(resp.GetLease()), nil
}

// RunResult is what CompleteRun records.
type RunResult struct {
	Output     []byte
	OutputType string // "" is "json" when Output is set
	// Interrupted ends the run INTERRUPTED (the graph waits for a human; a new
	// StartRun on the thread resumes it) instead of COMPLETED; Output is then
	// the interrupt's payload.
	Interrupted  bool
	CheckpointID string // the thread's head at the end
}

// CompleteRun ends the attempt with success: the run becomes COMPLETED (or
// INTERRUPTED when r.Interrupted) and is returned. ErrRunStopped (with
// ErrLeaseLost, ErrRunCancelled or ErrRunTimedOut) when lease is no longer the
// run's current one, and nothing is recorded; ErrNotFound (RUN_NOT_FOUND) when
// there is no such run.
func (c *Client) CompleteRun(ctx context.Context, lease *RunLease, r RunResult) (*Run, error) {
	kind := r.OutputType
	if kind == "" && len(r.Output) > 0 {
		kind = "json"
	}
	resp, err := c.rpc.CompleteRun(ctx, &cairnv1.CompleteRunRequest{
		Lease: lease.toProto(), Output: r.Output, OutputType: kind, Interrupted: r.Interrupted, CheckpointId: r.CheckpointID,
	})
	if err != nil {
		return nil, wrap(err)
	}
	return runFromProto(resp.GetRun()), nil
}

// FailRun ends the attempt with an error (its Type, Message and Retryable are
// sent). A retryable error with attempts left under the run's RetryPolicy
// puts the run back to PENDING, claimable after the backoff; otherwise it is
// FAILED. It returns the run in its new status. ErrRunStopped when lease is no
// longer the run's current one; ErrNotFound (RUN_NOT_FOUND) when there is no
// such run.
func (c *Client) FailRun(ctx context.Context, lease *RunLease, e RunError) (*Run, error) {
	resp, err := c.rpc.FailRun(ctx, &cairnv1.FailRunRequest{
		Lease: lease.toProto(), Error: &cairnv1.RunError{Type: e.Type, Message: e.Message, Retryable: e.Retryable},
	})
	if err != nil {
		return nil, wrap(err)
	}
	return runFromProto(resp.GetRun()), nil
}

// CancelRun cancels a run: CANCELLED at once unless a worker holds it; then
// CancelRequested is set and the run ends CANCELLED when its worker sees it
// (at its next heartbeat or fenced write). A finished run is
// ErrFailedPrecondition (reason RUN_FINISHED).
func (c *Client) CancelRun(ctx context.Context, runID string) (*Run, error) {
	resp, err := c.rpc.CancelRun(ctx, &cairnv1.CancelRunRequest{RunId: runID})
	if err != nil {
		return nil, wrap(err)
	}
	return runFromProto(resp.GetRun()), nil
}

// GetRun returns a run with its attempts; ErrNotFound (RUN_NOT_FOUND) when
// there is no such run.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	resp, err := c.rpc.GetRun(ctx, &cairnv1.GetRunRequest{RunId: runID})
	if err != nil {
		return nil, wrap(err)
	}
	return runFromProto(resp.GetRun()), nil
}

// RunQuery selects runs for ListRuns. Zero fields don't filter.
type RunQuery struct {
	Statuses      []RunStatus // any of these
	Queue         string
	ThreadID      string
	CreatedAfter  time.Time // at or after
	CreatedBefore time.Time
	PageSize      int32  // 0: 100; capped at 1000
	PageToken     string // resume from a RunPage.NextPageToken (same filters)
}

// RunPage is one page of ListRuns.
type RunPage struct {
	Runs          []*Run // newest first, without attempts
	NextPageToken string // "" on the last page
}

// ListRunsPage fetches the single page of q named by q.PageToken (runs newest
// first, without attempts). ErrInvalidArgument for a bad filter, page size or
// token.
func (c *Client) ListRunsPage(ctx context.Context, q RunQuery) (*RunPage, error) {
	req := &cairnv1.ListRunsRequest{
		PageSize: q.PageSize, PageToken: q.PageToken, Queue: q.Queue, ThreadId: q.ThreadID,
		CreatedAfter: stamp(q.CreatedAfter), CreatedBefore: stamp(q.CreatedBefore),
	}
	for _, s := range q.Statuses {
		req.Statuses = append(req.Statuses, cairnv1.RunStatus(s))
	}
	resp, err := c.rpc.ListRuns(ctx, req)
	if err != nil {
		return nil, wrap(err)
	}
	page := &RunPage{NextPageToken: resp.GetNextPageToken()}
	for _, r := range resp.GetRuns() {
		page.Runs = append(page.Runs, runFromProto(r))
	}
	return page, nil
}

// ListRuns iterates over the runs of q, newest first, fetching pages as
// needed. The iteration ends after the first error.
//
//	for run, err := range c.ListRuns(ctx, cairn.RunQuery{Statuses: []cairn.RunStatus{cairn.RunFailed}}) { ... }
func (c *Client) ListRuns(ctx context.Context, q RunQuery) iter.Seq2[*Run, error] {
	return func(yield func(*Run, error) bool) {
		for {
			page, err := c.ListRunsPage(ctx, q)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range page.Runs {
				if !yield(r, nil) {
					return
				}
			}
			if page.NextPageToken == "" {
				return
			}
			q.PageToken = page.NextPageToken
		}
	}
}

// WithRunLease fences a save: it commits only while lease is its run's
// current lease (and the run's thread is the checkpoint's), checked in the
// same transaction as the write; otherwise the save fails with ErrRunStopped
// and nothing is stored.
func WithRunLease(lease *RunLease) SaveOption {
	return func(r *cairnv1.SaveRequest) { r.RunLease = lease.toProto() }
}

func (l *RunLease) toProto() *cairnv1.RunLease {
	if l == nil {
		return nil
	}
	return &cairnv1.RunLease{RunId: l.RunID, Epoch: l.Epoch, Token: l.Token}
}

func leaseFromProto(p *cairnv1.RunLease) *RunLease {
	if p == nil {
		return nil
	}
	return &RunLease{RunID: p.GetRunId(), Epoch: p.GetEpoch(), Token: p.GetToken(), ExpiresAt: when(p.GetExpiresAt())}
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func when(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func runErrorFromProto(e *cairnv1.RunError) *RunError {
	if e == nil {
		return nil
	}
	return &RunError{Reason: e.GetReason(), Type: e.GetType(), Message: e.GetMessage(), Retryable: e.GetRetryable()}
}

func runFromProto(r *cairnv1.Run) *Run {
	if r == nil {
		return nil
	}
	p := r.GetRetryPolicy()
	run := &Run{
		RunID: r.GetRunId(), ThreadID: r.GetThreadId(), Queue: r.GetQueue(), Status: RunStatus(r.GetStatus()),
		Input: r.GetInput(), InputType: r.GetInputType(), Metadata: fromStruct(r.GetMetadata()),
		RetryPolicy: RetryPolicy{
			MaxAttempts: p.GetMaxAttempts(), InitialBackoff: time.Duration(p.GetInitialBackoffMs()) * time.Millisecond,
			BackoffCoefficient: p.GetBackoffCoefficient(), MaxBackoff: time.Duration(p.GetMaxBackoffMs()) * time.Millisecond,
			MaxRecoveries: p.GetMaxRecoveries(),
		},
		ExecutionTimeout: time.Duration(r.GetExecutionTimeoutMs()) * time.Millisecond,
		CreatedAt:        when(r.GetCreatedAt()), StartedAt: when(r.GetStartedAt()),
		UpdatedAt: when(r.GetUpdatedAt()), EndedAt: when(r.GetEndedAt()),
		AttemptCount: r.GetAttemptCount(), FailedAttemptCount: r.GetFailedAttemptCount(),
		RecoveryCount: r.GetRecoveryCount(), CancelRequested: r.GetCancelRequested(), WorkerID: r.GetWorkerId(),
		LeaseEpoch: r.GetLeaseEpoch(), LeaseExpiresAt: when(r.GetLeaseExpiresAt()), NotBefore: when(r.GetNotBefore()),
		Error: runErrorFromProto(r.GetError()), Output: r.GetOutput(), OutputType: r.GetOutputType(),
		CheckpointID: r.GetCheckpointId(),
	}
	for _, a := range r.GetAttempts() {
		run.Attempts = append(run.Attempts, RunAttempt{
			Number: a.GetNumber(), WorkerID: a.GetWorkerId(), Status: RunStatus(a.GetStatus()),
			StartedAt: when(a.GetStartedAt()), EndedAt: when(a.GetEndedAt()), Error: runErrorFromProto(a.GetError()),
			Recovered: a.GetRecovered(),
		})
	}
	return run
}

// String names the run and its status, for logs.
func (r *Run) String() string {
	return fmt.Sprintf("run %s (%s, thread %s)", r.RunID, r.Status, r.ThreadID)
}
