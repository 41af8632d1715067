package langgraphgo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// ActivityChannel is the channel of an activity record: a pending write whose
// task id is "activity:NODE:NAME" and whose value is the activity's JSON
// result, the layout the Python, TypeScript and Java workers use too.
const ActivityChannel = "activity"

// ErrNotInRun is returned by Activity called outside a node of a Worker's run.
var ErrNotInRun = errors.New("langgraphgo: Activity can only be called inside a node of a durable run (Worker)")

// Activity runs the side effect fn of node once per run: its JSON result is
// recorded as a pending write (fenced by the run's lease) on the run's latest
// checkpoint, and when the node runs again in the same run (after a crash, a
// retry, or LangGraphGo's auto-resume, which re-runs the node of the latest
// checkpoint) Activity returns the recorded result instead of calling fn.
// name must be unique among the node's activities within the run (a node run
// several times in one run, in a loop, puts the iteration in name).
//
// An activity called before the run's first checkpoint (in the graph's first
// step) is recorded on that checkpoint when it is saved: a crash before then
// runs it again. A crash between fn returning and the record being stored runs
// fn again (at least once; exactly once when recorded). A run that must stop
// (cancelled, timed out, or taken over) gets its stop error before fn is called.
func Activity[T any](ctx context.Context, node, name string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	scope := scopeOf(ctx)
	if scope == nil || scope.client == nil {
		return zero, ErrNotInRun
	}
	if err := scope.stopped(); err != nil {
		return zero, err
	}
	key := ActivityChannel + ":" + node + ":" + name
	raw, ok, err := scope.record(ctx, key)
	if err != nil {
		return zero, err
	}
	if ok {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return zero, fmt.Errorf("langgraphgo: recorded result of activity %s: %w", key, err)
		}
		return v, nil
	}
	v, err := fn(ctx)
	if err != nil {
		return zero, err
	}
	raw, err = json.Marshal(v)
	if err != nil {
		return zero, fmt.Errorf("langgraphgo: result of activity %s: %w", key, err)
	}
	if err := scope.store(ctx, key, raw); err != nil {
		return zero, err
	}
	return v, nil
}

// record returns the recorded result of the activity key, reading the run's
// records (the activity writes on every checkpoint the run saved) once per attempt.
func (s *runScope) record(ctx context.Context, key string) ([]byte, bool, error) {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if s.records == nil {
		records := map[string][]byte{}
		q := cairn.ListQuery{ThreadID: s.threadID, Namespace: &s.namespace, MetadataFilter: map[string]any{"run_id": s.runID}, IncludeWrites: true}
		for cp, err := range s.client.List(ctx, q) {
			if err != nil {
				return nil, false, fmt.Errorf("langgraphgo: activity records of run %s: %w", s.runID, err)
			}
			for _, w := range cp.PendingWrites {
				if w.Channel == ActivityChannel {
					records[w.TaskID] = w.Value
				}
			}
		}
		s.records = records
	}
	raw, ok := s.records[key]
	return raw, ok, nil
}

// store records the activity key's result on the run's latest checkpoint,
// under the run's lease; with no checkpoint yet it keeps it for the first one
// (flush).
func (s *runScope) store(ctx context.Context, key string, raw []byte) error {
	if err := s.stopped(); err != nil {
		return err
	}
	s.actMu.Lock()
	if s.headID() == "" {
		s.records[key] = raw
		s.unflushed = append(s.unflushed, key)
		s.actMu.Unlock()
		return nil
	}
	s.actMu.Unlock()
	if err := s.put(ctx, s.headID(), key, raw); err != nil {
		return err
	}
	s.actMu.Lock()
	s.records[key] = raw
	s.actMu.Unlock()
	return nil
}

// flush records the activities of the run's first step on its first
// checkpoint, id, just saved.
func (s *runScope) flush(ctx context.Context, id string) error {
	s.actMu.Lock()
	keys := s.unflushed
	s.unflushed = nil
	raws := make([][]byte, len(keys))
	for i, key := range keys {
		raws[i] = s.records[key]
	}
	s.actMu.Unlock()
	for i, key := range keys {
		if err := s.put(ctx, id, key, raws[i]); err != nil {
			return err
		}
	}
	return nil
}

// put stores one activity record on checkpoint id under the run's lease.
func (s *runScope) put(ctx context.Context, id, key string, raw []byte) error {
	_, err := s.client.PutWrites(ctx, cairn.Ref{ThreadID: s.threadID, Namespace: s.namespace, ID: id}, cairn.TaskWrites{
		TaskID:   key,
		Writes:   []cairn.Write{{Idx: 0, Channel: ActivityChannel, ValueType: "json", Value: raw}},
		RunLease: s.currentLease(),
	})
	if err != nil {
		if errors.Is(err, cairn.ErrRunStopped) {
			s.stop(err)
		}
		return fmt.Errorf("langgraphgo: record activity %s: %w", key, err)
	}
	return nil
}

// NodeTimeoutError ends an attempt whose step ran longer than
// WorkerOptions.NodeTimeout. It wraps context.DeadlineExceeded, so
// DefaultRetryable retries it (as Python's NodeTimeout is a TimeoutError).
type NodeTimeoutError struct {
	Timeout time.Duration
}

// Error names the step timeout that was exceeded.
func (e *NodeTimeoutError) Error() string {
	return fmt.Sprintf("langgraphgo: a step's node(s) ran longer than %s", e.Timeout)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true for a node timeout.
func (e *NodeTimeoutError) Unwrap() error { return context.DeadlineExceeded }
