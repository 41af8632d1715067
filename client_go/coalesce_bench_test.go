package cairn_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// 32 goroutines saving 36 KB states at once, each on its own thread, with
// the saves coalesced into SaveBatch calls (the default, WithCoalesce(4)) and
// each sent alone (WithCoalesce(0)); ns/op is per save, calls/save the unary
// calls (Save, SaveBatch) per save (go test -run X -bench ConcurrentSaves).
func BenchmarkConcurrentSaves(b *testing.B) {
	const workers = 32
	for _, n := range []int{cairn.DefaultCoalesce, 0} {
		b.Run(fmt.Sprintf("coalesce=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var calls atomic.Int64
			count := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				calls.Add(1)
				return invoker(ctx, method, req, reply, cc, opts...)
			})
			c, err := cairn.Dial(ctx, target, cairn.WithInsecure(), cairn.WithCoalesce(n), cairn.WithDialOptions(count))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			prefix := fmt.Sprintf("go-bench-%s-%d", b.Name(), b.N)
			states := make([][]byte, workers)
			for w := range states {
				states[w] = state36k(fmt.Sprint(w))
			}
			b.SetBytes(int64(len(states[0])))
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range workers {
				wg.Go(func() {
					th := fmt.Sprintf("%s-%d", prefix, w)
					for left.Add(-1) >= 0 {
						if _, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: states[w], StateType: "json"}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(calls.Load())/float64(b.N), "calls/save")
		})
	}
}
