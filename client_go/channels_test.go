package cairn_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cairn "github.com/cairn-dev/cairn/client_go"
)

// WithChannels(n): calls (unary and streaming) go round-robin over n connections and all succeed.
func TestWithChannelsRoundRobinsCalls(t *testing.T) {
	ctx := context.Background()
	c := dial(t, cairn.WithChannels(3))
	th := thread(t)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("%s-%d", th, i)
			if _, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: id, State: []byte(fmt.Sprintf(`{"i":%d}`, i)), StateType: "json"}); err != nil {
				errs <- err
				return
			}
			got, err := c.Load(ctx, cairn.Ref{ThreadID: id})
			if err == nil && string(got.State) != fmt.Sprintf(`{"i":%d}`, i) {
				err = fmt.Errorf("thread %s: state %s", id, got.State)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestWithChannelsRefusesZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cairn.Dial(ctx, target, cairn.WithInsecure(), cairn.WithChannels(0))
	if err == nil || !strings.Contains(err.Error(), "WithChannels(0)") {
		t.Fatalf("err = %v, want a WithChannels error", err)
	}
}
