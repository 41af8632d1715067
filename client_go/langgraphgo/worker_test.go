package langgraphgo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/graph"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

// pipeline is draft -> review -> publish over a map state, checkpointing
// into a Cairn Store. hooks, when set for a node, runs first in it (and may
// block); ran counts node executions.
type pipeline struct {
	mu    sync.Mutex
	ran   map[string]int
	hooks map[string]func(ctx context.Context) error
}

func (p *pipeline) count(node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ran[node]
}

func (p *pipeline) build(t *testing.T, c *cairn.Client) *graph.CheckpointableRunnable[map[string]any] {
	t.Helper()
	p.ran = map[string]int{}
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	g.SetSchema(graph.NewMapSchema())
	node := func(name string, update func(s map[string]any) map[string]any) {
		g.AddNode(name, name, func(ctx context.Context, s map[string]any) (map[string]any, error) {
			if hook := p.hooks[name]; hook != nil {
				if err := hook(ctx); err != nil {
					return nil, err
				}
			}
			if err := ctx.Err(); err != nil { // as any node whose work takes its context (I/O, model calls)
				return nil, err
			}
			p.mu.Lock()
			p.ran[name]++
			p.mu.Unlock()
			return update(s), nil
		})
	}
	node("draft", func(s map[string]any) map[string]any {
		return map[string]any{"draft": fmt.Sprintf("about %v", s["topic"])}
	})
	node("review", func(s map[string]any) map[string]any { return map[string]any{"reviewed": true} })
	node("publish", func(s map[string]any) map[string]any { return map[string]any{"published": s["draft"]} })
	g.SetEntryPoint("draft")
	g.AddEdge("draft", "review")
	g.AddEdge("review", "publish")
	g.AddEdge("publish", graph.END)
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: langgraphgo.NewStore(c), AutoSave: true})
	app, err := g.CompileCheckpointable()
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func startRun(t *testing.T, c *cairn.Client, q string, input string) *cairn.Run {
	t.Helper()
	run, err := c.StartRun(context.Background(), cairn.RunSpec{ThreadID: "lgg-run-" + uuid.NewString(), Queue: q, Input: []byte(input)})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func output(t *testing.T, run *cairn.Run) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(run.Output, &out); err != nil {
		t.Fatalf("output of %v: %q: %v", run, run.Output, err)
	}
	return out
}

func TestWorkerCompletesRun(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	p := &pipeline{}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{WorkerID: "go-w", Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"cairn"}`)

	run, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := output(t, run)
	if run.RunID != started.RunID || run.Status != cairn.RunCompleted || out["published"] != "about cairn" || out["reviewed"] != true {
		t.Fatalf("run %v output %v", run, out)
	}
	head, err := c.Load(ctx, cairn.Ref{ThreadID: started.ThreadID})
	if err != nil {
		t.Fatal(err)
	}
	if run.CheckpointID != head.ID || head.NodeName != "publish" || head.Metadata["run_id"] != run.RunID {
		t.Fatalf("run ended at %s; head %s %s %v", run.CheckpointID, head.ID, head.NodeName, head.Metadata)
	}
	if got, _ := c.GetRun(ctx, run.RunID); len(got.Attempts) != 1 || got.Attempts[0].WorkerID != "go-w" {
		t.Fatalf("attempts %+v", got.Attempts)
	}
	idle := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{Wait: 200 * time.Millisecond})
	if none, err := idle.RunOnce(context.Background()); err != nil || none != nil {
		t.Fatalf("an empty queue gave %v, %v", none, err)
	}
}

// A cancel is seen at the next heartbeat: a node honouring its context stops
// at once, and the graph writes nothing more.
func TestWorkerObservesCancel(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	entered := make(chan struct{})
	p := &pipeline{hooks: map[string]func(context.Context) error{"review": func(ctx context.Context) error {
		close(entered)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Minute):
			return errors.New("the cancel was not seen")
		}
	}}}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{Lease: 3 * time.Second, Heartbeat: 200 * time.Millisecond, Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"cancel"}`)
	type result struct {
		run *cairn.Run
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := w.RunOnce(ctx)
		done <- result{run, err}
	}()
	<-entered
	if _, err := c.CancelRun(ctx, started.RunID); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop within 10s of the cancel")
	}
	if !errors.Is(r.err, cairn.ErrRunCancelled) || r.run == nil || r.run.Status != cairn.RunCancelled {
		t.Fatalf("worker returned %v, %v", r.run, r.err)
	}
	if p.count("publish") != 0 || p.count("review") != 0 {
		t.Fatalf("nodes ran after the cancel: %v", p.ran)
	}
	head, err := c.Load(ctx, cairn.Ref{ThreadID: started.ThreadID})
	if err != nil || head.NodeName != "draft" {
		t.Fatalf("head after the cancel: %+v, %v", head, err)
	}
}

// A worker paused past its lease (it sent no heartbeat) finds the run taken
// over: the Store's fenced save is refused with LEASE_LOST, nothing of the
// zombie's lands on the thread, and the next node gets a cancelled context.
func TestWorkerZombieSaveRefused(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	entered, taken := make(chan struct{}), make(chan struct{})
	p := &pipeline{hooks: map[string]func(context.Context) error{"review": func(context.Context) error {
		close(entered)
		<-taken // not watching ctx: a node that goes on, as a paused process would
		return nil
	}}}
	zombie := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{WorkerID: "zombie", Lease: time.Second,
		Heartbeat: time.Hour, Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"zombie"}`)
	type result struct {
		run *cairn.Run
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := zombie.RunOnce(ctx)
		done <- result{run, err}
	}()
	<-entered
	var taker *cairn.Claim
	for deadline := time.Now().Add(15 * time.Second); taker == nil && time.Now().Before(deadline); {
		cl, err := c.ClaimRun(ctx, cairn.ClaimOptions{Queue: q, WorkerID: "taker", Lease: 30 * time.Second, Wait: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		taker = cl
	}
	if taker == nil || taker.Run.RunID != started.RunID || !taker.Recovered {
		t.Fatalf("the run was not taken over: %+v", taker)
	}
	close(taken)
	r := <-done
	if !errors.Is(r.err, cairn.ErrLeaseLost) || r.run == nil || r.run.Status != cairn.RunRunning || r.run.WorkerID != "taker" {
		t.Fatalf("zombie returned %v, %v", r.run, r.err)
	}
	if p.count("publish") != 0 {
		t.Fatal("the zombie went on to the next node")
	}
	head, err := c.Load(ctx, cairn.Ref{ThreadID: started.ThreadID})
	if err != nil || head.NodeName != "draft" {
		t.Fatalf("the zombie's save landed: head %+v, %v", head, err)
	}
}

// A worker that stops mid-run (shut down, or crashed) leaves the run to its
// lease; another worker recovers it from the last checkpoint: the steps
// before that checkpoint's node do not run again.
func TestWorkerRecoversAbandonedRun(t *testing.T) {
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	entered := make(chan struct{})
	p1 := &pipeline{hooks: map[string]func(context.Context) error{"publish": func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}}
	first := langgraphgo.NewWorker(c, q, p1.build(t, c), langgraphgo.WorkerOptions{WorkerID: "first", Lease: time.Second, Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"recovery"}`)
	ctx1, stop := context.WithCancel(context.Background())
	go func() {
		<-entered
		stop() // the worker goes away inside publish, after review's checkpoint
	}()
	if run, err := first.RunOnce(ctx1); !errors.Is(err, context.Canceled) || run != nil {
		t.Fatalf("first worker: %v, %v", run, err)
	}

	p2 := &pipeline{}
	second := langgraphgo.NewWorker(c, q, p2.build(t, c), langgraphgo.WorkerOptions{WorkerID: "second", Lease: 5 * time.Second, Wait: 5 * time.Second})
	var run *cairn.Run
	for deadline := time.Now().Add(15 * time.Second); run == nil && time.Now().Before(deadline); {
		var err error
		if run, err = second.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if run == nil || run.RunID != started.RunID || run.Status != cairn.RunCompleted || run.RecoveryCount != 1 {
		t.Fatalf("recovered run %+v", run)
	}
	if out := output(t, run); out["published"] != "about recovery" {
		t.Fatalf("output %v", out)
	}
	// LangGraphGo resumes a thread from the node of its last checkpoint (review), so draft does not run again.
	if p2.count("draft") != 0 || p2.count("publish") != 1 {
		t.Fatalf("the second worker ran %v", p2.ran)
	}
}

func TestWorkerFailsRunOnNodeError(t *testing.T) {
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	p := &pipeline{hooks: map[string]func(context.Context) error{"draft": func(context.Context) error {
		return &os.PathError{Op: "open", Path: "/nowhere", Err: os.ErrNotExist}
	}}}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{Wait: 5 * time.Second})
	startRun(t, c, q, `{"topic":"x"}`)
	run, err := w.RunOnce(context.Background())
	if err != nil || run.Status != cairn.RunFailed || run.Error == nil || run.Error.Type != "*fs.PathError" || !run.Error.Retryable {
		t.Fatalf("run %+v (%+v), %v", run, run.Error, err)
	}
}

// A graph.Interrupt ends the run INTERRUPTED; a new run on the thread with
// {"__command__": {"resume": ...}} resumes it.
func TestWorkerInterruptAndResume(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	g.SetSchema(graph.NewMapSchema())
	g.AddNode("ask", "ask", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		answer, err := graph.Interrupt(ctx, "approve?")
		if err != nil {
			return nil, err
		}
		return map[string]any{"answer": answer}, nil
	})
	g.SetEntryPoint("ask")
	g.AddEdge("ask", graph.END)
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: langgraphgo.NewStore(c), AutoSave: true})
	app, err := g.CompileCheckpointable()
	if err != nil {
		t.Fatal(err)
	}
	w := langgraphgo.NewWorker(c, q, app, langgraphgo.WorkerOptions{Wait: 5 * time.Second})
	first := startRun(t, c, q, `{"q":1}`)
	run, err := w.RunOnce(ctx)
	if err != nil || run.Status != cairn.RunInterrupted || string(run.Output) != `[{"node":"ask","value":"approve?"}]` {
		t.Fatalf("first run %v output %s, %v", run, run.Output, err)
	}
	if _, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: first.ThreadID, Queue: q, Input: []byte(`{"__command__":{"resume":"yes"}}`)}); err != nil {
		t.Fatal(err)
	}
	run, err = w.RunOnce(ctx)
	if err != nil || run.Status != cairn.RunCompleted || output(t, run)["answer"] != "yes" {
		t.Fatalf("resumed run %v output %s, %v", run, run.Output, err)
	}
}

// runsPeer runs tests/crosslang/runs_peer.py (the Python client) and decodes the JSON line it prints.
func runsPeer(t *testing.T, args ...string) map[string]any {
	t.Helper()
	python := os.Getenv("CAIRN_PYTHON")
	if python == "" {
		python = "python3"
	}
	script := filepath.Join(testserver.RepoRoot(), "tests", "crosslang", "runs_peer.py")
	cmd := exec.Command(python, append([]string{script}, append(args, "--target", target)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("runs_peer.py %v: %v\n%s", args, err, stderr.String())
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(out), &line); err != nil {
		t.Fatalf("runs_peer.py %v printed %q: %v", args, out, err)
	}
	return line
}

// A run started from Python is executed by the Go worker, and Python reads its result.
func TestCrossLanguageRunStartedFromPython(t *testing.T) {
	c := dial(t)
	q := "xlang-py-go-" + uuid.NewString()
	th := "xlang-py-go-" + uuid.NewString()
	started := runsPeer(t, "start", "--thread", th, "--queue", q, "--input", `{"topic":"python"}`)
	if started["status"] != "PENDING" {
		t.Fatalf("python started %v", started)
	}
	p := &pipeline{}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{WorkerID: "go-xlang", Wait: 5 * time.Second})
	run, err := w.RunOnce(context.Background())
	if err != nil || run == nil || run.RunID != started["run_id"] || run.Metadata["started_by"] != "python" {
		t.Fatalf("go worker: %v, %v", run, err)
	}
	got := runsPeer(t, "get", "--run", run.RunID)
	out, _ := got["output"].(map[string]any)
	workers, _ := got["worker_ids"].([]any)
	if got["status"] != "COMPLETED" || out["published"] != "about python" || len(workers) != 1 || workers[0] != "go-xlang" ||
		got["checkpoint_id"] != run.CheckpointID {
		t.Fatalf("python reads %v", got)
	}
}

// The run's execution timeout passes while a node works: the next heartbeat
// says RUN_TIMED_OUT, the node's context is cancelled, and the run is FAILED
// with reason EXECUTION_TIMEOUT.
func TestWorkerHonoursExecutionTimeout(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	p := &pipeline{hooks: map[string]func(context.Context) error{"review": func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Minute):
			return errors.New("the timeout was not seen")
		}
	}}}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{Lease: 3 * time.Second, Heartbeat: 200 * time.Millisecond, Wait: 5 * time.Second})
	started, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: "lgg-run-" + uuid.NewString(), Queue: q, Input: []byte(`{}`),
		ExecutionTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run, err := w.RunOnce(ctx)
	if !errors.Is(err, cairn.ErrRunTimedOut) || run == nil || run.RunID != started.RunID || run.Status != cairn.RunFailed ||
		run.Error == nil || run.Error.Reason != "EXECUTION_TIMEOUT" {
		t.Fatalf("worker returned %v (%+v), %v", run, run.Error, err)
	}
	if p.count("publish") != 0 {
		t.Fatal("the graph went on after the timeout")
	}
}
