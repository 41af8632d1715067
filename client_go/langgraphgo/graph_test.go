package langgraphgo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/smallnest/langgraphgo/graph"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

// approvalGraph is draft -> approve (asks a human via graph.Interrupt) ->
// publish, checkpointing every step into st. runs counts node executions.
func approvalGraph(t *testing.T, st graph.CheckpointStore, runs map[string]int) *graph.CheckpointableRunnable[map[string]any] {
	t.Helper()
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	g.SetSchema(graph.NewMapSchema())
	g.AddNode("draft", "write a draft", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		runs["draft"]++
		return map[string]any{"draft": fmt.Sprintf("post about %v", s["topic"])}, nil
	})
	g.AddNode("approve", "wait for a human", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		runs["approve"]++
		answer, err := graph.Interrupt(ctx, "publish "+s["draft"].(string)+"?")
		if err != nil {
			return nil, err
		}
		return map[string]any{"approved": answer}, nil
	})
	g.AddNode("publish", "publish it", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		runs["publish"]++
		return map[string]any{"published": s["approved"] == "yes"}, nil
	})
	g.SetEntryPoint("draft")
	g.AddEdge("draft", "approve")
	g.AddEdge("approve", "publish")
	g.AddEdge("publish", graph.END)
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: st, AutoSave: true})
	r, err := g.CompileCheckpointable()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The graph stops at a human-in-the-loop interrupt; a new process (new
// client, store and graph) resumes the thread from its Cairn checkpoint.
func TestGraphInterruptAndResume(t *testing.T) {
	ctx := context.Background()
	th := "lgg-graph-" + uuid.NewString()

	// Process 1: runs until the interrupt.
	runs1 := map[string]int{}
	r1 := approvalGraph(t, langgraphgo.NewStore(dial(t)), runs1)
	_, err := r1.InvokeWithConfig(ctx, map[string]any{"topic": "cairn"}, graph.WithThreadID(th))
	var gi *graph.GraphInterrupt
	if !errors.As(err, &gi) || gi.Node != "approve" || gi.InterruptValue != "publish post about cairn?" {
		t.Fatalf("first run: err = %v, want an interrupt at approve", err)
	}

	// Cairn holds the thread: its head is the interrupted step, as JSON.
	c := dial(t)
	head, err := c.Load(ctx, cairn.Ref{ThreadID: th})
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	if err := json.Unmarshal(head.State, &state); err != nil || head.NodeName != "approve" || state["draft"] != "post about cairn" {
		t.Fatalf("head %s = %s (%v)", head.NodeName, head.State, err)
	}

	// Process 2: a human approved; resuming the thread skips the draft step.
	runs2 := map[string]int{}
	r2 := approvalGraph(t, langgraphgo.NewStore(dial(t)), runs2)
	cfg := graph.WithThreadID(th)
	cfg.ResumeValue = "yes"
	final, err := r2.InvokeWithConfig(ctx, map[string]any{}, cfg)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if final["draft"] != "post about cairn" || final["approved"] != "yes" || final["published"] != true {
		t.Fatalf("final state %v", final)
	}
	if runs2["draft"] != 0 || runs2["approve"] != 1 || runs2["publish"] != 1 {
		t.Fatalf("second process ran %v; want approve and publish only", runs2)
	}

	// The thread's history, and time travel to its first checkpoint.
	var nodes []string
	var firstID string
	for cp, err := range c.List(ctx, cairn.ListQuery{ThreadID: th}) {
		if err != nil {
			t.Fatal(err)
		}
		nodes, firstID = append(nodes, cp.NodeName), cp.ID
	}
	if !slices.Equal(nodes, []string{"publish", "approve", "approve", "draft"}) {
		t.Fatalf("history (newest first) = %v", nodes)
	}
	snap, err := r2.GetState(ctx, &graph.Config{Configurable: map[string]any{"thread_id": th, "checkpoint_id": firstID}})
	if err != nil {
		t.Fatal(err)
	}
	if v := snap.Values.(map[string]any); v["draft"] != "post about cairn" || v["approved"] != nil || !slices.Equal(snap.Next, []string{"draft"}) {
		t.Fatalf("snapshot of the first checkpoint: %+v", snap)
	}
}

// LangGraphGo's TestMaxCheckpoints_AutoCleanup against Cairn: the listener
// lists the thread and deletes the oldest checkpoints beyond the limit.
func TestGraphMaxCheckpoints(t *testing.T) {
	ctx := context.Background()
	s := langgraphgo.NewStore(dial(t))
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("step%d", i)
		g.AddNode(name, name, func(ctx context.Context, st map[string]any) (map[string]any, error) {
			st[name] = "done"
			return st, nil
		})
		if i > 1 {
			g.AddEdge(fmt.Sprintf("step%d", i-1), name)
		}
	}
	g.AddEdge("step5", graph.END)
	g.SetEntryPoint("step1")
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: s, AutoSave: true, MaxCheckpoints: 3})
	r, err := g.CompileCheckpointable()
	if err != nil {
		t.Fatal(err)
	}
	th := "lgg-max-" + uuid.NewString()
	if _, err := r.InvokeWithConfig(ctx, map[string]any{"input": "test"}, graph.WithThreadID(th)); err != nil {
		t.Fatal(err)
	}
	cps, err := s.List(ctx, th)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, cp := range cps {
		nodes = append(nodes, cp.NodeName)
	}
	if !slices.Equal(nodes, []string{"step3", "step4", "step5"}) {
		t.Fatalf("kept %v, want step3..step5", nodes)
	}
	if latest, err := s.GetLatestByThread(ctx, th); err != nil || latest.State.(map[string]any)["step5"] != "done" {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
}
