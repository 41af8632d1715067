package cairn_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	cairn "github.com/cairn-dev/cairn/client_go"
	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

const zstdEnc = cairnv1.StateEncoding_STATE_ENCODING_ZSTD

// agentStates returns n different JSON states of about 37 KB that compress
// like real agent transcripts (a few times smaller).
func agentStates(n int) [][]byte {
	words := []string{"order", "refund", "shipping", "the", "customer", "asked", "tool", "result", "status",
		"delivered", "tracking", "number", "please", "check", "account", "invoice", "payment", "failed"}
	r := rand.New(rand.NewPCG(7, 11))
	out := make([][]byte, n)
	for i := range out {
		var b bytes.Buffer
		b.WriteString(`{"messages":[`)
		for step := 0; b.Len() < 37<<10; step++ {
			fmt.Fprintf(&b, `{"role":%q,"id":"%016x","content":"`, []string{"user", "assistant", "tool"}[step%3], r.Uint64())
			for range 20 + r.IntN(40) {
				b.WriteString(words[r.IntN(len(words))] + " ")
			}
			b.WriteString(`"},`)
		}
		fmt.Fprintf(&b, `{"role":"user","content":"state %d"}]}`, i)
		out[i] = b.Bytes()
	}
	return out
}

// wireLog records the state encodings of the checkpoints a client sends and
// receives, through interceptors, i.e. what went over the wire.
type wireLog struct {
	mu   sync.Mutex
	sent []cairnv1.StateEncoding // Save and SaveStream requests, in order
	got  []cairnv1.StateEncoding // checkpoints with a state in Load, BatchLoad and List responses
}

func (l *wireLog) options() cairn.Option {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*cairnv1.SaveRequest); ok {
			l.add(&l.sent, r.GetCheckpoint())
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		switch r := reply.(type) {
		case *cairnv1.LoadResponse:
			l.add(&l.got, r.GetCheckpoint())
		case *cairnv1.BatchLoadResponse:
			for _, item := range r.GetResults() {
				l.add(&l.got, item.GetLoad().GetCheckpoint())
			}
		case *cairnv1.ListResponse:
			l.add(&l.got, r.GetCheckpoints()...)
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		return &loggedStream{s, l}, err
	}
	return cairn.WithDialOptions(grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
}

func (l *wireLog) add(to *[]cairnv1.StateEncoding, cps ...*cairnv1.Checkpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cp := range cps {
		if len(cp.GetState()) > 0 {
			*to = append(*to, cp.GetStateEncoding())
		}
	}
}

// take returns and forgets what was recorded.
func (l *wireLog) take() (sent, got []cairnv1.StateEncoding) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent, got, l.sent, l.got = l.sent, l.got, nil, nil
	return sent, got
}

type loggedStream struct {
	grpc.ClientStream
	log *wireLog
}

func (s *loggedStream) SendMsg(m any) error {
	if r, ok := m.(*cairnv1.SaveStreamRequest); ok {
		s.log.add(&s.log.sent, r.GetSave().GetCheckpoint())
	}
	return s.ClientStream.SendMsg(m)
}

func all(encs []cairnv1.StateEncoding, want cairnv1.StateEncoding, n int) bool {
	return len(encs) == n && !slices.ContainsFunc(encs, func(e cairnv1.StateEncoding) bool { return e != want })
}

func TestCompressStatesRoundTrip(t *testing.T) {
	ctx := context.Background()
	var log wireLog
	c := dial(t, cairn.WithCompressStates(), log.options())
	plain := dial(t)
	th := thread(t)
	states, orig := agentStates(4), agentStates(4)

	// The first save goes as is: the client doesn't know yet that the server accepts zstd.
	var ids []string
	for i, state := range states {
		cp := &cairn.Checkpoint{ThreadID: th, State: state, StateType: "json"}
		if i > 0 {
			cp.ParentID = ids[i-1]
		}
		res := save(t, c, cp)
		if !bytes.Equal(cp.State, orig[i]) {
			t.Fatalf("save %d changed the caller's state", i)
		}
		ids = append(ids, res.CheckpointID)
	}
	sent, _ := log.take()
	if !slices.Equal(sent, []cairnv1.StateEncoding{0, zstdEnc, zstdEnc, zstdEnc}) {
		t.Fatalf("saves went out as %v, want the first as is and then zstd", sent)
	}
	smallThread := thread(t)
	small := save(t, c, &cairn.Checkpoint{ThreadID: smallThread, State: []byte(`{"small":true}`), StateType: "json"})
	if sent, _ := log.take(); !slices.Equal(sent, []cairnv1.StateEncoding{0}) {
		t.Fatalf("a small state went out as %v, want as is", sent)
	}

	for i, id := range ids {
		got, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: id})
		if err != nil || !bytes.Equal(got.State, states[i]) || got.StateSize != int64(len(states[i])) {
			t.Fatalf("load %s: %v (state equal: %v)", id, err, err == nil && bytes.Equal(got.State, states[i]))
		}
	}
	page, err := c.ListPage(ctx, cairn.ListQuery{ThreadID: th, IncludeState: true})
	if err != nil || len(page.Checkpoints) != len(states) {
		t.Fatalf("list: %v, %d checkpoints", err, len(page.Checkpoints))
	}
	for i, cp := range page.Checkpoints {
		if !bytes.Equal(cp.State, states[len(states)-1-i]) {
			t.Fatalf("listed state %d differs", i)
		}
	}
	refs := []cairn.Ref{}
	for _, id := range ids {
		refs = append(refs, cairn.Ref{ThreadID: th, ID: id})
	}
	batch, err := c.BatchLoad(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range batch {
		if r.Err != nil || !bytes.Equal(r.Checkpoint.State, states[i]) {
			t.Fatalf("batch load %d: %v", i, r.Err)
		}
	}
	// The server stores these as plain zstd rows (no dictionary, no
	// encryption), so it sends them as they are stored.
	if _, got := log.take(); !all(got, zstdEnc, 3*len(states)) {
		t.Fatalf("reads came as %v, want %d zstd states", got, 3*len(states))
	}

	stream := thread(t)
	var cps []*cairn.Checkpoint
	for _, state := range states {
		cps = append(cps, &cairn.Checkpoint{ThreadID: stream, State: state, StateType: "json"})
	}
	results, err := c.SaveStream(ctx, cps)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.StoredSize >= int64(len(states[i])) {
			t.Fatalf("stream save %d: %+v", i, r)
		}
	}
	if sent, _ := log.take(); !all(sent, zstdEnc, len(states)) {
		t.Fatalf("stream saves went out as %v, want zstd", sent)
	}
	streamed, err := c.Load(ctx, cairn.Ref{ThreadID: stream})
	if err != nil || !bytes.Equal(streamed.State, states[len(states)-1]) {
		t.Fatalf("load after SaveStream: %v", err)
	}

	// A client without the option reads the same bytes.
	for i, id := range ids {
		got, err := plain.Load(ctx, cairn.Ref{ThreadID: th, ID: id})
		if err != nil || !bytes.Equal(got.State, states[i]) {
			t.Fatalf("plain load %s: %v", id, err)
		}
	}
	for cp, err := range plain.List(ctx, cairn.ListQuery{ThreadID: stream, IncludeState: true}) {
		if err != nil || !slices.ContainsFunc(states, func(s []byte) bool { return bytes.Equal(s, cp.State) }) {
			t.Fatalf("plain list: %v", err)
		}
	}
	got, err := c.Load(ctx, cairn.Ref{ThreadID: smallThread, ID: small.CheckpointID})
	if err != nil || string(got.State) != `{"small":true}` {
		t.Fatalf("small state: %v", err)
	}
}

// badFrameServer answers every read with a checkpoint whose zstd frame
// doesn't hold the state_size_bytes it claims.
type badFrameServer struct {
	cairnv1.UnimplementedCheckpointStoreServer
}

func badFrame() *cairnv1.Checkpoint {
	return &cairnv1.Checkpoint{
		ThreadId: "t", CheckpointId: "c", StateType: "json", StateSizeBytes: 1000,
		State: []byte("\x28\xb5\x2f\xfd not really zstd"), StateEncoding: zstdEnc,
	}
}

func (badFrameServer) Load(context.Context, *cairnv1.LoadRequest) (*cairnv1.LoadResponse, error) {
	return &cairnv1.LoadResponse{Checkpoint: badFrame()}, nil
}

func (badFrameServer) BatchLoad(_ context.Context, r *cairnv1.BatchLoadRequest) (*cairnv1.BatchLoadResponse, error) {
	resp := &cairnv1.BatchLoadResponse{}
	for range r.GetLoads() {
		resp.Results = append(resp.Results, &cairnv1.BatchLoadResult{Load: &cairnv1.LoadResponse{Checkpoint: badFrame()}})
	}
	return resp, nil
}

func (badFrameServer) List(context.Context, *cairnv1.ListRequest) (*cairnv1.ListResponse, error) {
	return &cairnv1.ListResponse{Checkpoints: []*cairnv1.Checkpoint{badFrame()}}, nil
}

func TestBadFrameFromTheServerIsDataLoss(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cairnv1.RegisterCheckpointStoreServer(srv, badFrameServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	c, err := cairn.Dial(context.Background(), lis.Addr().String(), cairn.WithInsecure(), cairn.WithCompressStates())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	_, err = c.Load(ctx, cairn.Ref{ThreadID: "t"})
	cairnErr(t, err, cairn.ErrDataLoss, "STATE_ENCODING")
	batch, err := c.BatchLoad(ctx, []cairn.Ref{{ThreadID: "t"}})
	if err != nil || len(batch) != 1 {
		t.Fatalf("batch load: %v, %d results", err, len(batch))
	}
	cairnErr(t, batch[0].Err, cairn.ErrDataLoss, "STATE_ENCODING")
	_, err = c.ListPage(ctx, cairn.ListQuery{ThreadID: "t", IncludeState: true})
	cairnErr(t, err, cairn.ErrDataLoss, "STATE_ENCODING")
	n := 0
	for _, err := range c.List(ctx, cairn.ListQuery{ThreadID: "t", IncludeState: true}) {
		cairnErr(t, err, cairn.ErrDataLoss, "STATE_ENCODING")
		n++
	}
	if n != 1 {
		t.Fatalf("List yielded %d items, want the error alone", n)
	}
}

// WithMaxMessageBytes bounds both what gRPC receives and the states a client
// decompresses; its default lets states over gRPC's own 4 MiB through.
func TestMaxMessageBytes(t *testing.T) {
	ctx := context.Background()
	th := thread(t)
	big := bytes.Repeat(agentStates(1)[0], 5<<20/(37<<10)+1) // over 4 MiB
	res := save(t, dial(t), &cairn.Checkpoint{ThreadID: th, State: big, StateType: "json"})
	for _, c := range []*cairn.Client{dial(t), dial(t, cairn.WithCompressStates())} {
		got, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: res.CheckpointID})
		if err != nil || !bytes.Equal(got.State, big) {
			t.Fatalf("load of %d bytes: %v", len(big), err)
		}
	}
	// The stored frame (a few KB) fits in the message, the state it declares does not.
	small := dial(t, cairn.WithCompressStates(), cairn.WithMaxMessageBytes(1<<20))
	_, err := small.Load(ctx, cairn.Ref{ThreadID: th, ID: res.CheckpointID})
	ce := cairnErr(t, err, cairn.ErrDataLoss, "STATE_ENCODING")
	if want := fmt.Sprintf("declares %d bytes, over this client's max message size %d", len(big), 1<<20); !strings.Contains(ce.Message, want) {
		t.Fatalf("message %q, want it to say %q", ce.Message, want)
	}
	// Without compression the state comes as is, over that client's message size.
	_, err = dial(t, cairn.WithMaxMessageBytes(1<<20)).Load(ctx, cairn.Ref{ThreadID: th, ID: res.CheckpointID})
	cairnErr(t, err, cairn.ErrResourceExhausted, "")
}

// One compressing client, used from many goroutines (run with -race too).
func TestCompressStatesConcurrently(t *testing.T) {
	c := dial(t, cairn.WithCompressStates())
	states := agentStates(8)
	var wg sync.WaitGroup
	errs := make(chan error, len(states))
	for i, state := range states {
		wg.Go(func() {
			th := fmt.Sprintf("%s-%d", thread(t), i)
			for range 3 {
				res, err := c.Save(context.Background(), &cairn.Checkpoint{ThreadID: th, State: state, StateType: "json"})
				if err != nil {
					errs <- err
					return
				}
				got, err := c.Load(context.Background(), cairn.Ref{ThreadID: th, ID: res.CheckpointID})
				if err != nil || !bytes.Equal(got.State, state) {
					errs <- fmt.Errorf("goroutine %d: load %s: %v", i, res.CheckpointID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
