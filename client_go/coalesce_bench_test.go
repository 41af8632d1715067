package cairn_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// 32 goroutines saving 36 KB states at once, each on its own thread, with
// the saves coalesced into SaveBatch calls (the default, WithCoalesce(4)) and
// each sent alone (WithCoalesce(0)); ns/op is per save
// (go test -run X -bench ConcurrentSaves).
func BenchmarkConcurrentSaves(b *testing.B) {
	const workers = 32
	for _, n := range []int{cairn.DefaultCoalesce, 0} {
		b.Run(fmt.Sprintf("coalesce=%d", n), func(b *testing.B) {
			ctx := context.Background()
			c, err := cairn.Dial(ctx, target, cairn.WithInsecure(), cairn.WithCoalesce(n))
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
		})
	}
}
