package cairn_test

// SaveBatch, and the coalescing of concurrent Save and Load calls into
// SaveBatch and BatchLoad calls (coalesce.go), against the real server (the
// shared one; for batches larger than the server takes, one started with
// --max-batch-items 3); the fallback for a server without the batch methods
// against an in-process fake that has only Save and Load.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cairn "github.com/cairn-dev/cairn/client_go"
	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
)

// calls counts the client's unary calls by method name and can hold calls of
// one method until released, so that the calls made meanwhile queue.
type calls struct {
	mu      sync.Mutex
	n       map[string]int
	hold    chan struct{} // nil: hold nothing; closed: released
	holding string        // the method held
	held    atomic.Int32  // calls held so far
}

func newCalls() *calls { return &calls{n: map[string]int{}} }

// holdCalls makes calls of method wait until release is called.
func (c *calls) holdCalls(method string) {
	c.mu.Lock()
	c.hold, c.holding = make(chan struct{}), method
	c.mu.Unlock()
}

func (c *calls) release() { close(c.hold) }

// waitHeld waits until n calls are held.
func (c *calls) waitHeld(t *testing.T, n int32) {
	t.Helper()
	for c.held.Load() < n {
		time.Sleep(time.Millisecond)
	}
}

func (c *calls) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

func (c *calls) option() cairn.Option {
	return cairn.WithDialOptions(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			name := path.Base(method)
			c.mu.Lock()
			c.n[name]++
			hold := c.hold
			if name != c.holding {
				hold = nil
			}
			c.mu.Unlock()
			if hold != nil {
				c.held.Add(1)
				select {
				case <-hold:
				case <-ctx.Done():
					return status.FromContextError(ctx.Err()).Err()
				}
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
}

// state36k is a JSON state of about 36 KB, the size of a typical agent state.
func state36k(tag string) []byte {
	return []byte(fmt.Sprintf(`{"tag":%q,"blob":%q}`, tag, strings.Repeat("abcdefghij", 3686)))
}

func TestSaveBatchEachItemHasItsOwnOutcome(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	a, b := thread(t)+"-a", thread(t)+"-b"
	head := save(t, c, &cairn.Checkpoint{ThreadID: b, State: []byte(`{"n":0}`), StateType: "json"})

	res, err := c.SaveBatch(ctx, []cairn.SaveItem{
		{Checkpoint: &cairn.Checkpoint{ThreadID: a, State: []byte(`{"n":1}`), StateType: "json"}},
		{Checkpoint: &cairn.Checkpoint{ThreadID: b, State: []byte(`{"n":2}`), StateType: "json"},
			Options: []cairn.SaveOption{cairn.ExpectHead("not-the-head")}},
		{Checkpoint: &cairn.Checkpoint{ThreadID: b, State: []byte(`{"n":3}`), StateType: "json"},
			Options: []cairn.SaveOption{cairn.ExpectHead(head.CheckpointID)}},
	})
	if err != nil {
		t.Fatalf("SaveBatch: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("saves 0 and 2 failed: %v, %v", res[0].Err, res[2].Err)
	}
	ce := cairnErr(t, res[1].Err, cairn.ErrConflict, "HEAD_MOVED")
	if ce.CurrentHeadID() != head.CheckpointID {
		t.Fatalf("CurrentHeadID = %q, want %q", ce.CurrentHeadID(), head.CheckpointID)
	}
	for th, want := range map[string]string{a: res[0].CheckpointID, b: res[2].CheckpointID} {
		got, err := c.Load(ctx, cairn.Ref{ThreadID: th})
		if err != nil || got.ID != want {
			t.Fatalf("head of %s = %v, %v; want %s", th, got, err, want)
		}
	}

	if res, err := c.SaveBatch(ctx, nil); res != nil || err != nil {
		t.Fatalf("SaveBatch(nil) = %v, %v; want nothing", res, err)
	}
	_, err = c.SaveBatch(ctx, []cairn.SaveItem{{Checkpoint: &cairn.Checkpoint{ThreadID: a, State: []byte(`{}`),
		Metadata: map[string]any{"bad": func() {}}}}})
	if err == nil || !strings.HasPrefix(err.Error(), "save 0: ") {
		t.Fatalf("SaveBatch with unencodable metadata: err = %v, want one naming save 0", err)
	}
}

// saveAll saves one 36 KB checkpoint on each thread from its own goroutine,
// all at once, with the held calls released once every goroutine is in Save.
func saveAll(t *testing.T, c *cairn.Client, cc *calls, threads []string, opts ...cairn.SaveOption) []error {
	t.Helper()
	errs := make([]error, len(threads))
	allAtOnce(len(threads), cc, func(i int) {
		th := threads[i]
		_, errs[i] = c.Save(context.Background(), &cairn.Checkpoint{ThreadID: th, State: state36k(th), StateType: "json"}, opts...)
	})
	return errs
}

// allAtOnce runs call(0) to call(n-1), each on its own goroutine; once every
// goroutine has started it releases the calls cc holds (cc may be nil), and it
// returns when every call has.
func allAtOnce(n int, cc *calls, call func(i int)) {
	var entered, done sync.WaitGroup
	entered.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			entered.Done()
			call(i)
		}()
	}
	entered.Wait()
	if cc != nil {
		cc.release()
	}
	done.Wait()
}

func TestConcurrentSavesTravelInFewerCalls(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option()) // coalesce 4 by default
	cc.holdCalls("Save")
	threads := threadIDs(t, 64)
	for i, err := range saveAll(t, c, cc, threads) {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	saves, batches := cc.count("Save"), cc.count("SaveBatch")
	t.Logf("64 saves: %d Save calls, %d SaveBatch calls", saves, batches)
	if batches == 0 || saves+batches >= len(threads) {
		t.Fatalf("64 concurrent saves made %d Save and %d SaveBatch calls; want fewer calls than saves, some batched",
			saves, batches)
	}
	for _, th := range threads {
		got, err := c.Load(context.Background(), cairn.Ref{ThreadID: th})
		if err != nil || !bytes.Equal(got.State, state36k(th)) {
			t.Fatalf("load %s: %v", th, err)
		}
	}
}

func TestCoalescedCompareAndSetFailsOnlyItsOwnSave(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option(), cairn.WithCoalesce(1))
	cc.holdCalls("Save")
	th := thread(t)
	threads := make([]string, 16)
	for i := range threads {
		threads[i] = th // all on one thread, each expecting it empty: one wins
	}
	won := 0
	for _, err := range saveAll(t, c, cc, threads, cairn.ExpectEmpty()) {
		switch {
		case err == nil:
			won++
		case errors.Is(err, cairn.ErrConflict):
		default:
			t.Fatalf("save: %v, want success or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 16 ExpectEmpty saves of one thread succeeded, want 1", won)
	}
	if cc.count("SaveBatch") == 0 {
		t.Fatalf("no SaveBatch call: the saves did not travel together")
	}
}

func TestConcurrentLoadsTravelInBatchLoads(t *testing.T) {
	ctx := context.Background()
	cc := newCalls()
	c := dial(t, cc.option(), cairn.WithCoalesce(1))
	threads := threadIDs(t, 24)
	for _, th := range threads[1:] { // the first thread stays empty
		save(t, c, &cairn.Checkpoint{ThreadID: th, State: state36k(th), StateType: "json"})
	}
	got, errs := loadAllHeld(ctx, c, cc, threads)
	cairnErr(t, errs[0], cairn.ErrNotFound, "THREAD_EMPTY")
	for i := 1; i < len(threads); i++ {
		if errs[i] != nil || !bytes.Equal(got[i].State, state36k(threads[i])) {
			t.Fatalf("load %d: %v", i, errs[i])
		}
	}
	if cc.count("BatchLoad") == 0 || cc.count("Load")+cc.count("BatchLoad") >= len(threads) {
		t.Fatalf("24 concurrent loads made %d Load and %d BatchLoad calls; want fewer calls than loads",
			cc.count("Load"), cc.count("BatchLoad"))
	}
}

func TestQueuedSaveEndsAtItsOwnDeadline(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option(), cairn.WithCoalesce(1))
	cc.holdCalls("Save")
	first, late, patient := thread(t)+"-first", thread(t)+"-late", thread(t)+"-patient"
	errc := map[string]chan error{first: make(chan error, 1), late: make(chan error, 1), patient: make(chan error, 1)}
	saveIn := func(ctx context.Context, th string) {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: []byte(`{}`), StateType: "json"})
		errc[th] <- err
	}
	go saveIn(context.Background(), first)
	cc.waitHeld(t, 1) // the one sender is busy: the next saves queue
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go saveIn(context.Background(), patient)
	go saveIn(short, late)

	err := <-errc[late] // while the save it queued behind is still held
	if !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("queued save past its deadline: err = %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-errc[patient]:
		t.Fatalf("the patient save ended (%v) before the held save was released", err)
	default:
	}
	cc.release()
	for _, th := range []string{first, patient} {
		if err := <-errc[th]; err != nil {
			t.Fatalf("save %s: %v", th, err)
		}
	}
	// The late save was dropped from the queue, never sent.
	_, err = c.Load(context.Background(), cairn.Ref{ThreadID: late})
	cairnErr(t, err, cairn.ErrNotFound, "THREAD_EMPTY")
}

func TestCoalesceOffSendsEverySaveAlone(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option(), cairn.WithCoalesce(0))
	cc.holdCalls("Save")
	threads := threadIDs(t, 16)
	for i, err := range saveAll(t, c, cc, threads) {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	if cc.count("Save") != 16 || cc.count("SaveBatch") != 0 {
		t.Fatalf("WithCoalesce(0): %d Save and %d SaveBatch calls for 16 saves, want 16 and 0",
			cc.count("Save"), cc.count("SaveBatch"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cairn.Dial(ctx, target, cairn.WithInsecure(), cairn.WithCoalesce(-1)); err == nil ||
		!strings.Contains(err.Error(), "WithCoalesce(-1)") {
		t.Fatalf("Dial with WithCoalesce(-1): err = %v, want one naming it", err)
	}
}

func TestCallWithOutgoingMetadataGoesAlone(t *testing.T) {
	cc := newCalls()
	c := dial(t, cc.option(), cairn.WithCoalesce(1))
	cc.holdCalls("Save")
	threads := threadIDs(t, 8)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-trace", "t1")
	errs := make([]error, len(threads))
	var entered, done sync.WaitGroup
	for i, th := range threads {
		entered.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			entered.Done()
			_, errs[i] = c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: []byte(`{}`), StateType: "json"})
		}()
	}
	entered.Wait()
	cc.release()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	if cc.count("SaveBatch") != 0 {
		t.Fatalf("saves carrying their own metadata went in %d SaveBatch calls, want none", cc.count("SaveBatch"))
	}
}

// oldServer is a Cairn server from before SaveBatch and BatchLoad: it has
// Save and Load only. While holding is set, the next call waits until hold is
// closed.
type oldServer struct {
	cairnv1.UnimplementedCheckpointStoreServer
	holding      atomic.Bool
	held, hold   chan struct{}
	saves, loads atomic.Int32
}

func (s *oldServer) wait() {
	if s.holding.CompareAndSwap(true, false) {
		s.held <- struct{}{}
		<-s.hold
	}
}

func (s *oldServer) Save(ctx context.Context, req *cairnv1.SaveRequest) (*cairnv1.SaveResponse, error) {
	s.saves.Add(1)
	s.wait()
	return &cairnv1.SaveResponse{CheckpointId: req.GetCheckpoint().GetCheckpointId(), Sequence: 1}, nil
}

func (s *oldServer) Load(ctx context.Context, req *cairnv1.LoadRequest) (*cairnv1.LoadResponse, error) {
	s.loads.Add(1)
	s.wait()
	return &cairnv1.LoadResponse{Checkpoint: &cairnv1.Checkpoint{ThreadId: req.GetThreadId(), CheckpointId: "cp",
		State: []byte(req.GetThreadId()), StateType: "json"}}, nil
}

func TestServerWithoutBatchMethodsGetsCallsAlone(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	old := &oldServer{held: make(chan struct{}, 1)}
	cairnv1.RegisterCheckpointStoreServer(srv, old)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	cc := newCalls()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cairn.Dial(ctx, lis.Addr().String(), cairn.WithInsecure(), cairn.WithCoalesce(1), cc.option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	// Each round: one call holds the one sender at the server, 7 more queue behind it.
	round := func(kind string, call func(i int) error) {
		t.Helper()
		old.hold = make(chan struct{})
		old.holding.Store(true)
		errs := make(chan error, 8)
		go func() { errs <- call(0) }()
		<-old.held
		var entered sync.WaitGroup
		for i := 1; i < 8; i++ {
			entered.Add(1)
			go func() {
				entered.Done()
				errs <- call(i)
			}()
		}
		entered.Wait()
		close(old.hold)
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatalf("%s against a server without batch methods: %v", kind, err)
			}
		}
	}
	round("save", func(i int) error {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: fmt.Sprintf("t%d", i), State: []byte(`{}`)})
		return err
	})
	if n := old.saves.Load(); n != 8 {
		t.Fatalf("the old server got %d Save calls for 8 saves", n)
	}
	if n := cc.count("SaveBatch"); n != 1 {
		t.Fatalf("%d SaveBatch calls, want the 1 that found UNIMPLEMENTED", n)
	}
	round("load", func(i int) error {
		cp, err := c.Load(ctx, cairn.Ref{ThreadID: fmt.Sprintf("t%d", i)})
		if err == nil && string(cp.State) != fmt.Sprintf("t%d", i) {
			err = fmt.Errorf("load t%d returned the state %q", i, cp.State)
		}
		return err
	})
	if n := old.loads.Load(); n != 8 {
		t.Fatalf("the old server got %d Load calls for 8 loads", n)
	}
	if n := cc.count("BatchLoad"); n != 1 {
		t.Fatalf("%d BatchLoad calls, want the 1 that found UNIMPLEMENTED", n)
	}

	// Once the server said UNIMPLEMENTED, concurrent saves go alone from the start.
	round("save", func(i int) error {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: fmt.Sprintf("u%d", i), State: []byte(`{}`)})
		return err
	})
	if n := cc.count("SaveBatch"); n != 1 {
		t.Fatalf("%d SaveBatch calls after UNIMPLEMENTED, want no new one", n)
	}
	if n := old.saves.Load(); n != 16 {
		t.Fatalf("the old server got %d Save calls for 16 saves", n)
	}
}

// batchCalls records the item count of each SaveBatch and BatchLoad call and
// whether the server refused it whole for its size (INVALID_ARGUMENT naming
// the batch's field; RESOURCE_EXHAUSTED).
type batchCalls struct {
	mu      sync.Mutex
	sent    map[string][]int // method -> items of each call
	refused map[string][]int // method -> items of each refused call
}

func (b *batchCalls) option() cairn.Option {
	b.sent, b.refused = map[string][]int{}, map[string][]int{}
	return cairn.WithDialOptions(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			name, n := path.Base(method), 0
			switch r := req.(type) {
			case *cairnv1.SaveBatchRequest:
				n = len(r.GetSaves())
			case *cairnv1.BatchLoadRequest:
				n = len(r.GetLoads())
			default:
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			b.mu.Lock()
			defer b.mu.Unlock()
			b.sent[name] = append(b.sent[name], n)
			var ce *cairn.Error
			if errors.As(cairn.Wrap(err), &ce) && (ce.Code == codes.ResourceExhausted ||
				ce.Code == codes.InvalidArgument && (ce.Field() == "saves" || ce.Field() == "loads")) {
				b.refused[name] = append(b.refused[name], n)
			}
			return err
		}))
}

// limitAfter is the batch limit the refusals leave: half the smallest refused
// batch (at least 1), or start when none was refused.
func limitAfter(start int, refused []int) int {
	for _, n := range refused {
		start = min(start, max(1, n/2))
	}
	return start
}

func TestBatchTooLargeForTheServerGoesAloneAndLaterBatchesShrink(t *testing.T) {
	small := testserver.Start(t, "--max-batch-items", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc, bc := newCalls(), &batchCalls{}
	c, err := cairn.Dial(ctx, small, cairn.WithInsecure(), cc.option(), bc.option()) // coalesce 4 by default
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	startSaves, startLoads := cairn.BatchLimits(c)

	// The first saves are held at the client, so the rest queue and leave in
	// batches larger than the server takes.
	cc.holdCalls("Save")
	threads := threadIDs(t, 40)
	for i, err := range saveAll(t, c, cc, threads) {
		if err != nil {
			t.Fatalf("save %d to a server taking 3 items per batch: %v", i, err)
		}
	}

	got, errs := loadAllHeld(ctx, c, cc, threads)
	for i, th := range threads {
		if errs[i] != nil || !bytes.Equal(got[i].State, state36k(th)) {
			t.Fatalf("load %d from a server taking 3 items per batch: %v", i, errs[i])
		}
	}

	bc.mu.Lock()
	defer bc.mu.Unlock()
	t.Logf("SaveBatch calls %v (refused %v), BatchLoad calls %v (refused %v)",
		bc.sent["SaveBatch"], bc.refused["SaveBatch"], bc.sent["BatchLoad"], bc.refused["BatchLoad"])
	saves, loads := cairn.BatchLimits(c)
	for _, k := range []struct {
		kind, method string
		start, limit int
	}{{"save", "SaveBatch", startSaves, saves}, {"load", "BatchLoad", startLoads, loads}} {
		refused := bc.refused[k.method]
		if len(refused) == 0 {
			t.Fatalf("no %s call was refused: the %ss did not queue into batches larger than 3", k.method, k.kind)
		}
		if want := limitAfter(k.start, refused); k.limit != want || k.limit >= k.start {
			t.Fatalf("the %s coalescer's batch limit is %d after refusals of %v, want %d (from %d)",
				k.kind, k.limit, refused, want, k.start)
		}
	}
}

// loadAllHeld loads the head of every thread from its own goroutine while cc holds the Load calls, so every load
// has queued before the first call returns; then it lets them go and returns each load's result and error.
func loadAllHeld(ctx context.Context, c *cairn.Client, cc *calls, threads []string) ([]*cairn.Checkpoint, []error) {
	cc.holdCalls("Load")
	errs := make([]error, len(threads))
	got := make([]*cairn.Checkpoint, len(threads))
	allAtOnce(len(threads), cc, func(i int) {
		got[i], errs[i] = c.Load(ctx, cairn.Ref{ThreadID: threads[i]})
	})
	return got, errs
}
