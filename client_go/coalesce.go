package cairn

// Concurrent calls of one kind, sent together as one batch call.
//
// A graph runtime runs many graphs in one process, and each saves after every
// step. Sent one call each, every save pays gRPC's per-call cost at both ends:
// on a 37 KB state that is most of the server's CPU per save (a bare echo
// costs about what the save's own work does) and much of the client's. A
// coalescer keeps that cost per batch instead:
//
//   - a call goes straight out when none of its kind is in flight, so a lone
//     caller waits for nothing;
//   - calls made while one is in flight queue; another sender starts once
//     minBatch of them wait (up to maxInflight senders), and each sender takes
//     a share of the queue (max(minBatch, ceil(queued / free senders)), up to
//     maxItems and maxBytes) as one batch call (SaveBatch, BatchLoad), then
//     goes on while calls wait.
//
// No timer, the same rule as the server's group commit. Each caller keeps its
// own context: a call sent alone goes with the caller's ctx, a batch with the
// latest deadline of its items, and a caller whose ctx ends first returns at
// once with its context's error, as its unary call would have. A batch call
// that fails as a whole fails each of its items with that error, except when
// the server refused the batch itself: without the batch method
// (UNIMPLEMENTED) every item and every later call goes on its own; over the
// server's batch limits (INVALID_ARGUMENT, RESOURCE_EXHAUSTED: more items than
// its --max-batch-items, or a message larger than it takes) the items whose
// callers still wait go on their own and later batches are half as large (in
// items and in bytes), so each caller gets the answer its own call would have.
// Closing the client ends the calls on the wire, and the queued ones fail at
// once on the closed connection: every waiting caller is answered then, not at
// its deadline. It is the design of the Python client's
// cairn_client/coalesce.py.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// DefaultCoalesce is the default of WithCoalesce.
const DefaultCoalesce = 4

// A batch call's bounds: the server takes up to --max-batch-items (1000) per
// call, and its commit and response budgets cut larger ones anyway; these keep
// one batch's latency near a single call's.
const (
	batchItems = 64
	batchBytes = 4 << 20
)

// minBatch is how many calls must wait before a second sender starts. At 4
// graphs this took the server's CPU per save from ~800-1,100 to ~560-630 µs at
// the same or lower latency (calls going alone each paid gRPC's per-call
// cost); at 32 it changed nothing measurable (measured with the Python client,
// whose coalescer this one follows).
const minBatch = 4

// outcome is the answer to one call: a response or an *Error.
type outcome[Resp any] struct {
	resp Resp
	err  error
}

// pending is one queued call.
type pending[Req, Resp any] struct {
	ctx  context.Context
	req  Req
	done chan outcome[Resp] // buffered: settled once, whether or not the caller still waits
	left atomic.Bool        // the caller's ctx ended; a batch not yet sent skips it
}

// coalescer sends calls of one kind (saves; loads) alone while few are in
// flight, and together once more wait; see the top of this file.
type coalescer[Req, Resp any] struct {
	one  func(ctx context.Context, req Req) (Resp, error)
	many func(ctx context.Context, reqs []Req) ([]outcome[Resp], error) // one outcome per request, in order
	// retryAlone picks the item errors a batch caused (a response budget its
	// items shared) that the unary call would not give: such an item is sent
	// again on its own.
	retryAlone  func(error) bool
	size        func(Req) int // a request's size in bytes
	maxInflight int

	mu       sync.Mutex
	maxItems int // lowered when the server refuses a batch as too large
	maxBytes int // the same; the first request of a batch always goes
	queue    []*pending[Req, Resp]
	inflight int  // sender goroutines
	sending  int  // of them, those with a call on the wire
	batching bool // false once the server said it has no batch method
}

// call returns the response to req, sent alone or in a batch.
func (c *coalescer[Req, Resp]) call(ctx context.Context, req Req) (Resp, error) {
	var zero Resp
	// A caller's outgoing metadata belongs to its own call; a batch carries no caller's.
	if md, ok := metadata.FromOutgoingContext(ctx); ok && md.Len() > 0 {
		return c.one(ctx, req)
	}
	p := &pending[Req, Resp]{ctx: ctx, req: req, done: make(chan outcome[Resp], 1)}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	// One sender goes at once; another starts only once a batch's worth waits,
	// so low concurrency pays a call per few saves rather than one each (most
	// of a small call's CPU is gRPC's per call), and high concurrency still
	// keeps maxInflight batches on the wire.
	if c.inflight == 0 || (c.inflight < c.maxInflight && len(c.queue) >= minBatch) {
		c.inflight++
		go c.drain()
	}
	c.mu.Unlock()
	select {
	case o := <-p.done:
		return o.resp, o.err
	case <-ctx.Done():
		p.left.Store(true)
		select { // an answer that came with the ctx's end wins
		case o := <-p.done:
			return o.resp, o.err
		default:
		}
		return zero, wrap(status.FromContextError(ctx.Err()).Err())
	}
}

// take removes the next batch from the queue: calls whose callers still wait,
// up to maxItems and maxBytes. c.mu is held.
func (c *coalescer[Req, Resp]) take() []*pending[Req, Resp] {
	limit := 1
	if c.batching {
		// Callers woken by one answer call again together: a share of the queue
		// per free sender (not all of it for the first) keeps maxInflight
		// batches on the wire, so the server works on some while others travel.
		free := max(1, c.maxInflight-c.sending)
		limit = min(c.maxItems, max(minBatch, (len(c.queue)+free-1)/free))
	}
	var batch []*pending[Req, Resp]
	total, taken := 0, 0
	for _, p := range c.queue {
		if len(batch) >= limit {
			break
		}
		if p.left.Load() {
			taken++
			continue
		}
		total += c.size(p.req)
		if len(batch) > 0 && total > c.maxBytes {
			break
		}
		batch = append(batch, p)
		taken++
	}
	clear(c.queue[:taken]) // let the taken calls be collected
	c.queue = c.queue[taken:]
	return batch
}

// drain is a sender: it sends batches until the queue is empty.
func (c *coalescer[Req, Resp]) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > 0 {
		batch := c.take()
		if len(batch) == 0 {
			continue
		}
		c.sending++
		batching := c.batching
		c.mu.Unlock()
		if len(batch) == 1 || !batching {
			c.sendOne(batch[0])
		} else {
			c.sendMany(batch)
		}
		c.mu.Lock()
		c.sending--
	}
	c.inflight--
}

func (c *coalescer[Req, Resp]) sendOne(p *pending[Req, Resp]) {
	resp, err := c.one(p.ctx, p.req)
	p.done <- outcome[Resp]{resp, err}
}

// sendAlone sends each call whose caller still waits on its own, concurrently.
func (c *coalescer[Req, Resp]) sendAlone(ps []*pending[Req, Resp]) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.left.Load() {
			continue
		}
		wg.Go(func() { c.sendOne(p) })
	}
	wg.Wait()
}

func (c *coalescer[Req, Resp]) sendMany(batch []*pending[Req, Resp]) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	reqs := make([]Req, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	answers, err := c.many(ctx, reqs)
	if err != nil {
		if status.Code(err) == codes.Unimplemented { // a server older than the batch method
			c.mu.Lock()
			c.batching = false
			c.mu.Unlock()
			c.sendAlone(batch)
			return
		}
		if code := status.Code(err); code == codes.InvalidArgument || code == codes.ResourceExhausted {
			// More items or bytes than this server takes in one call (its
			// --max-batch-items, its message limit): these go alone, later
			// batches half as large. min: a refusal answered late (for a batch
			// sent before an earlier refusal shrank the limits) keeps them.
			total := 0
			for _, p := range batch {
				total += c.size(p.req)
			}
			c.mu.Lock()
			c.maxItems = min(c.maxItems, max(1, len(batch)/2))
			c.maxBytes = min(c.maxBytes, max(1, total/2))
			c.mu.Unlock()
			c.sendAlone(batch)
			return
		}
		for _, p := range batch {
			p.done <- outcome[Resp]{err: err}
		}
		return
	}
	var alone []*pending[Req, Resp]
	for i, p := range batch {
		if answers[i].err != nil && c.retryAlone != nil && c.retryAlone(answers[i].err) {
			alone = append(alone, p)
		} else {
			p.done <- answers[i]
		}
	}
	c.sendAlone(alone)
}

// batchContext bounds a batch call by the latest deadline of its calls (none
// when one of them has none). It is not any caller's ctx: one caller leaving
// must not cancel the others' saves.
func batchContext[Req, Resp any](batch []*pending[Req, Resp]) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// startCoalescing sets up the coalescers of c's saves and loads: up to n
// senders of a kind on the wire per connection.
func (c *Client) startCoalescing(n, conns, maxMessage int) {
	inflight := n * conns
	c.saves = &coalescer[*cairnv1.SaveRequest, *cairnv1.SaveResponse]{
		one: func(ctx context.Context, r *cairnv1.SaveRequest) (*cairnv1.SaveResponse, error) {
			resp, err := c.rpc.Save(ctx, r)
			return resp, wrap(err)
		},
		many:        c.saveMany,
		size:        func(r *cairnv1.SaveRequest) int { return len(r.GetCheckpoint().GetState()) + 256 }, // room for ids and metadata
		maxInflight: inflight, maxItems: batchItems, maxBytes: min(batchBytes, maxMessage), batching: true,
	}
	c.loads = &coalescer[*cairnv1.LoadRequest, *cairnv1.LoadResponse]{
		one: func(ctx context.Context, r *cairnv1.LoadRequest) (*cairnv1.LoadResponse, error) {
			resp, err := c.rpc.Load(ctx, r)
			return resp, wrap(err)
		},
		many: c.loadMany,
		size: func(*cairnv1.LoadRequest) int { return 64 },
		// A batch item refused for the response budget its batch shared: alone, it may fit.
		retryAlone:  func(err error) bool { return status.Code(err) == codes.ResourceExhausted },
		maxInflight: inflight, maxItems: batchItems, maxBytes: batchBytes, batching: true,
	}
}

func (c *Client) saveMany(ctx context.Context, reqs []*cairnv1.SaveRequest) ([]outcome[*cairnv1.SaveResponse], error) {
	resp, err := c.rpc.SaveBatch(ctx, &cairnv1.SaveBatchRequest{Saves: reqs})
	if err != nil {
		return nil, wrap(err)
	}
	return answers(len(reqs), resp.GetResults(), (*cairnv1.SaveBatchResult).GetSave, (*cairnv1.SaveBatchResult).GetError)
}

func (c *Client) loadMany(ctx context.Context, reqs []*cairnv1.LoadRequest) ([]outcome[*cairnv1.LoadResponse], error) {
	resp, err := c.rpc.BatchLoad(ctx, &cairnv1.BatchLoadRequest{Loads: reqs})
	if err != nil {
		return nil, wrap(err)
	}
	return answers(len(reqs), resp.GetResults(), (*cairnv1.BatchLoadResult).GetLoad, (*cairnv1.BatchLoadResult).GetError)
}

// answers turns a batch response's results into one outcome per request.
func answers[Result, Resp any](n int, results []Result, ok func(Result) Resp, failed func(Result) *cairnv1.ItemError) ([]outcome[Resp], error) {
	if len(results) != n {
		return nil, wrap(status.Errorf(codes.Internal, "cairn: the server answered %d of a batch of %d", len(results), n))
	}
	out := make([]outcome[Resp], n)
	for i, r := range results {
		if e := failed(r); e != nil {
			out[i].err = itemError(e)
		} else {
			out[i].resp = ok(r)
		}
	}
	return out, nil
}
