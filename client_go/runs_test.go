package cairn_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// queue returns a queue name unique to this test, so no other suite claims its runs.
func queue(t *testing.T) string { return "q-" + uuid.NewString()[:12] }

func claim(t *testing.T, c *cairn.Client, q, worker string, lease time.Duration) *cairn.Claim {
	t.Helper()
	cl, err := c.ClaimRun(context.Background(), cairn.ClaimOptions{Queue: q, WorkerID: worker, Lease: lease, Wait: 5 * time.Second})
	if err != nil || cl == nil {
		t.Fatalf("claim from %s: %v, %v", q, cl, err)
	}
	return cl
}

func TestRunClaimHeartbeatComplete(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th, q := thread(t), queue(t)
	started, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: th, Queue: q, Input: []byte(`{"n":1}`),
		Metadata: map[string]any{"by": "go"}})
	if err != nil {
		t.Fatal(err)
	}
	if started.Status != cairn.RunPending || started.InputType != "json" || started.Metadata["by"] != "go" || started.RunID == "" {
		t.Fatalf("started %+v", started)
	}
	// An empty queue answers after the long-poll with no run.
	none, err := c.ClaimRun(ctx, cairn.ClaimOptions{Queue: queue(t), WorkerID: "w", Wait: 200 * time.Millisecond})
	if err != nil || none != nil {
		t.Fatalf("claim from an empty queue: %v, %v", none, err)
	}

	cl := claim(t, c, q, "go-worker-1", 5*time.Second)
	if cl.Run.RunID != started.RunID || cl.Run.Status != cairn.RunRunning || cl.Lease.Epoch != 1 || cl.Recovered ||
		string(cl.Run.Input) != `{"n":1}` {
		t.Fatalf("claim %+v lease %+v", cl.Run, cl.Lease)
	}
	beat, err := c.Heartbeat(ctx, cl.Lease, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !beat.ExpiresAt.After(cl.Lease.ExpiresAt) || beat.Epoch != 1 || beat.Token != cl.Lease.Token {
		t.Fatalf("heartbeat %+v after %+v", beat, cl.Lease)
	}
	res := save(t, c, &cairn.Checkpoint{ThreadID: th, State: []byte(`{"n":2}`), StateType: "json"}, cairn.WithRunLease(beat))
	if _, err := c.PutWrites(ctx, cairn.Ref{ThreadID: th, ID: res.CheckpointID}, cairn.TaskWrites{TaskID: "t",
		Writes: []cairn.Write{{Channel: "c", ValueType: "json", Value: []byte(`1`)}}, RunLease: beat}); err != nil {
		t.Fatal(err)
	}
	done, err := c.CompleteRun(ctx, beat, cairn.RunResult{Output: []byte(`{"n":2}`), CheckpointID: res.CheckpointID})
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != cairn.RunCompleted || !done.Status.Final() || done.CheckpointID != res.CheckpointID {
		t.Fatalf("completed %+v", done)
	}
	got, err := c.GetRun(ctx, started.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != cairn.RunCompleted || string(got.Output) != `{"n":2}` || got.OutputType != "json" ||
		len(got.Attempts) != 1 || got.Attempts[0].WorkerID != "go-worker-1" || got.Attempts[0].Status != cairn.RunCompleted ||
		got.Attempts[0].EndedAt.IsZero() {
		t.Fatalf("run %+v attempts %+v", got, got.Attempts)
	}
	// The run is over: its lease fences nothing any more.
	_, err = c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: []byte(`{}`), StateType: "json"}, cairn.WithRunLease(beat))
	cairnErr(t, err, cairn.ErrRunStopped, "LEASE_LOST")
}

// A worker paused past its lease (a zombie) finds another worker holding the
// run: its fenced save, writes and heartbeat are refused with LEASE_LOST and
// store nothing, while the new holder's go through.
func TestRunFencedSaveAfterLeaseLost(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th, q := thread(t), queue(t)
	run, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: th, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	zombie := claim(t, c, q, "zombie", time.Second)
	first := save(t, c, &cairn.Checkpoint{ThreadID: th, State: []byte(`{"by":"zombie"}`), StateType: "json"},
		cairn.WithRunLease(zombie.Lease))

	var taker *cairn.Claim
	for deadline := time.Now().Add(15 * time.Second); taker == nil && time.Now().Before(deadline); {
		cl, err := c.ClaimRun(ctx, cairn.ClaimOptions{Queue: q, WorkerID: "taker", Lease: 10 * time.Second, Wait: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		taker = cl
	}
	if taker == nil || taker.Run.RunID != run.RunID || !taker.Recovered || taker.Lease.Epoch != 2 {
		t.Fatalf("the abandoned run was not taken over: %+v", taker)
	}

	_, err = c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ParentID: first.CheckpointID, State: []byte(`{"by":"zombie"}`),
		StateType: "json"}, cairn.WithRunLease(zombie.Lease))
	ce := cairnErr(t, err, cairn.ErrLeaseLost, "LEASE_LOST")
	if !errors.Is(err, cairn.ErrRunStopped) || !errors.Is(err, cairn.ErrConflict) || errors.Is(err, cairn.ErrRunCancelled) ||
		ce.RunID() != run.RunID || ce.Metadata["current_epoch"] != "2" {
		t.Fatalf("zombie save: %v (metadata %v)", err, ce.Metadata)
	}
	_, err = c.PutWrites(ctx, cairn.Ref{ThreadID: th, ID: first.CheckpointID}, cairn.TaskWrites{TaskID: "z",
		Writes: []cairn.Write{{Channel: "c", ValueType: "json", Value: []byte(`1`)}}, RunLease: zombie.Lease})
	cairnErr(t, err, cairn.ErrLeaseLost, "LEASE_LOST")
	_, err = c.Heartbeat(ctx, zombie.Lease, 0)
	cairnErr(t, err, cairn.ErrLeaseLost, "LEASE_LOST")
	_, err = c.CompleteRun(ctx, zombie.Lease, cairn.RunResult{})
	cairnErr(t, err, cairn.ErrLeaseLost, "LEASE_LOST")

	head, err := c.Load(ctx, cairn.Ref{ThreadID: th})
	if err != nil || head.ID != first.CheckpointID || len(head.PendingWrites) != 0 {
		t.Fatalf("the zombie's writes were stored: head %+v, %v", head, err)
	}
	save(t, c, &cairn.Checkpoint{ThreadID: th, ParentID: first.CheckpointID, State: []byte(`{"by":"taker"}`),
		StateType: "json"}, cairn.WithRunLease(taker.Lease))
	got, err := c.GetRun(ctx, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AttemptCount != 2 || got.RecoveryCount != 1 || len(got.Attempts) != 2 ||
		got.Attempts[0].Error == nil || got.Attempts[0].Error.Reason != "LEASE_EXPIRED" || !got.Attempts[1].Recovered {
		t.Fatalf("history %+v attempts %+v", got, got.Attempts)
	}
}

func TestRunCancel(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := queue(t)

	pending, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: thread(t), Queue: q, NotBefore: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := c.CancelRun(ctx, pending.RunID)
	if err != nil || cancelled.Status != cairn.RunCancelled {
		t.Fatalf("cancel of a pending run: %+v, %v", cancelled, err)
	}

	th := thread(t)
	running, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: th, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	cl := claim(t, c, q, "w", 10*time.Second)
	req, err := c.CancelRun(ctx, running.RunID)
	if err != nil || req.Status != cairn.RunRunning || !req.CancelRequested {
		t.Fatalf("cancel of a running run: %+v, %v", req, err)
	}
	_, err = c.Heartbeat(ctx, cl.Lease, 0)
	cairnErr(t, err, cairn.ErrRunCancelled, "RUN_CANCELLED")
	if !errors.Is(err, cairn.ErrRunStopped) {
		t.Fatalf("%v is not ErrRunStopped", err)
	}
	got, err := c.GetRun(ctx, running.RunID)
	if err != nil || got.Status != cairn.RunCancelled || got.EndedAt.IsZero() {
		t.Fatalf("after the worker saw the cancel: %+v, %v", got, err)
	}
	_, err = c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: []byte(`{}`), StateType: "json"}, cairn.WithRunLease(cl.Lease))
	if !errors.Is(err, cairn.ErrRunStopped) {
		t.Fatalf("fenced save after the cancel: %v", err)
	}
	if _, err := c.GetRun(ctx, "no-such-run-"+uuid.NewString()); !errors.Is(err, cairn.ErrNotFound) {
		t.Fatalf("GetRun of a missing run: %v", err)
	}
}

func TestRunListAndHistory(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	q := queue(t)
	since := time.Now().Add(-time.Minute)
	var ids []string
	for range 3 {
		r, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: thread(t), Queue: q,
			Retry: &cairn.RetryPolicy{MaxAttempts: 2, InitialBackoff: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	// A second run on a thread with a pending one is refused.
	first, err := c.GetRun(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StartRun(ctx, cairn.RunSpec{ThreadID: first.ThreadID, Queue: q})
	if ce := cairnErr(t, err, cairn.ErrFailedPrecondition, "THREAD_BUSY"); ce.RunID() != ids[0] {
		t.Fatalf("THREAD_BUSY names %q, want %q", ce.RunID(), ids[0])
	}

	// The oldest is claimed first; its attempt fails (retryable) and it waits to retry, then fails for good.
	cl := claim(t, c, q, "w", 5*time.Second)
	if cl.Run.RunID != ids[0] {
		t.Fatalf("claimed %s, want the oldest %s", cl.Run.RunID, ids[0])
	}
	retry, err := c.FailRun(ctx, cl.Lease, cairn.RunError{Type: "net.OpError", Message: "connection reset", Retryable: true})
	if err != nil || retry.Status != cairn.RunPending || retry.Error == nil || retry.Error.Reason != "ERROR" || retry.NotBefore.IsZero() {
		t.Fatalf("after a retryable failure: %+v, %v", retry, err)
	}
	var again *cairn.Claim
	for again == nil || again.Run.RunID != ids[0] {
		if again != nil { // another of the test's runs came first: put it back by failing it for good
			if _, err := c.FailRun(ctx, again.Lease, cairn.RunError{Message: "not this one"}); err != nil {
				t.Fatal(err)
			}
		}
		again = claim(t, c, q, "w", 5*time.Second)
	}
	failed, err := c.FailRun(ctx, again.Lease, cairn.RunError{Type: "ValueError", Message: "bad input", Retryable: true})
	if err != nil || failed.Status != cairn.RunFailed || failed.Error.Message != "bad input" || failed.FailedAttemptCount != 2 {
		t.Fatalf("after the last attempt: %+v, %v", failed, err)
	}
	hist, err := c.GetRun(ctx, ids[0])
	if err != nil || len(hist.Attempts) != 2 || hist.Attempts[0].Error.Type != "net.OpError" || hist.Attempts[1].Status != cairn.RunFailed {
		t.Fatalf("history %+v, %v", hist, err)
	}

	// Paging over the queue, newest first.
	var listed []string
	pages := 0
	page := &cairn.RunPage{}
	for more := true; more; more = page.NextPageToken != "" {
		page, err = c.ListRunsPage(ctx, cairn.RunQuery{Queue: q, PageSize: 2, PageToken: page.NextPageToken, CreatedAfter: since})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Runs {
			listed = append(listed, r.RunID)
		}
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if pages != 2 || !slices.Equal(listed, want) {
		t.Fatalf("listed %v in %d pages, want %v in 2", listed, pages, want)
	}
	var failedIDs []string
	for r, err := range c.ListRuns(ctx, cairn.RunQuery{Queue: q, Statuses: []cairn.RunStatus{cairn.RunFailed}}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != cairn.RunFailed {
			t.Fatalf("status filter returned %v", r)
		}
		failedIDs = append(failedIDs, r.RunID)
	}
	if !slices.Contains(failedIDs, ids[0]) {
		t.Fatalf("FAILED runs %v miss %s", failedIDs, ids[0])
	}
	for r, err := range c.ListRuns(ctx, cairn.RunQuery{ThreadID: first.ThreadID}) {
		if err != nil || r.RunID != ids[0] {
			t.Fatalf("thread filter: %v, %v", r, err)
		}
	}
	for r, err := range c.ListRuns(ctx, cairn.RunQuery{Queue: q, CreatedBefore: since}) {
		t.Fatalf("created before the test: %v, %v", r, err)
	}
}
