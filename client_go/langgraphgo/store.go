// Package langgraphgo stores LangGraphGo (github.com/smallnest/langgraphgo)
// checkpoints in Cairn: Store implements its store.CheckpointStore.
//
//	g.SetCheckpointConfig(graph.CheckpointConfig{Store: langgraphgo.NewStore(client), AutoSave: true})
//
// Mapping. LangGraphGo keys checkpoints by a global id and groups them by the
// metadata keys thread_id, execution_id, session_id and workflow_id. A
// checkpoint goes to the Cairn thread named by the first of those keys it has
// (thread_id first), else to Options.DefaultThread, in the namespace
// Options.Namespace (the root namespace by default), with its id as the Cairn
// checkpoint id. Its state is stored as JSON
// (state_type "json"), so any Cairn client can read it; NodeName becomes
// node_name; Version and Timestamp travel in the metadata object
// "langgraphgo", next to LangGraphGo's own metadata keys. Saves upsert, like
// LangGraphGo's SQL stores. Checkpoints other clients wrote load with
// Version 0 and their created_at as Timestamp.
//
// List and Clear(id) cover every checkpoint whose thread_id, execution_id,
// session_id or workflow_id is id (the in-memory store's semantics), plus
// anything else stored in the Cairn thread id.
//
// Loaded states are plain JSON values (map[string]any, float64, ...), as with
// LangGraphGo's SQLite and Redis stores; set Options.DecodeState (see
// JSONState) to get a typed state back, which the graph's auto-resume needs
// when its state type is not map[string]any.
//
// Inside a run executed by a Worker, saves carry the run's lease (fencing)
// and its id as the metadata key run_id.
//
// The Store uses the client as it was dialed: to move states zstd-compressed,
// dial it with cairn.WithCompressStates().
package langgraphgo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/store"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// groupKeys are the metadata keys LangGraphGo groups checkpoints by, in the
// order that picks a checkpoint's Cairn thread.
var groupKeys = []string{"thread_id", "execution_id", "session_id", "workflow_id"}

// metaKey is the metadata object holding the fields Cairn has no place for.
const metaKey = "langgraphgo"

// Options tune a Store.
type Options struct {
	// DefaultThread holds checkpoints that have none of the grouping keys
	// (default "langgraphgo-default").
	DefaultThread string
	// DecodeState turns stored JSON back into a state (default: into any).
	DecodeState func(data []byte) (any, error)
	// Namespace is the Cairn namespace (checkpoint_ns) the store keeps its
	// checkpoints in, default "" (the root). Stores with different
	// namespaces share nothing, not even checkpoint ids or thread ids, so
	// several applications (or test runs) can use one Cairn tenant.
	Namespace string
}

// Store is a LangGraphGo CheckpointStore backed by Cairn. It is safe for
// concurrent use.
type Store struct {
	c    *cairn.Client
	opts Options
	// threads remembers the Cairn thread of checkpoint ids seen, so Load and
	// Delete by id usually need no lookup.
	threads threadCache
}

// threadCache maps checkpoint ids to Cairn threads; it forgets everything
// when full, which only costs lookups.
type threadCache struct {
	mu sync.Mutex
	m  map[string]string
}

const maxCachedIDs = 10000

func (c *threadCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[id]
	return t, ok
}

func (c *threadCache) put(id, thread string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedIDs {
		c.m = map[string]string{}
	}
	c.m[id] = thread
}

func (c *threadCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

var _ store.CheckpointStore = (*Store)(nil)

// NewStore returns a CheckpointStore that keeps checkpoints in Cairn.
func NewStore(c *cairn.Client, opts ...Options) *Store {
	s := &Store{c: c}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	if s.opts.DefaultThread == "" {
		s.opts.DefaultThread = "langgraphgo-default"
	}
	if s.opts.DecodeState == nil {
		s.opts.DecodeState = func(b []byte) (v any, err error) { return v, json.Unmarshal(b, &v) }
	}
	return s
}

// JSONState returns an Options.DecodeState that decodes states into S, the
// state type of a graph.StateGraph[S]:
//
//	langgraphgo.NewStore(c, langgraphgo.Options{DecodeState: langgraphgo.JSONState[MyState]()})
func JSONState[S any]() func([]byte) (any, error) {
	return func(b []byte) (any, error) {
		var s S
		err := json.Unmarshal(b, &s)
		return s, err
	}
}

func (s *Store) threadOf(md map[string]any) string {
	for _, k := range groupKeys {
		if v, ok := md[k].(string); ok && v != "" {
			return v
		}
	}
	return s.opts.DefaultThread
}

// Save stores cp, replacing a checkpoint with the same id. An empty cp.ID is
// set to a new UUIDv7.
func (s *Store) Save(ctx context.Context, cp *store.Checkpoint) error {
	if cp.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		cp.ID = id.String()
	}
	state, err := json.Marshal(cp.State)
	if err != nil {
		return fmt.Errorf("langgraphgo: marshal state of %s: %w", cp.ID, err)
	}
	// Metadata as LangGraphGo's own SQL and Redis stores give it back: through
	// JSON, numbers float64. An integer beyond ±(2^53−1), which the Cairn
	// client refuses as metadata, is thereby stored rounded, as those stores
	// return it, instead of failing the graph's step.
	var md map[string]any
	if b, err := json.Marshal(cp.Metadata); err != nil {
		return fmt.Errorf("langgraphgo: marshal metadata of %s: %w", cp.ID, err)
	} else if err := json.Unmarshal(b, &md); err != nil {
		return fmt.Errorf("langgraphgo: metadata of %s: %w", cp.ID, err)
	}
	if md == nil {
		md = map[string]any{}
	}
	md[metaKey] = map[string]any{
		"checkpoint_id": cp.ID,
		"version":       cp.Version,
		"timestamp":     cp.Timestamp.Format(time.RFC3339Nano),
	}
	opts := []cairn.SaveOption{cairn.ReplaceExisting()}
	// Inside a Worker's run the save is fenced by the run's lease (see Worker).
	scope := scopeOf(ctx)
	if scope != nil {
		if err := scope.blocked(); err != nil {
			return fmt.Errorf("langgraphgo: save %s: the run must stop: %w", cp.ID, err)
		}
		md["run_id"] = scope.runID
		opts = append(opts, cairn.WithRunLease(scope.currentLease()))
	}
	thread := s.threadOf(cp.Metadata)
	_, err = s.c.Save(ctx, &cairn.Checkpoint{
		ThreadID:  thread,
		Namespace: s.opts.Namespace,
		ID:        cp.ID,
		State:     state,
		StateType: "json",
		Metadata:  md,
		NodeName:  cp.NodeName,
	}, opts...)
	if err != nil {
		if scope != nil && errors.Is(err, cairn.ErrRunStopped) {
			scope.stop(err)
		}
		return fmt.Errorf("langgraphgo: save %s: %w", cp.ID, err)
	}
	if scope != nil {
		scope.saved(cp.ID)
		if err := scope.flush(ctx, cp.ID); err != nil {
			return fmt.Errorf("langgraphgo: save %s: %w", cp.ID, err)
		}
	}
	s.threads.put(cp.ID, thread)
	return nil
}

// toLGG converts a Cairn checkpoint (with state) to LangGraphGo's.
func (s *Store) toLGG(c *cairn.Checkpoint) (*store.Checkpoint, error) {
	if c.StateType != "json" {
		return nil, fmt.Errorf("langgraphgo: checkpoint %s has state_type %q, want \"json\"", c.ID, c.StateType)
	}
	state, err := s.opts.DecodeState(c.State)
	if err != nil {
		return nil, fmt.Errorf("langgraphgo: decode state of %s: %w", c.ID, err)
	}
	cp := &store.Checkpoint{
		ID:        c.ID,
		NodeName:  c.NodeName,
		State:     state,
		Metadata:  maps.Clone(c.Metadata),
		Timestamp: c.CreatedAt, // for checkpoints other clients wrote
	}
	if m, ok := cp.Metadata[metaKey].(map[string]any); ok {
		delete(cp.Metadata, metaKey)
		if v, ok := m["version"].(float64); ok {
			cp.Version = int(v)
		}
		if ts, ok := m["timestamp"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				cp.Timestamp = t
			}
		}
	}
	if len(cp.Metadata) == 0 {
		cp.Metadata = nil
	}
	s.threads.put(c.ID, c.ThreadID)
	return cp, nil
}

// locate finds the Cairn checkpoint with id in any thread of the store's
// namespace by the id its metadata carries.
func (s *Store) locate(ctx context.Context, id string, withState bool) (*cairn.Checkpoint, error) {
	page, err := s.c.ListPage(ctx, cairn.ListQuery{
		Namespace:      cairn.Namespace(s.opts.Namespace),
		MetadataFilter: map[string]any{metaKey: map[string]any{"checkpoint_id": id}},
		PageSize:       1,
		IncludeState:   withState,
	})
	if err != nil {
		return nil, err
	}
	if len(page.Checkpoints) == 0 {
		return nil, fmt.Errorf("checkpoint not found: %s: %w", id, cairn.ErrNotFound)
	}
	return page.Checkpoints[0], nil
}

// Load returns the checkpoint with id; a missing one is an error matching
// cairn.ErrNotFound.
func (s *Store) Load(ctx context.Context, id string) (*store.Checkpoint, error) {
	var c *cairn.Checkpoint
	err := cairn.ErrNotFound
	if t, ok := s.threads.get(id); ok {
		c, err = s.c.Load(ctx, s.ref(t, id))
	}
	if errors.Is(err, cairn.ErrNotFound) { // not cached, or moved
		c, err = s.locate(ctx, id, true)
	}
	if err != nil {
		s.threads.forget(id)
		return nil, fmt.Errorf("langgraphgo: load %s: %w", id, err)
	}
	return s.toLGG(c)
}

// ref names checkpoint id of thread in the store's namespace.
func (s *Store) ref(thread, id string) cairn.Ref {
	return cairn.Ref{ThreadID: thread, Namespace: s.opts.Namespace, ID: id}
}

// collect lists the checkpoints of the store's namespace matching q.
func (s *Store) collect(ctx context.Context, q cairn.ListQuery, into map[string]*cairn.Checkpoint) error {
	q.Namespace, q.PageSize = cairn.Namespace(s.opts.Namespace), 1000
	for c, err := range s.c.List(ctx, q) {
		if err != nil {
			return err
		}
		into[c.ThreadID+"\x00"+c.ID] = c
	}
	return nil
}

// group returns the Cairn checkpoints of LangGraphGo grouping id.
func (s *Store) group(ctx context.Context, id string, withState bool) ([]*cairn.Checkpoint, error) {
	found := map[string]*cairn.Checkpoint{}
	if err := s.collect(ctx, cairn.ListQuery{ThreadID: id, IncludeState: withState}, found); err != nil {
		return nil, err
	}
	// Checkpoints with thread_id == id are all in thread id; the other keys
	// can point elsewhere when a checkpoint has several.
	for _, k := range groupKeys[1:] {
		q := cairn.ListQuery{MetadataFilter: map[string]any{k: id}, IncludeState: withState}
		if err := s.collect(ctx, q, found); err != nil {
			return nil, err
		}
	}
	return slices.Collect(maps.Values(found)), nil
}

// convert turns Cairn checkpoints into LangGraphGo's, oldest version first
// (ties: in save order).
func (s *Store) convert(cs []*cairn.Checkpoint) ([]*store.Checkpoint, error) {
	slices.SortFunc(cs, func(a, b *cairn.Checkpoint) int { return cmp.Compare(a.Sequence, b.Sequence) })
	out := make([]*store.Checkpoint, 0, len(cs))
	for _, c := range cs {
		cp, err := s.toLGG(c)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	slices.SortStableFunc(out, func(a, b *store.Checkpoint) int { return cmp.Compare(a.Version, b.Version) })
	return out, nil
}

// List returns the checkpoints whose thread_id, execution_id, session_id or
// workflow_id is executionID, sorted by version (latest last).
func (s *Store) List(ctx context.Context, executionID string) ([]*store.Checkpoint, error) {
	cs, err := s.group(ctx, executionID, true)
	if err != nil {
		return nil, fmt.Errorf("langgraphgo: list %s: %w", executionID, err)
	}
	return s.convert(cs)
}

// ListByThread returns the checkpoints of a thread sorted by version.
func (s *Store) ListByThread(ctx context.Context, threadID string) ([]*store.Checkpoint, error) {
	found := map[string]*cairn.Checkpoint{}
	if err := s.collect(ctx, cairn.ListQuery{ThreadID: threadID, IncludeState: true}, found); err != nil {
		return nil, fmt.Errorf("langgraphgo: list thread %s: %w", threadID, err)
	}
	return s.convert(slices.Collect(maps.Values(found)))
}

// GetLatestByThread returns the thread's checkpoint with the highest version
// (the most recently saved one among equal versions); an empty thread is an
// error matching cairn.ErrNotFound.
func (s *Store) GetLatestByThread(ctx context.Context, threadID string) (*store.Checkpoint, error) {
	cps, err := s.ListByThread(ctx, threadID)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		return nil, fmt.Errorf("langgraphgo: no checkpoints found for thread: %s: %w", threadID, cairn.ErrNotFound)
	}
	return cps[len(cps)-1], nil
}

// Delete removes the checkpoint with id; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	deleted := false
	var err error
	if t, ok := s.threads.get(id); ok {
		deleted, err = s.c.Delete(ctx, s.ref(t, id))
	}
	if err == nil && !deleted { // not cached, or moved
		var c *cairn.Checkpoint
		if c, err = s.locate(ctx, id, false); err == nil {
			_, err = s.c.Delete(ctx, s.ref(c.ThreadID, id))
		}
	}
	if err != nil && !errors.Is(err, cairn.ErrNotFound) {
		return fmt.Errorf("langgraphgo: delete %s: %w", id, err)
	}
	s.threads.forget(id)
	return nil
}

// Clear removes every checkpoint List(executionID) returns, and, with the
// root namespace, the whole Cairn thread named executionID (Cairn's Clear
// spans every namespace, so a store with its own namespace deletes its
// checkpoints one by one instead).
func (s *Store) Clear(ctx context.Context, executionID string) error {
	cs, err := s.group(ctx, executionID, false)
	whole := s.opts.Namespace == ""
	if err == nil && whole {
		_, err = s.c.Clear(ctx, executionID)
	}
	if err != nil {
		return fmt.Errorf("langgraphgo: clear %s: %w", executionID, err)
	}
	for _, c := range cs {
		s.threads.forget(c.ID)
		if whole && c.ThreadID == executionID {
			continue // cleared above
		}
		if _, err := s.c.Delete(ctx, s.ref(c.ThreadID, c.ID)); err != nil {
			return fmt.Errorf("langgraphgo: clear %s: %w", executionID, err)
		}
	}
	return nil
}
