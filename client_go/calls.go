package cairn

import (
	"context"
	"fmt"
	"io"
	"iter"

	"github.com/google/uuid"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// SaveOption modifies a save.
type SaveOption func(*cairnv1.SaveRequest)

// ExpectHead makes the save a compare-and-set: it fails with ErrConflict
// (whose *Error.CurrentHeadID names the actual head) unless the head of the
// thread's namespace is id.
func ExpectHead(id string) SaveOption {
	return func(r *cairnv1.SaveRequest) { r.ExpectedHeadId = id }
}

// ExpectEmpty makes the save fail with ErrConflict unless the thread's
// namespace holds no checkpoint yet.
func ExpectEmpty() SaveOption { return func(r *cairnv1.SaveRequest) { r.ExpectEmpty = true } }

// ReplaceExisting upserts: a stored checkpoint with the same id is replaced
// instead of failing with ErrAlreadyExists.
func ReplaceExisting() SaveOption { return func(r *cairnv1.SaveRequest) { r.ReplaceExisting = true } }

// Async acknowledges the save once the server's hot cache holds it
// (DURABILITY_ASYNC); a server crash may lose it.
func Async() SaveOption {
	return func(r *cairnv1.SaveRequest) { r.Durability = cairnv1.Durability_DURABILITY_ASYNC }
}

func saveRequest(cp *Checkpoint, opts []SaveOption) (*cairnv1.SaveRequest, error) {
	p, err := cp.toProto()
	if err != nil {
		return nil, err
	}
	if p.CheckpointId == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("cairn: checkpoint id: %w", err)
		}
		p.CheckpointId = id.String()
	}
	req := &cairnv1.SaveRequest{Checkpoint: p}
	for _, o := range opts {
		o(req)
	}
	return req, nil
}

// Save stores cp and makes it the head of its thread's namespace. When cp.ID
// is empty a UUIDv7 is generated (cp is not modified; see SaveResult), so a
// retried save is idempotent. It returns what the server assigned; a retry of
// an identical save reports SaveResult.AlreadyExisted.
//
// Errors: ErrConflict when an ExpectHead or ExpectEmpty compare-and-set lost
// (*Error.CurrentHeadID names the head); ErrAlreadyExists when cp.ID is taken
// by different content (unless ReplaceExisting); ErrResourceExhausted when the
// state exceeds the server's --max-state-bytes; ErrRunStopped when saved
// WithRunLease and the lease is no longer current.
func (c *Client) Save(ctx context.Context, cp *Checkpoint, opts ...SaveOption) (*SaveResult, error) {
	req, err := saveRequest(cp, opts)
	if err != nil {
		return nil, err
	}
	c.wire.compress(req)
	var resp *cairnv1.SaveResponse
	if c.saves != nil { // WithCoalesce: may go in a SaveBatch with other goroutines' saves
		ctx, cancel := c.bounded(ctx)
		defer cancel()
		resp, err = c.saves.call(ctx, req)
	} else {
		resp, err = c.rpc.Save(ctx, req)
		err = wrap(err)
	}
	if err != nil {
		return nil, err
	}
	c.wire.saved(resp)
	return fromSave(resp), nil
}

// bounded gives ctx the client's WithDefaultTimeout when it has no deadline,
// so that a call queued for a batch is bounded from its start, as the
// timeout interceptor bounds a call from when it is sent.
func (c *Client) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// SaveItem is one save of SaveBatch: a checkpoint and the options of its save.
type SaveItem struct {
	Checkpoint *Checkpoint
	Options    []SaveOption
}

// SaveBatchResult is the outcome of one save of SaveBatch: either SaveResult
// or Err (an *Error) is set.
type SaveBatchResult struct {
	*SaveResult
	Err error
}

// SaveBatch runs many saves in one call, each under the rules of Save (its
// own options, e.g. an ExpectHead of its own); they commit together and each
// has its own result, in the order of items, so a failed save (ErrConflict,
// ErrAlreadyExists, ...) does not fail the others. Saves of one thread's
// namespace apply in order. The returned error is set only when the batch as
// a whole failed (ErrInvalidArgument for more items than the server's
// --max-batch-items; a server without SaveBatch fails it with
// codes.Unimplemented). Concurrent Save calls already travel in SaveBatch
// calls by themselves (WithCoalesce); SaveBatch is for a caller that holds
// many saves at once.
func (c *Client) SaveBatch(ctx context.Context, items []SaveItem) ([]SaveBatchResult, error) {
	req := &cairnv1.SaveBatchRequest{Saves: make([]*cairnv1.SaveRequest, len(items))}
	for i, it := range items {
		r, err := saveRequest(it.Checkpoint, it.Options)
		if err != nil {
			return nil, fmt.Errorf("save %d: %w", i, err)
		}
		c.wire.compress(r)
		req.Saves[i] = r
	}
	if len(items) == 0 {
		return nil, nil
	}
	resp, err := c.saveMany(ctx, req.Saves)
	if err != nil {
		return nil, err
	}
	out := make([]SaveBatchResult, len(resp))
	for i, r := range resp {
		if r.err != nil {
			out[i].Err = r.err
		} else {
			c.wire.saved(r.resp)
			out[i].SaveResult = fromSave(r.resp)
		}
	}
	return out, nil
}

// SaveStreamResult is the outcome of one checkpoint of SaveStream: either
// SaveResult or Err (an *Error) is set.
type SaveStreamResult struct {
	*SaveResult
	Err error
}

// SaveStream saves many checkpoints over one stream, in order, applying opts
// to each. A failed item is reported in its result and does not stop the
// others; the returned error is set only when the stream itself failed (then
// the results received so far are returned with it).
func (c *Client) SaveStream(ctx context.Context, cps []*Checkpoint, opts ...SaveOption) ([]SaveStreamResult, error) {
	reqs := make([]*cairnv1.SaveRequest, len(cps))
	for i, cp := range cps {
		r, err := saveRequest(cp, opts)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", i, err)
		}
		reqs[i] = r
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also stops the sender when we return early
	stream, err := c.rpc.SaveStream(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	sent := make(chan error, 1)
	go func() { // send concurrently so flow control can't deadlock us
		for _, r := range reqs {
			c.wire.compress(r) // here, so that items sent after the first response can go compressed
			if err := stream.Send(&cairnv1.SaveStreamRequest{Save: r}); err != nil {
				sent <- err // io.EOF: the real error comes from Recv
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	results := make([]SaveStreamResult, 0, len(reqs))
	for range reqs {
		resp, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("cairn: SaveStream ended after %d of %d responses", len(results), len(reqs))
			}
			return results, wrap(err)
		}
		if resp.GetError() != nil {
			results = append(results, SaveStreamResult{Err: itemError(resp.GetError())})
		} else {
			c.wire.saved(resp.GetSave())
			results = append(results, SaveStreamResult{SaveResult: fromSave(resp.GetSave())})
		}
	}
	if err := <-sent; err != nil && err != io.EOF {
		return results, wrap(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("cairn: SaveStream sent more responses than requests")
		}
		return results, wrap(err)
	}
	return results, nil
}

// Load returns a checkpoint with its pending writes: ref.ID, or the head of
// (ref.ThreadID, ref.Namespace) when ref.ID is empty. A missing checkpoint or
// an empty thread is ErrNotFound (reason CHECKPOINT_NOT_FOUND or THREAD_EMPTY).
func (c *Client) Load(ctx context.Context, ref Ref) (*Checkpoint, error) {
	req := ref.toProto(c.wire.accept())
	var resp *cairnv1.LoadResponse
	var err error
	if c.loads != nil { // WithCoalesce: may go in a BatchLoad with other goroutines' loads
		ctx, cancel := c.bounded(ctx)
		defer cancel()
		resp, err = c.loads.call(ctx, req)
	} else {
		resp, err = c.rpc.Load(ctx, req)
		err = wrap(err)
	}
	if err != nil {
		return nil, err
	}
	return fromLoad(resp, &c.wire)
}

// BatchLoadResult is the outcome of one load of BatchLoad: either Checkpoint
// or Err (an *Error) is set.
type BatchLoadResult struct {
	Checkpoint *Checkpoint
	Err        error
}

// BatchLoad runs many loads in one call; results are in the order of refs,
// each with its own error. The returned error is set only when the batch as a
// whole failed (e.g. ErrInvalidArgument for too many refs).
func (c *Client) BatchLoad(ctx context.Context, refs []Ref) ([]BatchLoadResult, error) {
	req := &cairnv1.BatchLoadRequest{Loads: make([]*cairnv1.LoadRequest, len(refs))}
	for i, r := range refs {
		req.Loads[i] = r.toProto(c.wire.accept())
	}
	resp, err := c.rpc.BatchLoad(ctx, req)
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]BatchLoadResult, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		if r.GetError() != nil {
			out[i].Err = itemError(r.GetError())
		} else {
			out[i].Checkpoint, out[i].Err = fromLoad(r.GetLoad(), &c.wire)
		}
	}
	return out, nil
}

// Namespace returns a pointer to ns, for ListQuery.Namespace.
func Namespace(ns string) *string { return &ns }

// ListQuery selects checkpoints for List.
type ListQuery struct {
	ThreadID       string         // "" lists every thread
	Namespace      *string        // nil lists every namespace; Namespace("") only the root
	MetadataFilter map[string]any // checkpoints whose metadata contains this JSON
	Before         string         // only checkpoints older than this id
	PageSize       int32          // 0: server default (100); capped at 1000
	PageToken      string         // resume from a Page.NextPageToken
	IncludeState   bool           // also return State (off by default: cheap listing)
	IncludeWrites  bool           // also return PendingWrites
}

// Page is one page of List.
type Page struct {
	Checkpoints   []*Checkpoint // newest first
	NextPageToken string        // "" on the last page
}

// ListPage fetches the single page of q named by q.PageToken. Its
// NextPageToken is "" on the last page. ErrInvalidArgument for a bad filter,
// page size or token.
func (c *Client) ListPage(ctx context.Context, q ListQuery) (*Page, error) {
	filter, err := toStruct(q.MetadataFilter)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.List(ctx, &cairnv1.ListRequest{
		ThreadId:             q.ThreadID,
		Namespace:            q.Namespace,
		MetadataFilter:       filter,
		BeforeCheckpointId:   q.Before,
		PageSize:             q.PageSize,
		PageToken:            q.PageToken,
		IncludeState:         q.IncludeState,
		IncludeWrites:        q.IncludeWrites,
		AcceptStateEncodings: c.wire.accept(),
	})
	if err != nil {
		return nil, wrap(err)
	}
	page := &Page{NextPageToken: resp.GetNextPageToken()}
	type key struct{ thread, ns, id string }
	byKey := map[key]*Checkpoint{}
	for _, p := range resp.GetCheckpoints() {
		cp, err := fromProto(p, &c.wire)
		if err != nil {
			return nil, err
		}
		page.Checkpoints = append(page.Checkpoints, cp)
		byKey[key{cp.ThreadID, cp.Namespace, cp.ID}] = cp
	}
	for _, w := range fromWrites(resp.GetPendingWrites()) {
		if cp := byKey[key{w.ThreadID, w.Namespace, w.CheckpointID}]; cp != nil {
			cp.PendingWrites = append(cp.PendingWrites, w)
		}
	}
	return page, nil
}

// ListPages iterates over the pages of q, starting at q.PageToken.
//
//	for page, err := range c.ListPages(ctx, q) { ... }
func (c *Client) ListPages(ctx context.Context, q ListQuery) iter.Seq2[*Page, error] {
	return func(yield func(*Page, error) bool) {
		for {
			page, err := c.ListPage(ctx, q)
			if !yield(page, err) || err != nil || page.NextPageToken == "" {
				return
			}
			q.PageToken = page.NextPageToken
		}
	}
}

// List iterates over the checkpoints of q, newest first, fetching pages as
// needed. The iteration ends after the first error.
//
//	for cp, err := range c.List(ctx, cairn.ListQuery{ThreadID: "t1"}) { ... }
func (c *Client) List(ctx context.Context, q ListQuery) iter.Seq2[*Checkpoint, error] {
	return func(yield func(*Checkpoint, error) bool) {
		for page, err := range c.ListPages(ctx, q) {
			if err != nil {
				yield(nil, err)
				return
			}
			for _, cp := range page.Checkpoints {
				if !yield(cp, nil) {
					return
				}
			}
		}
	}
}

// ThreadQuery selects threads for ListThreads.
type ThreadQuery struct {
	MetadataFilter map[string]any // threads whose head's metadata contains this JSON
	PageSize       int32
	PageToken      string
}

// ListThreads iterates over the caller's threads, most recently updated first.
func (c *Client) ListThreads(ctx context.Context, q ThreadQuery) iter.Seq2[*ThreadInfo, error] {
	return func(yield func(*ThreadInfo, error) bool) {
		filter, err := toStruct(q.MetadataFilter)
		if err != nil {
			yield(nil, err)
			return
		}
		req := &cairnv1.ListThreadsRequest{PageSize: q.PageSize, PageToken: q.PageToken, MetadataFilter: filter}
		for {
			resp, err := c.rpc.ListThreads(ctx, req)
			if err != nil {
				yield(nil, wrap(err))
				return
			}
			for _, t := range resp.GetThreads() {
				info := &ThreadInfo{
					ThreadID:        t.GetThreadId(),
					CheckpointCount: t.GetCheckpointCount(),
					HeadID:          t.GetHeadCheckpointId(),
					HeadMetadata:    fromStruct(t.GetHeadMetadata()),
					HeadNodeName:    t.GetHeadNodeName(),
					HeadNextNodes:   t.GetHeadNextNodes(),
				}
				if t.GetUpdatedAt() != nil {
					info.UpdatedAt = t.GetUpdatedAt().AsTime()
				}
				if !yield(info, nil) {
					return
				}
			}
			if resp.GetNextPageToken() == "" {
				return
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
}

// Delete removes one checkpoint (ref.ID is required) and its pending writes.
// It reports whether there was anything to delete; a missing checkpoint is
// not an error, so a retry is safe.
func (c *Client) Delete(ctx context.Context, ref Ref) (bool, error) {
	resp, err := c.rpc.Delete(ctx, &cairnv1.DeleteRequest{ThreadId: ref.ThreadID, Namespace: ref.Namespace, CheckpointId: ref.ID})
	if err != nil {
		return false, wrap(err)
	}
	return resp.GetDeleted(), nil
}

// Clear removes a whole thread (every namespace) and returns how many
// checkpoints it held (0 for an empty or unknown thread, which is not an
// error, so a retry is safe).
func (c *Client) Clear(ctx context.Context, threadID string) (int64, error) {
	resp, err := c.rpc.Clear(ctx, &cairnv1.ClearRequest{ThreadId: threadID})
	if err != nil {
		return 0, wrap(err)
	}
	return resp.GetDeletedCount(), nil
}

// TaskWrites are the pending writes of one task.
type TaskWrites struct {
	TaskID   string // required
	TaskPath string // the task's path in the graph, for ordering
	Writes   []Write
	// Replace overwrites writes stored at the same (TaskID, Idx) instead of
	// failing with ErrAlreadyExists when their value differs.
	Replace bool
	// RunLease fences the writes: they are stored only while it is its run's
	// current lease; otherwise ErrRunStopped and nothing is stored.
	RunLease *RunLease
}

// PutWrites stores the writes of one task against the checkpoint ref (ref.ID
// is required; ErrNotFound when it doesn't exist) and returns how many were
// newly stored or replaced.
func (c *Client) PutWrites(ctx context.Context, ref Ref, tw TaskWrites) (int32, error) {
	req := &cairnv1.PutWritesRequest{
		ThreadId:     ref.ThreadID,
		Namespace:    ref.Namespace,
		CheckpointId: ref.ID,
		TaskId:       tw.TaskID,
		TaskPath:     tw.TaskPath,
		Replace:      tw.Replace,
		RunLease:     tw.RunLease.toProto(),
		Writes:       make([]*cairnv1.Write, len(tw.Writes)),
	}
	for i, w := range tw.Writes {
		req.Writes[i] = &cairnv1.Write{Idx: w.Idx, Channel: w.Channel, ValueType: w.ValueType, Value: w.Value}
	}
	resp, err := c.rpc.PutWrites(ctx, req)
	if err != nil {
		return 0, wrap(err)
	}
	return resp.GetWrittenCount(), nil
}

// CopyThread copies every checkpoint and write of thread src into the empty
// thread dst (ErrConflict when dst is not empty) and returns how many
// checkpoints it copied.
func (c *Client) CopyThread(ctx context.Context, src, dst string) (int64, error) {
	resp, err := c.rpc.CopyThread(ctx, &cairnv1.CopyThreadRequest{SourceThreadId: src, TargetThreadId: dst})
	if err != nil {
		return 0, wrap(err)
	}
	return resp.GetCopiedCount(), nil
}

// PruneStrategy says what Prune keeps.
type PruneStrategy int32

const (
	// KeepLatest keeps the newest checkpoints of each namespace along the
	// head's parent chain.
	KeepLatest = PruneStrategy(cairnv1.PruneStrategy_PRUNE_STRATEGY_KEEP_LATEST)
	// DeleteAll removes every checkpoint of the threads.
	DeleteAll = PruneStrategy(cairnv1.PruneStrategy_PRUNE_STRATEGY_DELETE_ALL)
)

// Prune thins out threads and returns how many checkpoints it removed. With
// KeepLatest, keep checkpoints per namespace survive (0 means 1).
func (c *Client) Prune(ctx context.Context, threadIDs []string, strategy PruneStrategy, keep int32) (int64, error) {
	resp, err := c.rpc.Prune(ctx, &cairnv1.PruneRequest{
		ThreadIds: threadIDs,
		Strategy:  cairnv1.PruneStrategy(strategy),
		KeepCount: keep,
	})
	if err != nil {
		return 0, wrap(err)
	}
	return resp.GetDeletedCount(), nil
}

// DeleteRuns removes every checkpoint whose metadata "run_id" is one of
// runIDs, in every thread, and returns how many it removed.
func (c *Client) DeleteRuns(ctx context.Context, runIDs ...string) (int64, error) {
	resp, err := c.rpc.DeleteRuns(ctx, &cairnv1.DeleteRunsRequest{RunIds: runIDs})
	if err != nil {
		return 0, wrap(err)
	}
	return resp.GetDeletedCount(), nil
}
