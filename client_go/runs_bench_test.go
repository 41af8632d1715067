package cairn_test

import (
	"context"
	"testing"
	"time"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// The cost of durable runs per step, from one client: a plain save, a save
// fenced by a run lease, and a heartbeat (go test -run X -bench Runs).
func BenchmarkRunsStep(b *testing.B) {
	ctx := context.Background()
	c, err := cairn.Dial(ctx, target, cairn.WithInsecure())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q := "bench-" + time.Now().Format("150405.000000")
	th := q + "-thread"
	if _, err := c.StartRun(ctx, cairn.RunSpec{ThreadID: th, Queue: q}); err != nil {
		b.Fatal(err)
	}
	cl, err := c.ClaimRun(ctx, cairn.ClaimOptions{Queue: q, WorkerID: "bench", Lease: 10 * time.Minute, Wait: 5 * time.Second})
	if err != nil || cl == nil {
		b.Fatal(cl, err)
	}
	state := []byte(`{"messages":["a step of an agent"],"n":1}`)
	b.Run("save", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th + "-plain", State: state, StateType: "json"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fenced-save", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: state, StateType: "json"}, cairn.WithRunLease(cl.Lease)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Heartbeat(ctx, cl.Lease, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
