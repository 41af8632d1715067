package langgraphgo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

// An activity recorded by review survives the first worker going away inside
// publish: the second worker re-runs review (LangGraphGo resumes from the node
// of the last checkpoint) and gets the recorded result without calling it again.
func TestActivityRecordedBeforeCrashIsNotCalledAgain(t *testing.T) {
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	var calls atomic.Int32
	charge := func(context.Context) (map[string]any, error) {
		n := calls.Add(1)
		return map[string]any{"receipt": "r-1", "call": n}, nil
	}
	receipts := make(chan map[string]any, 2)
	review := func(ctx context.Context) error {
		r, err := langgraphgo.Activity(ctx, "review", "charge", charge)
		receipts <- r
		return err
	}
	entered := make(chan struct{})
	p1 := &pipeline{hooks: map[string]func(context.Context) error{"review": review, "publish": func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}}
	first := langgraphgo.NewWorker(c, q, p1.build(t, c), langgraphgo.WorkerOptions{WorkerID: "first", Lease: time.Second, Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"activity"}`)
	ctx1, stop := context.WithCancel(context.Background())
	go func() {
		<-entered
		stop()
	}()
	if run, err := first.RunOnce(ctx1); !errors.Is(err, context.Canceled) || run != nil {
		t.Fatalf("first worker: %v, %v", run, err)
	}

	p2 := &pipeline{hooks: map[string]func(context.Context) error{"review": review}}
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
	if p2.count("review") != 1 {
		t.Fatalf("the second worker ran %v; want review re-run", p2.ran)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the activity ran %d times; want once", n)
	}
	if a, b := <-receipts, <-receipts; a["receipt"] != "r-1" || b["receipt"] != "r-1" || b["call"] != float64(1) {
		t.Fatalf("results %v then %v; want the recorded one twice", a, b)
	}
	// The record is the pending write the other languages' workers use.
	found := false
	for cp, err := range c.List(context.Background(), cairn.ListQuery{ThreadID: started.ThreadID, IncludeWrites: true}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range cp.PendingWrites {
			found = found || (w.TaskID == "activity:review:charge" && w.Channel == "activity" && w.ValueType == "json")
		}
	}
	if !found {
		t.Fatal("no activity:review:charge write on the thread")
	}
}

func TestActivityOutsideRun(t *testing.T) {
	_, err := langgraphgo.Activity(context.Background(), "n", "a", func(context.Context) (int, error) { return 1, nil })
	if !errors.Is(err, langgraphgo.ErrNotInRun) {
		t.Fatalf("err %v", err)
	}
}

// A step past NodeTimeout fails the attempt with a retryable NodeTimeoutError;
// the run's retry policy runs it again, and the second attempt completes.
func TestNodeTimeoutFailsAttemptAndRetries(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	var attempts atomic.Int32
	p := &pipeline{hooks: map[string]func(context.Context) error{"review": func(ctx context.Context) error {
		if attempts.Add(1) == 1 {
			<-ctx.Done() // far past the timeout
			return ctx.Err()
		}
		return nil
	}}}
	w := langgraphgo.NewWorker(c, q, p.build(t, c), langgraphgo.WorkerOptions{NodeTimeout: time.Second, Lease: 5 * time.Second, Wait: 5 * time.Second})
	started, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: "lgg-run-" + uuid.NewString(), Queue: q, Input: []byte(`{"topic":"t"}`),
		Retry: &cairn.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := w.RunOnce(ctx)
	if err != nil || run.Status != cairn.RunPending || run.FailedAttemptCount != 1 {
		t.Fatalf("first attempt: %+v, %v", run, err)
	}
	if p.count("publish") != 0 {
		t.Fatal("the graph went on after the timeout")
	}
	for run.Status == cairn.RunPending {
		if run, err = w.RunOnce(ctx); err != nil || run == nil {
			t.Fatalf("second attempt: %+v, %v", run, err)
		}
	}
	if run.RunID != started.RunID || run.Status != cairn.RunCompleted || run.AttemptCount != 2 || p.count("publish") != 1 {
		t.Fatalf("run %+v (%+v); ran %v", run, run.Error, p.ran)
	}
	attemptsOf, err := c.GetRun(ctx, started.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(attemptsOf.Attempts) != 2 || attemptsOf.Attempts[0].Error == nil ||
		attemptsOf.Attempts[0].Error.Type != "*langgraphgo.NodeTimeoutError" || !attemptsOf.Attempts[0].Error.Retryable {
		t.Fatalf("attempts %+v", attemptsOf.Attempts)
	}
}

// An activity of the graph's first step (before the run has a checkpoint) is
// recorded on the first checkpoint: the first worker goes away inside review,
// the second re-runs draft (LangGraphGo resumes from draft's checkpoint) and
// gets the recorded result.
func TestActivityOfTheFirstStepIsRecordedOnTheFirstCheckpoint(t *testing.T) {
	c := dial(t)
	q := "lgg-" + uuid.NewString()
	var calls atomic.Int32
	draft := func(ctx context.Context) error {
		n, err := langgraphgo.Activity(ctx, "draft", "reserve", func(context.Context) (int32, error) { return calls.Add(1), nil })
		if err == nil && n != 1 {
			err = errors.New("draft got a result other than the first call's")
		}
		return err
	}
	entered := make(chan struct{})
	p1 := &pipeline{hooks: map[string]func(context.Context) error{"draft": draft, "review": func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}}
	first := langgraphgo.NewWorker(c, q, p1.build(t, c), langgraphgo.WorkerOptions{WorkerID: "first", Lease: time.Second, Wait: 5 * time.Second})
	started := startRun(t, c, q, `{"topic":"first step"}`)
	ctx1, stop := context.WithCancel(context.Background())
	go func() {
		<-entered
		stop()
	}()
	if run, err := first.RunOnce(ctx1); !errors.Is(err, context.Canceled) || run != nil {
		t.Fatalf("first worker: %v, %v", run, err)
	}
	p2 := &pipeline{hooks: map[string]func(context.Context) error{"draft": draft}}
	second := langgraphgo.NewWorker(c, q, p2.build(t, c), langgraphgo.WorkerOptions{WorkerID: "second", Lease: 5 * time.Second, Wait: 5 * time.Second})
	var run *cairn.Run
	for deadline := time.Now().Add(15 * time.Second); run == nil && time.Now().Before(deadline); {
		var err error
		if run, err = second.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if run == nil || run.RunID != started.RunID || run.Status != cairn.RunCompleted {
		t.Fatalf("recovered run %+v", run)
	}
	if p2.count("draft") != 1 || calls.Load() != 1 {
		t.Fatalf("the second worker ran %v; the activity ran %d times; want draft re-run, the activity once", p2.ran, calls.Load())
	}
}
