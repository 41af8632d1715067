package cairn

import (
	"context"
	"errors"
	"sync/atomic"

	"google.golang.org/grpc"
)

// connPool hands calls out round-robin over several connections to one target.
//
// `cairn serve --workers N` runs N processes on one port with SO_REUSEPORT: the
// kernel spreads connections over them, not calls, so a client with one
// connection reaches one worker however many calls it has in flight. With
// WithChannels(n) the client opens n connections (grpc-go never shares one
// between ClientConns) and every worker gets a share of the calls.
type connPool struct {
	conns []*grpc.ClientConn
	next  atomic.Uint64
}

func (p *connPool) pick() *grpc.ClientConn {
	return p.conns[(p.next.Add(1)-1)%uint64(len(p.conns))]
}

// Invoke sends a unary call on the next connection.
func (p *connPool) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return p.pick().Invoke(ctx, method, args, reply, opts...)
}

// NewStream opens a stream on the next connection.
func (p *connPool) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return p.pick().NewStream(ctx, desc, method, opts...)
}

func (p *connPool) Close() error {
	var errs []error
	for _, c := range p.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
