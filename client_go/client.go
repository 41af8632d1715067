// Package cairn is the Go client of Cairn, a checkpoint store for durable
// agent and workflow graphs served over gRPC.
//
//	import cairn "github.com/cairn-dev/cairn/client_go"
//
//	c, err := cairn.Dial(ctx, "localhost:50051", cairn.WithInsecure(), cairn.WithToken(tok))
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: "t1", State: state, StateType: "json"})
//	cp, err := c.Load(ctx, cairn.Ref{ThreadID: "t1"}) // the head
//
// Every failed call returns an *Error that matches one of the sentinel errors
// (ErrNotFound, ErrConflict, ...) with errors.Is. The generated stubs live in
// package cairnv1 (gen/cairn/v1); Client.Raw exposes them.
package cairn

//go:generate ./gen.sh

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// Client talks to one Cairn server. It is safe for concurrent use.
//
// Every method takes a context (its deadline is the call's; WithDefaultTimeout
// bounds calls without one). An error from the server is an *Error; test it
// with errors.Is against the sentinels (an argument the client cannot encode,
// such as a metadata map that is not JSON, fails before any call). Any call
// may fail with
// ErrUnavailable (the server or its store could not be reached, after
// WithMaxAttempts tries), ErrUnauthenticated (missing or wrong token),
// ErrInvalidArgument (a malformed argument; *Error.Field names it),
// context.DeadlineExceeded or context.Canceled; each method's comment names
// the others it returns.
type Client struct {
	conn    *grpc.ClientConn // the first of pool's connections
	pool    *connPool
	rpc     cairnv1.CheckpointStoreClient
	timeout time.Duration // WithDefaultTimeout, applied by SaveStream itself
	wire    stateWire     // WithCompressStates
	// WithCoalesce: concurrent saves and loads that go together (nil: each alone)
	saves *coalescer[*cairnv1.SaveRequest, *cairnv1.SaveResponse]
	loads *coalescer[*cairnv1.LoadRequest, *cairnv1.LoadResponse]
}

type options struct {
	tls         *tls.Config
	insecure    bool
	token       string
	maxAttempts int
	timeout     time.Duration
	dialOpts    []grpc.DialOption
	compress    bool
	maxMessage  int
	channels    int
	coalesce    int
}

// Option configures Dial.
type Option func(*options)

// WithTLS connects over TLS with the given config (nil: system roots).
// TLS is the default for host:port targets.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls, o.insecure = cfg, false }
}

// WithInsecure connects without TLS (the default for unix: targets).
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithToken sends "authorization: Bearer TOKEN" with every call (nothing when
// token is empty), also over insecure connections (tests, unix-socket sidecars).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithMaxAttempts sets how often a call that failed with UNAVAILABLE is tried
// in total, with exponential backoff (default 5; 1 disables retries). Retries
// are safe because saves carry a client-generated checkpoint id.
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithDefaultTimeout bounds every call whose context has no deadline
// (a SaveStream as a whole).
func WithDefaultTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithCompressStates sends and receives states zstd-compressed (level 3),
// sparing the server that work and the network the bytes. Saves go
// compressed once a SaveResponse of the server listed STATE_ENCODING_ZSTD in
// accepted_state_encodings (states under 256 bytes, or that don't shrink, go
// as they are); reads ask for zstd and decompress. Either way Checkpoint.State
// is the raw state. Off by default: enable it only when every server the
// client may reach supports it (an older server would store a frame sent to
// it as the state; mind rolling upgrades).
func WithCompressStates() Option { return func(o *options) { o.compress = true } }

// DefaultMaxMessageBytes is the default of WithMaxMessageBytes: a state of
// the server's default limit (64 MiB) with its metadata and ids fits.
const DefaultMaxMessageBytes = 80 << 20

// WithMaxMessageBytes sets the largest message the client receives (default
// DefaultMaxMessageBytes; gRPC's own default would be 4 MiB), and so the
// largest state it decompresses: a zstd frame declaring more is ErrDataLoss
// before anything is allocated. Raise it when the server accepts larger states.
func WithMaxMessageBytes(n int) Option { return func(o *options) { o.maxMessage = n } }

// WithChannels opens n connections (default 1) and sends calls round-robin
// over them. With `cairn serve --workers N` use N or a few more: the server's
// processes share its port by connection, so one connection reaches one of them.
func WithChannels(n int) Option { return func(o *options) { o.channels = n } }

// WithCoalesce sets how many senders of saves, and of loads, may be on the
// wire at once per connection (default DefaultCoalesce). A call goes out alone
// when none of its kind is in flight; concurrent ones wait to go together in
// one call (SaveBatch; BatchLoad), another sender starting once 4 wait, each
// keeping its own outcome, error and context deadline. Many goroutines saving at once then
// share gRPC's per-call cost instead of paying it once each; a lone caller
// waits for nothing. A call whose ctx carries outgoing gRPC metadata always
// goes alone. Against a server without SaveBatch the client falls back to one
// call per save by itself. 0 sends every call on its own.
func WithCoalesce(n int) Option { return func(o *options) { o.coalesce = n } }

// WithDialOptions appends raw gRPC dial options (interceptors, keepalive, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// DefaultDialTimeout bounds how long Dial waits for a connection when its
// context has no deadline.
const DefaultDialTimeout = 30 * time.Second

// Dial connects to a Cairn server at target, "host:port" or "unix:/path/to.sock",
// and waits until the connection is ready or ctx ends (DefaultDialTimeout
// when ctx has no deadline). The connection reconnects by itself afterwards;
// calls failing with UNAVAILABLE are retried.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout)
		defer cancel()
	}
	o := options{maxAttempts: 5, maxMessage: DefaultMaxMessageBytes, insecure: strings.HasPrefix(target, "unix:"),
		channels: 1, coalesce: DefaultCoalesce}
	for _, opt := range opts {
		opt(&o)
	}
	if o.channels < 1 {
		return nil, fmt.Errorf("cairn: WithChannels(%d): give 1 or more connections", o.channels)
	}
	if o.coalesce < 0 {
		return nil, fmt.Errorf("cairn: WithCoalesce(%d): give 0 (every call on its own) or more", o.coalesce)
	}
	c := &Client{timeout: o.timeout}
	// No identity state could be larger than a message; a frame's declared size is checked against it.
	c.wire.maxState = int64(o.maxMessage)
	if o.compress {
		enc, err := zstdEncoder()
		if err != nil {
			return nil, fmt.Errorf("cairn: zstd encoder: %w", err)
		}
		c.wire.enc = enc
	}
	creds := credentials.NewTLS(o.tls)
	if o.insecure {
		creds = insecure.NewCredentials()
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig(o.maxAttempts)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.maxMessage)),
	}
	if o.token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer(o.token)))
	}
	if o.timeout > 0 {
		dialOpts = append(dialOpts, grpc.WithChainUnaryInterceptor(timeoutUnary(o.timeout)))
	}
	c.pool = &connPool{}
	for i := 0; i < o.channels; i++ {
		conn, err := grpc.NewClient(target, append(dialOpts, o.dialOpts...)...)
		if err != nil {
			c.pool.Close()
			return nil, fmt.Errorf("cairn: dial %s: %w", target, err)
		}
		c.pool.conns = append(c.pool.conns, conn)
		conn.Connect()
		for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
			if !conn.WaitForStateChange(ctx, state) {
				c.pool.Close()
				return nil, fmt.Errorf("cairn: dial %s: %w (last state %s)", target, ctx.Err(), state)
			}
		}
	}
	c.conn = c.pool.conns[0]
	if o.channels == 1 {
		c.rpc = cairnv1.NewCheckpointStoreClient(c.conn)
	} else {
		c.rpc = cairnv1.NewCheckpointStoreClient(c.pool)
	}
	if o.coalesce > 0 {
		c.startCoalescing(o.coalesce, o.channels, o.maxMessage)
	}
	return c, nil
}

// Close closes the connections.
func (c *Client) Close() error { return c.pool.Close() }

// Raw returns the generated gRPC stub, for anything this package doesn't wrap.
func (c *Client) Raw() cairnv1.CheckpointStoreClient { return c.rpc }

// serviceConfig retries every method on UNAVAILABLE with exponential backoff.
func serviceConfig(maxAttempts int) string {
	if maxAttempts < 2 {
		return `{}`
	}
	return fmt.Sprintf(`{"methodConfig": [{
		"name": [{"service": "cairn.v1.CheckpointStore"}],
		"retryPolicy": {
			"maxAttempts": %d,
			"initialBackoff": "0.1s",
			"maxBackoff": "5s",
			"backoffMultiplier": 2,
			"retryableStatusCodes": ["UNAVAILABLE"]
		}
	}]}`, maxAttempts)
}

// bearer is a per-RPC credential sending a bearer token.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that tokens work over unix sockets and
// plaintext sidecar connections too.
func (bearer) RequireTransportSecurity() bool { return false }

func timeoutUnary(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
