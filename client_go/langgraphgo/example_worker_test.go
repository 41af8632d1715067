package langgraphgo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/smallnest/langgraphgo/graph"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/langgraphgo"
)

// The "Durable runs" example of README.md, compiled with the tests (it needs a server on localhost:50051 to run).
func ExampleWorker() {
	ctx := context.Background()
	c, err := cairn.Dial(ctx, "localhost:50051", cairn.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A LangGraphGo graph that checkpoints into Cairn.
	g := graph.NewCheckpointableStateGraph[map[string]any]()
	g.SetSchema(graph.NewMapSchema())
	g.AddNode("greet", "greet", func(ctx context.Context, s map[string]any) (map[string]any, error) {
		return map[string]any{"greeting": fmt.Sprintf("hello %v", s["name"])}, nil
	})
	g.SetEntryPoint("greet")
	g.AddEdge("greet", graph.END)
	g.SetCheckpointConfig(graph.CheckpointConfig{Store: langgraphgo.NewStore(c), AutoSave: true})
	app, err := g.CompileCheckpointable()
	if err != nil {
		log.Fatal(err)
	}

	// Queue a run (from any language), then execute it; a worker process would call w.Run(ctx) instead.
	thread := fmt.Sprintf("greet-%d", time.Now().UnixNano())
	started, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: thread, Queue: "greetings", Input: []byte(`{"name":"cairn"}`),
		Retry: &cairn.RetryPolicy{MaxAttempts: 3}, ExecutionTimeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	w := langgraphgo.NewWorker(c, "greetings", app, langgraphgo.WorkerOptions{Lease: 10 * time.Second})
	run, err := w.RunOnce(ctx) // claims, heartbeats, saves under the lease, completes
	if errors.Is(err, cairn.ErrRunStopped) {
		log.Printf("run %s stopped: %v", started.RunID, err) // cancelled, timed out, or taken over
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(run.Status, string(run.Output)) // COMPLETED {"greeting":"hello cairn","name":"cairn"}

	for r, err := range c.ListRuns(ctx, cairn.RunQuery{ThreadID: thread, Statuses: []cairn.RunStatus{cairn.RunCompleted}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.RunID == started.RunID, r.Attempts == nil) // true true (GetRun has the attempts)
	}
}
