package langgraphgo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/graph"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// CommandKey marks a run input that resumes an interrupted thread:
// {"__command__": {"resume": VALUE}} runs the graph with Config.ResumeValue
// VALUE (what graph.Interrupt returns), as the Python worker reads it.
const CommandKey = "__command__"

// WorkerOptions tune a Worker. Zero fields take the defaults.
type WorkerOptions struct {
	// WorkerID is recorded on each attempt (default host:pid:random).
	WorkerID string
	// Lease is how long a claim lasts without a heartbeat: a crashed worker's
	// run is taken over by another after it (default 30s).
	Lease time.Duration
	// Heartbeat is the interval of heartbeats (default Lease/3).
	Heartbeat time.Duration
	// Wait is the long-poll of each claim (default 10s).
	Wait time.Duration
	// Retryable says which node errors make FailRun retryable (default
	// DefaultRetryable); the run's RetryPolicy decides the retry.
	Retryable func(error) bool
	// NodeTimeout limits each step (its nodes run at once; 0: no limit). A
	// step that runs longer ends the attempt with a *NodeTimeoutError, which
	// DefaultRetryable retries: the graph's context is cancelled with it as
	// cause and nothing more is saved; a node that ignores its context ends
	// the attempt when it returns.
	NodeTimeout time.Duration
}

// Worker executes durable runs of one LangGraphGo graph, taken from a Cairn
// queue, one at a time:
//
//	g.SetCheckpointConfig(graph.CheckpointConfig{Store: langgraphgo.NewStore(c), AutoSave: true})
//	app, _ := g.CompileCheckpointable()
//	w := langgraphgo.NewWorker(c, "orders", app, langgraphgo.WorkerOptions{})
//	err := w.Run(ctx) // until ctx ends; elsewhere c.StartRun(ctx, cairn.RunSpec{ThreadID: ..., Queue: "orders", Input: ...})
//
// The graph must checkpoint into a Store of this package on the same Cairn
// server: the worker runs it with graph.WithThreadID(run's thread) and a
// context carrying the run's lease, and the Store fences every save with it,
// so a worker that lost its run (paused past its lease, or the run was
// cancelled or timed out) writes nothing more. It heartbeats in the
// background. When the run must stop it cancels the context it gave the graph
// (nodes that honour ctx stop at once) and ends the graph at the next step
// boundary. The run's input is JSON decoded into S; its output is the final
// state as JSON. A graph.GraphInterrupt ends the run INTERRUPTED with
// [{"node": ..., "value": ...}] as output; a run whose input is
// {"__command__": {"resume": v}} resumes it.
//
// Recovery: a run taken over from a crashed worker continues from the last
// checkpoint that run saved on its thread, the way LangGraphGo resumes a
// thread: from the node that checkpoint names, which therefore runs again.
// A node error ends the attempt with FailRun.
//
// A Worker executes one run at a time. Give each concurrently running Worker
// its own compiled graph: a CheckpointableRunnable keeps the thread of its
// current invocation in a field it shares between invocations.
type Worker[S any] struct {
	client *cairn.Client
	queue  string
	graph  *graph.CheckpointableRunnable[S]
	opts   WorkerOptions
}

// NewWorker returns a Worker taking runs from queue for the graph app.
func NewWorker[S any](c *cairn.Client, queue string, app *graph.CheckpointableRunnable[S], opts WorkerOptions) *Worker[S] {
	if opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if opts.Lease == 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = opts.Lease / 3
	}
	if opts.Wait == 0 {
		opts.Wait = 10 * time.Second
	}
	if opts.Retryable == nil {
		opts.Retryable = DefaultRetryable
	}
	return &Worker[S]{client: c, queue: queue, graph: app, opts: opts}
}

// DefaultRetryable treats timeouts and I/O errors as worth another attempt
// (as the Python worker treats TimeoutError and OSError); anything else is a
// bug or bad input.
func DefaultRetryable(err error) bool {
	var netErr net.Error
	var errno syscall.Errno
	var pathErr *os.PathError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &netErr) || errors.As(err, &errno) || errors.As(err, &pathErr)
}

// Run claims and executes runs until ctx ends, then returns nil. Errors
// reaching the server are logged and retried after a second.
func (w *Worker[S]) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, cairn.ErrRunStopped) {
			slog.Warn("cairn worker: retrying", "worker", w.opts.WorkerID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// RunOnce claims one run (waiting up to WorkerOptions.Wait) and executes it;
// it returns the run as the server has it afterwards, or nil when none came.
func (w *Worker[S]) RunOnce(ctx context.Context) (*cairn.Run, error) {
	claim, err := w.client.ClaimRun(ctx, cairn.ClaimOptions{Queue: w.queue, WorkerID: w.opts.WorkerID, Lease: w.opts.Lease, Wait: w.opts.Wait})
	if err != nil || claim == nil {
		return nil, err
	}
	return w.Execute(ctx, claim)
}

// Execute runs a claimed run to its end, or until it must stop, and returns
// the run as the server has it afterwards. A run that had to stop (cancelled,
// timed out, or taken over by another worker) comes with the error that said
// so, which matches cairn.ErrRunStopped. When ctx ends first (the worker
// shuts down) the run is left to its lease, to be taken over by another
// worker, and ctx's error is returned.
func (w *Worker[S]) Execute(ctx context.Context, claim *cairn.Claim) (*cairn.Run, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	scope := &runScope{lease: claim.Lease, runID: claim.Run.RunID, cancel: cancel, client: w.client, threadID: claim.Run.ThreadID}
	beatsDone := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() { w.heartbeat(runCtx, scope, beatsDone) })
	if w.opts.NodeTimeout > 0 {
		scope.steps = make(chan struct{}, 1)
		beats.Go(func() { w.watchSteps(runCtx, scope, beatsDone) })
	}
	defer beats.Wait()
	defer close(beatsDone)

	out, err := w.invoke(withScope(runCtx, scope), claim)
	if timeout := scope.finish(); timeout != nil && scope.stopped() == nil {
		out, err = nil, timeout
	}
	if stop := scope.stopped(); stop != nil {
		slog.Info("cairn worker: run stopped", "worker", w.opts.WorkerID, "run", claim.Run.RunID, "reason", stop)
		run, err := w.client.GetRun(context.WithoutCancel(ctx), claim.Run.RunID)
		if err != nil {
			return nil, err
		}
		return run, stop
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var run *cairn.Run
	var gi *graph.GraphInterrupt
	switch {
	case errors.As(err, &gi):
		payload, merr := json.Marshal([]map[string]any{{"node": gi.Node, "value": gi.InterruptValue}})
		if merr != nil {
			return nil, fmt.Errorf("langgraphgo: interrupt value of run %s: %w", claim.Run.RunID, merr)
		}
		run, err = w.client.CompleteRun(ctx, claim.Lease, cairn.RunResult{Output: payload, Interrupted: true, CheckpointID: scope.headID()})
	case err != nil:
		run, err = w.client.FailRun(ctx, claim.Lease, cairn.RunError{Type: errorType(err), Message: err.Error(), Retryable: w.opts.Retryable(err)})
	default:
		run, err = w.client.CompleteRun(ctx, claim.Lease, cairn.RunResult{Output: out, CheckpointID: scope.headID()})
	}
	if errors.Is(err, cairn.ErrRunStopped) { // cancelled or taken over while ending
		if run, gerr := w.client.GetRun(ctx, claim.Run.RunID); gerr == nil {
			return run, err
		}
	}
	return run, err
}

// errorType names err's type, looking through the fmt.Errorf wrapping that
// LangGraphGo puts around node errors: e.g. "*fs.PathError".
func errorType(err error) string {
	name := fmt.Sprintf("%T", err)
	for strings.HasPrefix(name, "*fmt.wrapError") && errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
		name = fmt.Sprintf("%T", err)
	}
	return name
}

// invoke runs the graph on the claimed thread and returns its final state as
// JSON. A stop unwinds it at the next step boundary (stepGuard).
func (w *Worker[S]) invoke(ctx context.Context, claim *cairn.Claim) (out []byte, err error) {
	cfg := graph.WithThreadID(claim.Run.ThreadID)
	input, err := w.input(ctx, claim.Run, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Callbacks = []graph.CallbackHandler{&stepGuard{scope: scopeOf(ctx)}}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopSignal); !ok {
				panic(r)
			}
			out, err = nil, context.Cause(ctx)
		}
	}()
	final, err := w.graph.InvokeWithConfig(ctx, input, cfg)
	if err != nil {
		return nil, err
	}
	return json.Marshal(final)
}

// input is the state to invoke the graph with: the run's input; or, when an
// earlier attempt of this run got as far as a checkpoint (a recovery or a
// retry), what continues from it: the zero state, which a schema merges into
// the checkpoint as nothing new, or the checkpoint's state itself for a graph
// without a schema (its input replaces the checkpoint's state).
func (w *Worker[S]) input(ctx context.Context, run *cairn.Run, cfg *graph.Config) (S, error) {
	var zero S
	head, err := w.client.Load(ctx, cairn.Ref{ThreadID: run.ThreadID})
	if err != nil && !errors.Is(err, cairn.ErrNotFound) {
		return zero, err
	}
	if head != nil && head.Metadata["run_id"] == run.RunID {
		scopeOf(ctx).saved(head.ID) // where this attempt's activities are recorded until its first save
		if w.graph.GetGraph().Schema != nil {
			return zero, nil
		}
		var s S
		if err := json.Unmarshal(head.State, &s); err != nil {
			return zero, fmt.Errorf("langgraphgo: state of checkpoint %s: %w", head.ID, err)
		}
		return s, nil
	}
	if len(run.Input) == 0 {
		return zero, nil
	}
	if run.InputType != "json" && run.InputType != "" {
		return zero, fmt.Errorf("langgraphgo: run %s has input_type %q, want \"json\"", run.RunID, run.InputType)
	}
	var cmd map[string]json.RawMessage
	if json.Unmarshal(run.Input, &cmd) == nil && cmd[CommandKey] != nil {
		var spec struct {
			Resume any `json:"resume"`
		}
		if err := json.Unmarshal(cmd[CommandKey], &spec); err != nil {
			return zero, fmt.Errorf("langgraphgo: %s of run %s: %w", CommandKey, run.RunID, err)
		}
		cfg.ResumeValue = spec.Resume
		return zero, nil
	}
	var s S
	if err := json.Unmarshal(run.Input, &s); err != nil {
		return zero, fmt.Errorf("langgraphgo: input of run %s: %w", run.RunID, err)
	}
	return s, nil
}

// watchSteps ends the attempt with a NodeTimeoutError when a step runs longer
// than WorkerOptions.NodeTimeout; stepGuard reports each step's end.
func (w *Worker[S]) watchSteps(ctx context.Context, scope *runScope, done <-chan struct{}) {
	t := time.NewTimer(w.opts.NodeTimeout)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-scope.steps:
			t.Reset(w.opts.NodeTimeout)
		case <-t.C:
			scope.timeout(&NodeTimeoutError{Timeout: w.opts.NodeTimeout})
			return
		}
	}
}

func (w *Worker[S]) heartbeat(ctx context.Context, scope *runScope, done <-chan struct{}) {
	t := time.NewTicker(w.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lease, err := w.client.Heartbeat(ctx, scope.currentLease(), 0)
		switch {
		case errors.Is(err, cairn.ErrRunStopped):
			scope.stop(err)
			return
		case err != nil: // the server is briefly away: the lease outlives a few missed beats
			if ctx.Err() == nil {
				slog.Warn("cairn worker: heartbeat failed", "run", scope.runID, "err", err)
			}
		default:
			scope.setLease(lease)
		}
	}
}

// runScope is the run a worker executes, carried by the context it gives the
// graph so that the Store fences saves with its lease.
type runScope struct {
	runID  string
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	lease    *cairn.RunLease
	head     string // last checkpoint the run saved
	err      error  // why the run must stop
	timedOut error  // the step that ran past WorkerOptions.NodeTimeout
	finished bool   // the graph returned: too late for a node timeout

	steps chan struct{} // a step ended (with WorkerOptions.NodeTimeout)

	// Activity records (see Activity).
	client    *cairn.Client
	threadID  string
	namespace string
	actMu     sync.Mutex
	records   map[string][]byte // activity key -> recorded JSON result; nil until read
	unflushed []string          // activities of the first step, recorded on the first checkpoint
}

type scopeKey struct{}

func withScope(ctx context.Context, s *runScope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

func scopeOf(ctx context.Context) *runScope {
	s, _ := ctx.Value(scopeKey{}).(*runScope)
	return s
}

func (s *runScope) currentLease() *cairn.RunLease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

func (s *runScope) setLease(l *cairn.RunLease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease = l
}

func (s *runScope) saved(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = id
}

func (s *runScope) headID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// stop records the first reason the run must stop and cancels the graph's context.
func (s *runScope) stop(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel(err)
}

// timeout ends the attempt with err, unless the graph already returned.
func (s *runScope) timeout(err error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.timedOut = err
	s.mu.Unlock()
	s.cancel(err)
}

// finish marks the graph returned and says whether a node timeout ended it.
func (s *runScope) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	return s.timedOut
}

// blocked says why nothing more may be saved for the run: it must stop, or
// its step timed out.
func (s *runScope) blocked() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.timedOut
}

func (s *runScope) stopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stopSignal unwinds a stopped run's graph from its step callback up to
// Worker.invoke, which recovers it: LangGraphGo has no other way to end a run
// between two steps, and its nodes need not watch their context.
type stopSignal struct{}

// stepGuard runs after each step of the graph, before the step's checkpoint
// is saved, and ends the graph there once the run must stop.
type stepGuard struct {
	graph.NoOpCallbackHandler
	scope *runScope
}

func (g *stepGuard) OnGraphStep(context.Context, string, any) {
	if g.scope.blocked() != nil {
		panic(stopSignal{})
	}
	select {
	case g.scope.steps <- struct{}{}:
	default: // no NodeTimeout (nil channel), or the watcher has a step end to read already
	}
}
