package langgraphgo_test

// These tests mirror LangGraphGo v0.8.5's own store tests (store/memory,
// store/sqlite, store/redis) through the store.CheckpointStore interface,
// against a real Cairn server. Ids and group keys get a per-test prefix since
// the server is shared.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/store"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

var target string

func TestMain(m *testing.M) { testserver.Main(m, &target) }

func dial(t *testing.T, opts ...cairn.Option) *cairn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]cairn.Option{cairn.WithInsecure()}, opts...)
	if tok := os.Getenv("CAIRN_TOKEN"); tok != "" {
		opts = append(opts, cairn.WithToken(tok))
	}
	c, err := cairn.Dial(ctx, target, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newStore returns a Store and a function that makes names unique to the test.
func newStore(t *testing.T) (*langgraphgo.Store, func(string) string) {
	prefix := uuid.NewString()[:8] + "-"
	return langgraphgo.NewStore(dial(t)), func(s string) string { return prefix + s }
}

func mustSave(t *testing.T, s store.CheckpointStore, cp *store.Checkpoint) {
	t.Helper()
	if err := s.Save(context.Background(), cp); err != nil {
		t.Fatalf("save %s: %v", cp.ID, err)
	}
}

func count(t *testing.T, s store.CheckpointStore, id string) int {
	t.Helper()
	list, err := s.List(context.Background(), id)
	if err != nil {
		t.Fatalf("list %s: %v", id, err)
	}
	return len(list)
}

// memory_test.go: TestMemoryCheckpointStore_BasicOperations
func TestBasicOperations(t *testing.T) {
	ctx := context.Background()
	t.Run("save and load", func(t *testing.T) {
		s, u := newStore(t)
		cp := &store.Checkpoint{
			ID: u("user-session-123"), NodeName: "auth-handler", State: "waiting_for_2fa",
			Timestamp: time.Now(), Version: 1,
			Metadata: map[string]any{"user_id": "alice@example.com", "session_id": u("sess-abc-123"), "ip_address": "10.0.0.45"},
		}
		mustSave(t, s, cp)
		loaded, err := s.Load(ctx, cp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.ID != cp.ID || loaded.NodeName != cp.NodeName || loaded.State != cp.State || loaded.Version != cp.Version ||
			!loaded.Timestamp.Equal(cp.Timestamp) || !reflect.DeepEqual(loaded.Metadata, cp.Metadata) {
			t.Fatalf("loaded %+v, saved %+v", loaded, cp)
		}
	})
	t.Run("load missing returns error", func(t *testing.T) {
		s, u := newStore(t)
		_, err := s.Load(ctx, u("does-not-exist"))
		if !errors.Is(err, cairn.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("overwrite works", func(t *testing.T) {
		s, u := newStore(t)
		mustSave(t, s, &store.Checkpoint{ID: u("overwrite-test"), NodeName: "processor-v1", State: "initial", Timestamp: time.Now(), Version: 1})
		mustSave(t, s, &store.Checkpoint{ID: u("overwrite-test"), NodeName: "processor-v2", State: "updated", Timestamp: time.Now(), Version: 2})
		loaded, err := s.Load(ctx, u("overwrite-test"))
		if err != nil || loaded.NodeName != "processor-v2" || loaded.State != "updated" || loaded.Version != 2 {
			t.Fatalf("loaded %+v, %v; want v2", loaded, err)
		}
	})
}

// memory_test.go: TestMemoryCheckpointStore_List
func TestList(t *testing.T) {
	t.Run("filters by session_id", func(t *testing.T) {
		s, u := newStore(t)
		session := u("web-user-12345")
		for _, cp := range []struct {
			id, node string
			version  int
		}{{"homepage-visit", "page-renderer", 1}, {"login-attempt", "auth-handler", 2}, {"dashboard-view", "dashboard-renderer", 3}} {
			mustSave(t, s, &store.Checkpoint{ID: u(cp.id), NodeName: cp.node, State: "success",
				Timestamp: time.Now().Add(time.Duration(cp.version) * time.Minute), Version: cp.version,
				Metadata: map[string]any{"session_id": session}})
		}
		results, err := s.List(context.Background(), session)
		if err != nil || len(results) != 3 {
			t.Fatalf("list = %d, %v; want 3", len(results), err)
		}
		for i := 1; i < len(results); i++ {
			if results[i-1].Version > results[i].Version {
				t.Fatal("checkpoints not sorted by version")
			}
		}
	})
	t.Run("filters by thread_id", func(t *testing.T) {
		s, u := newStore(t)
		mustSave(t, s, &store.Checkpoint{ID: u("api-call"), NodeName: "request-handler", State: "success", Timestamp: time.Now(),
			Version: 1, Metadata: map[string]any{"thread_id": u("api-bot-67890")}})
		results, err := s.List(context.Background(), u("api-bot-67890"))
		if err != nil || len(results) != 1 || results[0].ID != u("api-call") {
			t.Fatalf("list = %+v, %v", results, err)
		}
	})
	t.Run("empty for unknown session", func(t *testing.T) {
		s, u := newStore(t)
		if n := count(t, s, u("ghost-session")); n != 0 {
			t.Fatalf("got %d checkpoints, want 0", n)
		}
	})
	t.Run("mixed session/thread filters", func(t *testing.T) {
		s, u := newStore(t)
		mustSave(t, s, &store.Checkpoint{ID: u("mixed-metadata"), NodeName: "hybrid-handler", State: "processing", Timestamp: time.Now(),
			Version: 1, Metadata: map[string]any{"session_id": u("web-user-12345"), "thread_id": u("admin-ops-thread-1")}})
		if a, b := count(t, s, u("web-user-12345")), count(t, s, u("admin-ops-thread-1")); a != 1 || b != 1 {
			t.Fatalf("session list %d, thread list %d; want 1 and 1", a, b)
		}
	})
}

// memory_test.go: TestMemoryCheckpointStore_Delete
func TestDelete(t *testing.T) {
	ctx := context.Background()
	t.Run("delete existing", func(t *testing.T) {
		s, u := newStore(t)
		for _, id := range []string{"keep-1", "delete-me", "keep-2"} {
			mustSave(t, s, &store.Checkpoint{ID: u(id), NodeName: "test-node", State: "test", Timestamp: time.Now(), Version: 1})
		}
		if err := s.Delete(ctx, u("delete-me")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, u("delete-me")); err == nil {
			t.Fatal("deleted checkpoint should not load")
		}
		for _, id := range []string{"keep-1", "keep-2"} {
			if _, err := s.Load(ctx, u(id)); err != nil {
				t.Fatalf("%s should still exist: %v", id, err)
			}
		}
	})
	t.Run("delete missing is no-op", func(t *testing.T) {
		s, u := newStore(t)
		if err := s.Delete(ctx, u("never-existed")); err != nil {
			t.Fatalf("delete of a missing checkpoint: %v", err)
		}
	})
}

// memory_test.go: TestMemoryCheckpointStore_Clear
func TestClear(t *testing.T) {
	ctx := context.Background()
	s, u := newStore(t)
	a, b := u("data-pipeline-2024"), u("ml-training-job-999")
	for _, d := range []struct {
		id, workflow string
		version      int
	}{{"extract-step", a, 1}, {"transform-step", a, 2}, {"load-step", a, 3}, {"model-init", b, 1}, {"training-start", b, 2}} {
		mustSave(t, s, &store.Checkpoint{ID: u(d.id), NodeName: "processor", State: "running", Timestamp: time.Now(),
			Version: d.version, Metadata: map[string]any{"workflow_id": d.workflow}})
	}
	if na, nb := count(t, s, a), count(t, s, b); na != 3 || nb != 2 {
		t.Fatalf("initial setup wrong: a=%d, b=%d", na, nb)
	}
	if err := s.Clear(ctx, a); err != nil {
		t.Fatal(err)
	}
	if na, nb := count(t, s, a), count(t, s, b); na != 0 || nb != 2 {
		t.Fatalf("after clear: a=%d b=%d; want 0 and 2", na, nb)
	}
	if _, err := s.Load(ctx, u("extract-step")); err == nil {
		t.Fatal("extract-step should be cleared")
	}
	if _, err := s.Load(ctx, u("model-init")); err != nil {
		t.Fatalf("model-init should still exist: %v", err)
	}
}

// memory_test.go: TestMemoryCheckpointStore_ThreadSafety
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s, u := newStore(t)
	const workers, steps = 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for j := range steps {
				cp := &store.Checkpoint{
					ID: u(fmt.Sprintf("worker-%d-step-%d", w, j)), NodeName: fmt.Sprintf("handler-%d", w),
					State:     fmt.Sprintf("processing-step-%d", j),
					Metadata:  map[string]any{"worker_id": w, "step_number": j, "timestamp": time.Now().UnixNano()},
					Timestamp: time.Now(), Version: j + 1,
				}
				if err := s.Save(ctx, cp); err != nil {
					errs <- err
					return
				}
				if loaded, err := s.Load(ctx, cp.ID); err != nil || loaded.ID != cp.ID {
					errs <- fmt.Errorf("load %s: %+v, %v", cp.ID, loaded, err)
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
	fresh := langgraphgo.NewStore(dial(t)) // no cached threads: looks ids up
	for w := range workers {
		for j := range steps {
			if _, err := fresh.Load(ctx, u(fmt.Sprintf("worker-%d-step-%d", w, j))); err != nil {
				t.Errorf("checkpoint worker-%d-step-%d missing: %v", w, j, err)
			}
		}
	}
}

// sqlite_test.go and redis_test.go: TestSqliteCheckpointStore / TestRedisCheckpointStore
func TestExecutionLifecycle(t *testing.T) {
	ctx := context.Background()
	s, u := newStore(t)
	execID := u("exec-123")
	cp := &store.Checkpoint{ID: u("cp-1"), NodeName: "node-a", State: map[string]any{"foo": "bar"}, Timestamp: time.Now(),
		Version: 1, Metadata: map[string]any{"execution_id": execID}}
	mustSave(t, s, cp)

	loaded, err := s.Load(ctx, u("cp-1"))
	if err != nil || loaded.ID != cp.ID || loaded.NodeName != cp.NodeName {
		t.Fatalf("load = %+v, %v", loaded, err)
	}
	if state, ok := loaded.State.(map[string]any); !ok || state["foo"] != "bar" {
		t.Fatalf("state = %#v", loaded.State)
	}
	list, err := s.List(ctx, execID)
	if err != nil || len(list) != 1 || list[0].ID != cp.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}

	if err := s.Delete(ctx, u("cp-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, u("cp-1")); err == nil {
		t.Fatal("cp-1 still loads after delete")
	}
	if n := count(t, s, execID); n != 0 {
		t.Fatalf("list after delete: %d", n)
	}

	mustSave(t, s, &store.Checkpoint{ID: u("cp-2"), Metadata: map[string]any{"execution_id": execID}})
	mustSave(t, s, &store.Checkpoint{ID: u("cp-3"), Metadata: map[string]any{"execution_id": execID}})
	if n := count(t, s, execID); n != 2 {
		t.Fatalf("list = %d, want 2", n)
	}
	if err := s.Clear(ctx, execID); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, execID); n != 0 {
		t.Fatalf("list after clear = %d, want 0", n)
	}
}

// An execution whose checkpoints live in a LangGraphGo thread: List and Clear
// by execution id reach across Cairn threads.
func TestExecutionSpanningThreads(t *testing.T) {
	ctx := context.Background()
	s, u := newStore(t)
	exec := u("exec")
	for i, th := range []string{u("thread-a"), u("thread-b")} {
		mustSave(t, s, &store.Checkpoint{ID: u(fmt.Sprint(i)), State: i, Version: i + 1,
			Metadata: map[string]any{"execution_id": exec, "thread_id": th}})
	}
	mustSave(t, s, &store.Checkpoint{ID: u("other"), State: 9, Version: 1, Metadata: map[string]any{"thread_id": u("thread-a")}})
	if n := count(t, s, exec); n != 2 {
		t.Fatalf("list exec = %d, want 2", n)
	}
	latest, err := s.GetLatestByThread(ctx, u("thread-a"))
	if err != nil || latest.ID != u("other") {
		t.Fatalf("latest of thread-a = %+v, %v; want the last saved of version 1", latest, err)
	}
	if err := s.Clear(ctx, exec); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, exec); n != 0 {
		t.Fatalf("list exec after clear = %d", n)
	}
	if list, err := s.ListByThread(ctx, u("thread-a")); err != nil || len(list) != 1 || list[0].ID != u("other") {
		t.Fatalf("thread-a after clearing exec = %+v, %v", list, err)
	}
	_, err = s.GetLatestByThread(ctx, u("thread-b"))
	if !errors.Is(err, cairn.ErrNotFound) {
		t.Fatalf("latest of emptied thread: %v, want ErrNotFound", err)
	}
}

// Another language sees what the adapter saved: JSON state in the Cairn
// thread named by thread_id.
func TestStoredFormat(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	s := langgraphgo.NewStore(c)
	th := "lgg-" + uuid.NewString()
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	mustSave(t, s, &store.Checkpoint{ID: th + "-cp", NodeName: "agent", State: map[string]any{"messages": []string{"hi"}},
		Timestamp: ts, Version: 7, Metadata: map[string]any{"thread_id": th, "execution_id": "e1"}})

	got, err := c.Load(ctx, cairn.Ref{ThreadID: th})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != th+"-cp" || got.StateType != "json" || string(got.State) != `{"messages":["hi"]}` || got.NodeName != "agent" ||
		got.Metadata["thread_id"] != th || got.Metadata["execution_id"] != "e1" {
		t.Fatalf("stored %+v", got)
	}
	if lg, _ := got.Metadata["langgraphgo"].(map[string]any); lg["version"] != 7.0 || lg["timestamp"] != ts.Format(time.RFC3339Nano) {
		t.Fatalf("langgraphgo metadata %v", got.Metadata["langgraphgo"])
	}

	// And the adapter reads checkpoints other clients wrote into a thread.
	if _, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ID: th + "-foreign", State: []byte(`{"from":"python"}`), StateType: "json", NodeName: "py"}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.GetLatestByThread(ctx, th)
	if err != nil || latest.ID != th+"-cp" { // version 7 beats the foreign checkpoint's 0
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	foreign, err := s.Load(ctx, th+"-foreign")
	if err != nil || !reflect.DeepEqual(foreign.State, map[string]any{"from": "python"}) || foreign.Version != 0 || foreign.Timestamp.IsZero() {
		t.Fatalf("foreign = %+v, %v", foreign, err)
	}
}

type typedState struct {
	Count int      `json:"count"`
	Log   []string `json:"log"`
}

func TestTypedState(t *testing.T) {
	s := langgraphgo.NewStore(dial(t), langgraphgo.Options{DecodeState: langgraphgo.JSONState[typedState]()})
	id := "typed-" + uuid.NewString()
	mustSave(t, s, &store.Checkpoint{ID: id, State: typedState{Count: 2, Log: []string{"a", "b"}}})
	got, err := s.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := got.State.(typedState); !ok || st.Count != 2 || len(st.Log) != 2 {
		t.Fatalf("state = %#v", got.State)
	}
}

func TestGeneratedID(t *testing.T) {
	s := langgraphgo.NewStore(dial(t))
	cp := &store.Checkpoint{State: json.RawMessage(`{"x":1}`)}
	mustSave(t, s, cp)
	if id, err := uuid.Parse(cp.ID); err != nil || id.Version() != 7 {
		t.Fatalf("generated id %q", cp.ID)
	}
	if _, err := s.Load(context.Background(), cp.ID); err != nil {
		t.Fatal(err)
	}
}

// A Store on a client dialed with cairn.WithCompressStates moves its states
// zstd-compressed; a Store on a plain client reads the same checkpoints.
func TestCompressedStates(t *testing.T) {
	ctx := context.Background()
	c := dial(t, cairn.WithCompressStates())
	s, plain := langgraphgo.NewStore(c), langgraphgo.NewStore(dial(t))
	th := "lgg-zstd-" + uuid.NewString()
	var want []*store.Checkpoint
	for v := range 3 {
		msgs := make([]any, 400)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("step %d: the tool returned order %d as shipped", v, i)
		}
		cp := &store.Checkpoint{ID: fmt.Sprintf("%s-%d", th, v), NodeName: "agent", Version: v,
			State: map[string]any{"messages": msgs}, Metadata: map[string]any{"thread_id": th}}
		mustSave(t, s, cp) // the first save teaches the client that the server accepts zstd
		want = append(want, cp)
	}
	saved, err := c.Load(ctx, cairn.Ref{ThreadID: th})
	if err != nil || saved.StateSize < 10<<10 || saved.StoredSize >= saved.StateSize {
		t.Fatalf("head: %v; state %d bytes, stored %d", err, saved.StateSize, saved.StoredSize)
	}
	for _, st := range []*langgraphgo.Store{s, plain} {
		got, err := st.ListByThread(ctx, th)
		if err != nil || len(got) != len(want) {
			t.Fatalf("list: %d checkpoints, %v", len(got), err)
		}
		for i, cp := range got {
			if cp.ID != want[i].ID || !reflect.DeepEqual(cp.State, want[i].State) {
				t.Fatalf("checkpoint %d: %s %v", i, cp.ID, cp.State)
			}
		}
		latest, err := st.Load(ctx, want[2].ID)
		if err != nil || !reflect.DeepEqual(latest.State, want[2].State) {
			t.Fatalf("load: %v", err)
		}
	}
}

// Metadata numbers come back float64, as from LangGraphGo's SQL and Redis
// stores (json.Unmarshal into map[string]any); an integer beyond ±(2^53−1),
// which the Cairn client refuses as metadata, is stored rounded like there
// instead of failing the step.
func TestMetadataNumbersAsLangGraphGoStoresReturnThem(t *testing.T) {
	s, u := newStore(t)
	nanos := int64(1)<<60 + 1
	mustSave(t, s, &store.Checkpoint{
		ID: u("cp"), State: "s", Timestamp: time.Now(), Version: 1,
		Metadata: map[string]any{"thread_id": u("t"), "ts": nanos, "step": 3},
	})
	loaded, err := s.Load(context.Background(), u("cp"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	b, _ := json.Marshal(map[string]any{"thread_id": u("t"), "ts": nanos, "step": 3})
	_ = json.Unmarshal(b, &want)
	if !reflect.DeepEqual(loaded.Metadata, want) {
		t.Fatalf("metadata %#v, want %#v", loaded.Metadata, want)
	}
	if loaded.Metadata["ts"] != float64(1<<60) {
		t.Fatalf("ts %v, want float64 2^60", loaded.Metadata["ts"])
	}
}

// Stores with different namespaces share no checkpoint, even with the same
// ids and thread ids; Clear in one leaves the other's checkpoints alone.
func TestNamespacesAreSeparate(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	ns := "lgg-ns-" + uuid.NewString()
	s1 := langgraphgo.NewStore(c, langgraphgo.Options{Namespace: ns + "-1"})
	s2 := langgraphgo.NewStore(c, langgraphgo.Options{Namespace: ns + "-2"})
	th := "thread-" + uuid.NewString()
	for i, s := range []*langgraphgo.Store{s1, s2} {
		mustSave(t, s, &store.Checkpoint{ID: "cp-" + th, NodeName: fmt.Sprint("n", i), State: i,
			Metadata: map[string]any{"thread_id": th}})
	}
	for i, s := range []*langgraphgo.Store{s1, s2} {
		cp, err := s.Load(ctx, "cp-"+th)
		if err != nil || cp.NodeName != fmt.Sprint("n", i) {
			t.Fatalf("store %d loads %+v, %v", i, cp, err)
		}
	}
	if err := s1.Clear(ctx, th); err != nil {
		t.Fatal(err)
	}
	if n1, n2 := count(t, s1, th), count(t, s2, th); n1 != 0 || n2 != 1 {
		t.Fatalf("after Clear in namespace 1: %d and %d checkpoints; want 0 and 1", n1, n2)
	}
	if _, err := c.Load(ctx, cairn.Ref{ThreadID: th, Namespace: ns + "-2", ID: "cp-" + th}); err != nil {
		t.Fatalf("the checkpoint is not in the Cairn namespace: %v", err)
	}
}
