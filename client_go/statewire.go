package cairn

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/codes"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// minCompressBytes: shorter states stay identity; compressing them costs
// more than it saves (the server's rule too).
const minCompressBytes = 256

const (
	encodingIdentity = cairnv1.StateEncoding_STATE_ENCODING_UNSPECIFIED
	encodingZstd     = cairnv1.StateEncoding_STATE_ENCODING_ZSTD
)

// The zstd codec is shared by every client: EncodeAll and DecodeAll are safe
// for concurrent use, and each encoder holds its own tables.
var (
	// SpeedFastest is zstd's level 1, like the Python client: ~0.7x the CPU of
	// level 3 for a frame a few percent larger (the client pays for
	// compression, the server and the network gain from it). EncodeAll
	// writes one frame without a dictionary that declares its content size
	// for every input of 256 bytes or more (frameHeader.appendTo in
	// klauspost/compress; TestFrameDeclaresItsContentSize checks it), which
	// the server requires.
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	})
	// The cap limit makes DecodeAll write at most cap(dst) bytes, so a frame
	// never decompresses past the state_size_bytes its checkpoint claims.
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(0))
	})
)

// stateWire is how one client's states travel (WithCompressStates). Saves
// are compressed only while the server's latest SaveResponse lists
// STATE_ENCODING_ZSTD: an older server would store the frame as the state.
type stateWire struct {
	enc           *zstd.Encoder // nil: compression is off
	maxState      int64         // WithMaxMessageBytes: largest zstd frame content size decoded
	serverAccepts atomic.Bool
}

// accept is the accept_state_encodings of a read.
func (w *stateWire) accept() []cairnv1.StateEncoding {
	if w.enc == nil {
		return nil
	}
	return []cairnv1.StateEncoding{encodingZstd}
}

// compress replaces the state of req with its zstd frame when the server
// accepts one, the state is not tiny and the frame is smaller. req is built
// by this package (the caller's Checkpoint and its bytes are not touched).
func (w *stateWire) compress(req *cairnv1.SaveRequest) {
	p := req.GetCheckpoint()
	if w.enc == nil || !w.serverAccepts.Load() || p.GetStateEncoding() != encodingIdentity ||
		len(p.GetState()) < minCompressBytes {
		return
	}
	if frame := w.enc.EncodeAll(p.State, nil); len(frame) < len(p.State) {
		p.State, p.StateEncoding = frame, encodingZstd
	}
}

// saved notes whether the server that answered a save accepts zstd states.
func (w *stateWire) saved(r *cairnv1.SaveResponse) {
	if w.enc != nil {
		w.serverAccepts.Store(slices.Contains(r.GetAcceptedStateEncodings(), encodingZstd))
	}
}

// decode returns the state of a checkpoint the server sent: as is, or its
// zstd frame decompressed. A frame that is not what the checkpoint says, that
// declares more than w.maxState bytes, or an encoding this client doesn't
// know, is ErrDataLoss with reason STATE_ENCODING.
func (w *stateWire) decode(p *cairnv1.Checkpoint) ([]byte, error) {
	switch p.GetStateEncoding() {
	case encodingIdentity:
		return p.GetState(), nil
	case encodingZstd:
	default:
		return nil, stateError(p, "the server sent state_encoding %d, which this client did not ask for", p.GetStateEncoding())
	}
	frame, size := p.GetState(), p.GetStateSizeBytes()
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		return nil, stateError(p, "the zstd-encoded state is not a zstd frame (%v)", err)
	}
	switch {
	case h.Skippable:
		return nil, stateError(p, "the zstd-encoded state is a skippable frame")
	case h.DictionaryID != 0:
		return nil, stateError(p, "the zstd frame needs dictionary %d", h.DictionaryID)
	case !h.HasFCS:
		return nil, stateError(p, "the zstd frame does not declare its content size")
	case size < 0 || h.FrameContentSize != uint64(size):
		return nil, stateError(p, "the zstd frame declares %d bytes, state_size_bytes is %d", h.FrameContentSize, size)
	case size > w.maxState:
		// Checked before the buffer of that size is allocated: a faulty server could declare terabytes.
		return nil, stateError(p, "the zstd frame declares %d bytes, over this client's max message size %d (raise it with WithMaxMessageBytes)", size, w.maxState)
	}
	dec, err := zstdDecoder()
	if err != nil {
		return nil, stateError(p, "no zstd decoder (%v)", err)
	}
	state, err := dec.DecodeAll(frame, make([]byte, 0, size))
	if err != nil {
		return nil, stateError(p, "the zstd-encoded state does not decompress (%v)", err)
	}
	if int64(len(state)) != size {
		return nil, stateError(p, "the zstd frame decompresses to %d bytes, state_size_bytes is %d", len(state), size)
	}
	return state, nil
}

func stateError(p *cairnv1.Checkpoint, format string, args ...any) *Error {
	where := fmt.Sprintf("checkpoint %q of thread %q: ", p.GetCheckpointId(), p.GetThreadId())
	return &Error{Code: codes.DataLoss, Reason: "STATE_ENCODING", Message: where + fmt.Sprintf(format, args...)}
}
