package cairn_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	cairn "github.com/cairn-dev/cairn/client_go"
)

func ExampleDial() {
	ctx := context.Background()
	c, err := cairn.Dial(ctx, "localhost:50051", cairn.WithInsecure(), cairn.WithToken(os.Getenv("CAIRN_TOKEN")))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// Append a step to thread t1 unless someone else did first (compare-and-set).
	cp := &cairn.Checkpoint{ThreadID: "t1", State: []byte(`{"step":1}`), StateType: "json"}
	cas := cairn.ExpectEmpty()
	head, err := c.Load(ctx, cairn.Ref{ThreadID: "t1"})
	switch {
	case errors.Is(err, cairn.ErrNotFound): // a new thread
	case err != nil:
		panic(err)
	default:
		cp.ParentID, cas = head.ID, cairn.ExpectHead(head.ID)
	}
	res, err := c.Save(ctx, cp, cas) // the id is a client-generated UUIDv7, so retries are idempotent
	var ce *cairn.Error
	switch {
	case errors.As(err, &ce) && errors.Is(err, cairn.ErrConflict):
		fmt.Println("someone else saved first; the head is now", ce.CurrentHeadID())
	case err != nil:
		panic(err)
	default:
		fmt.Println("saved", res.CheckpointID)
	}
}
