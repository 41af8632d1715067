package cairn_test

// The coalescer's rules for low concurrency (a second sender only once 4 calls
// wait), for batches the server refuses whole for their size, and for a client
// closed while calls wait: against the real server where it can show them, and
// against an in-process fake that holds calls where the test must control
// when a call on the wire ends.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairn "github.com/cairn-dev/cairn/client_go"
	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
)

// waitFor polls cond until it holds; the test fails after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func TestFourConcurrentSavesShareCallsAndALoneSaveGoesAsSave(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option()) // coalesce 4 by default: up to 4 senders
	th := thread(t)
	save(t, c, &cairn.Checkpoint{ThreadID: th + "-alone", State: []byte(`{}`), StateType: "json"})
	if s, b := cc.count("Save"), cc.count("SaveBatch"); s != 1 || b != 0 {
		t.Fatalf("a lone save made %d Save and %d SaveBatch calls; want 1 Save", s, b)
	}

	// The first save is held on its way out; 3 more come meanwhile, fewer than
	// a batch's worth, so no second sender starts for them.
	cc = newCalls()
	c = dial(t, cc.option())
	cc.holdCalls("Save")
	errs := make(chan error, 4)
	saveTh := func(i int) {
		_, err := c.Save(context.Background(), &cairn.Checkpoint{ThreadID: fmt.Sprintf("%s-%d", th, i), State: []byte(`{}`), StateType: "json"})
		errs <- err
	}
	go saveTh(0)
	cc.waitHeld(t, 1)
	for i := 1; i < 4; i++ {
		go saveTh(i)
	}
	waitFor(t, "the 3 later saves queued or went out", func() bool {
		return cairn.QueuedSaves(c)+int(cc.held.Load())-1 == 3
	})
	cc.release()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	saves, batches := cc.count("Save"), cc.count("SaveBatch")
	t.Logf("4 concurrent saves: %d Save calls, %d SaveBatch calls", saves, batches)
	if saves+batches >= 4 {
		t.Fatalf("4 concurrent saves made %d Save and %d SaveBatch calls; want fewer than 4 calls", saves, batches)
	}
}

func TestBatchLargerThanTheServersMessagesGoesAloneAndLaterBatchesShrink(t *testing.T) {
	small := testserver.Start(t, "--max-state-bytes", "200000") // takes messages of about 1.3 MB
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc, bc := newCalls(), &batchCalls{}
	c, err := cairn.Dial(ctx, small, cairn.WithInsecure(), cairn.WithCoalesce(1), cc.option(), bc.option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	startBytes := cairn.BatchBytes(c)

	states := make([][]byte, 24) // 150 KB each: 24 of them are far beyond the server's messages
	for i := range states {
		raw := make([]byte, 110_000)
		rand.Read(raw)
		states[i] = []byte(`"` + base64.StdEncoding.EncodeToString(raw) + `"`)
	}
	th := thread(t)
	cc.holdCalls("Save")
	errs := make([]error, len(states))
	var wg sync.WaitGroup
	for i := range states {
		wg.Go(func() {
			_, errs[i] = c.Save(ctx, &cairn.Checkpoint{ThreadID: fmt.Sprintf("%s-%d", th, i), State: states[i], StateType: "json"})
		})
		if i == 0 { // the first goes alone and is held; started together, a busy box let it take others along
			cc.waitHeld(t, 1)
		}
	}
	waitFor(t, "the other saves queued", func() bool { return cairn.QueuedSaves(c) == len(states)-1 })
	cc.release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("save %d to a server taking messages of 1.3 MB: %v", i, err)
		}
	}
	for i := range states {
		got, err := c.Load(ctx, cairn.Ref{ThreadID: fmt.Sprintf("%s-%d", th, i)})
		if err != nil || !bytes.Equal(got.State, states[i]) {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	t.Logf("SaveBatch calls %v (refused %v)", bc.sent["SaveBatch"], bc.refused["SaveBatch"])
	if len(bc.refused["SaveBatch"]) == 0 {
		t.Fatalf("no SaveBatch call was refused: the saves did not queue into a batch larger than the server takes")
	}
	if b := cairn.BatchBytes(c); b >= startBytes || b > 24*150_000/2 {
		t.Fatalf("the save coalescer's batch bytes are %d after a refusal, want at most half the refused batch", b)
	}
}

// stuckServer holds every Save until released and every SaveBatch until its
// call ends, and answers a released SaveBatch, if ever, with refuse.
type stuckServer struct {
	cairnv1.UnimplementedCheckpointStoreServer
	release        chan struct{}
	saves, batches atomic.Int32
	mu             sync.Mutex
	saved          []string // threads saved alone
	releaseBatch   chan struct{}
	refuse         error
}

func (s *stuckServer) Save(ctx context.Context, req *cairnv1.SaveRequest) (*cairnv1.SaveResponse, error) {
	s.saves.Add(1)
	s.mu.Lock()
	s.saved = append(s.saved, req.GetCheckpoint().GetThreadId())
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &cairnv1.SaveResponse{CheckpointId: "cp", Sequence: 1}, nil
}

func (s *stuckServer) SaveBatch(ctx context.Context, req *cairnv1.SaveBatchRequest) (*cairnv1.SaveBatchResponse, error) {
	s.batches.Add(1)
	select {
	case <-s.releaseBatch:
		return nil, s.refuse
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// tooManyItems is the server's refusal of a batch of more items than its
// --max-batch-items.
func tooManyItems() error {
	st, err := status.New(codes.InvalidArgument, "at most 3 saves per call").WithDetails(
		&errdetails.ErrorInfo{Reason: "LIMIT_EXCEEDED", Metadata: map[string]string{"field": "saves"}})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func startStuck(t *testing.T, s *stuckServer) *cairn.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cairnv1.RegisterCheckpointStoreServer(srv, s)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cairn.Dial(ctx, lis.Addr().String(), cairn.WithInsecure(), cairn.WithCoalesce(1))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClosingTheClientAnswersQueuedAndBatchedCallers(t *testing.T) {
	s := &stuckServer{release: make(chan struct{}), releaseBatch: make(chan struct{})}
	c := startStuck(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, 8)
	saveTh := func(i int) {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: fmt.Sprintf("t%d", i), State: []byte(`{}`)})
		errs <- err
	}
	go saveTh(0) // alone, held at the server
	waitFor(t, "the first save reached the server", func() bool { return s.saves.Load() == 1 })
	for i := 1; i < 6; i++ {
		go saveTh(i)
	}
	waitFor(t, "5 saves queued", func() bool { return cairn.QueuedSaves(c) == 5 })
	close(s.release) // the first save returns; the 5 go as one SaveBatch, held at the server
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch reached the server", func() bool { return s.batches.Load() == 1 })
	for i := 6; i < 8; i++ {
		go saveTh(i)
	}
	waitFor(t, "2 saves queued behind the batch", func() bool { return cairn.QueuedSaves(c) == 2 })

	c.Close()
	for range 7 {
		if err := <-errs; status.Code(err) != codes.Canceled {
			t.Fatalf("a save waiting when the client closed: err = %v, want Canceled (not its deadline)", err)
		}
	}
}

func TestCallersThatLeftAreNotSentWhenABatchFallsBackToSingleCalls(t *testing.T) {
	s := &stuckServer{release: make(chan struct{}), releaseBatch: make(chan struct{}),
		refuse: tooManyItems()}
	c := startStuck(t, s)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leaving, leave := context.WithCancel(ctx)
	errs := make(chan error, 5)
	saveTh := func(ctx context.Context, name string) {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: name, State: []byte(`{}`)})
		errs <- err
	}
	go saveTh(ctx, "first")
	waitFor(t, "the first save reached the server", func() bool { return s.saves.Load() == 1 })
	go saveTh(leaving, "leaver")
	waitFor(t, "the leaver queued", func() bool { return cairn.QueuedSaves(c) == 1 })
	for i := 0; i < 3; i++ {
		go saveTh(ctx, fmt.Sprintf("stayer%d", i))
	}
	waitFor(t, "4 saves queued", func() bool { return cairn.QueuedSaves(c) == 4 })
	close(s.release)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch reached the server", func() bool { return s.batches.Load() == 1 })
	leave()
	if err := <-errs; status.Code(err) != codes.Canceled {
		t.Fatalf("the caller that left: err = %v, want Canceled", err)
	}
	close(s.releaseBatch) // refused whole: its items go alone
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, th := range s.saved {
		if th == "leaver" {
			t.Fatalf("the caller that left was sent alone after the batch was refused: saves %v", s.saved)
		}
	}
	if len(s.saved) != 4 {
		t.Fatalf("the server got saves %v, want first and the 3 stayers", s.saved)
	}
}
