package cairn

// Unit tests of the state encoding (WithCompressStates); compress_test.go runs
// it against the server.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// compressible returns n bytes of JSON-like text that zstd shrinks well.
func compressible(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"role":"tool","step":%d,"content":"looked up order %d: shipped, tracking %x"},`, i, i*7919, i*104729)
	}
	return b.Bytes()[:n]
}

func encoder(t *testing.T) *zstd.Encoder {
	t.Helper()
	enc, err := zstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// The server refuses frames that don't declare their content size; EncodeAll
// declares it for every input the client compresses (>= minCompressBytes),
// single-segment or not (past the window of SpeedFastest), in one block
// or many, and decode reads every size back.
func TestFrameDeclaresItsContentSize(t *testing.T) {
	enc := encoder(t)
	w := &stateWire{maxState: DefaultMaxMessageBytes}
	for _, n := range []int{minCompressBytes, 300, 37 << 10, 300 << 10, 9 << 20} {
		state := compressible(n)
		frame := enc.EncodeAll(state, nil)
		var h zstd.Header
		if err := h.Decode(frame); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !h.HasFCS || h.FrameContentSize != uint64(n) || h.DictionaryID != 0 || h.Skippable {
			t.Fatalf("%d bytes: header %+v, want content size %d and no dictionary", n, h, n)
		}
		got, err := w.decode(&cairnv1.Checkpoint{State: frame, StateEncoding: encodingZstd, StateSizeBytes: int64(n)})
		if err != nil || !bytes.Equal(got, state) {
			t.Fatalf("%d bytes: decode = %d bytes, %v", n, len(got), err)
		}
	}
}

func TestCompressOnlyWhatTheServerAccepts(t *testing.T) {
	big := compressible(37 << 10)
	request := func(state []byte) (*Checkpoint, *cairnv1.SaveRequest) {
		cp := &Checkpoint{ThreadID: "t", State: state, StateType: "json"}
		req, err := saveRequest(cp, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cp, req
	}
	accepts := &cairnv1.SaveResponse{AcceptedStateEncodings: []cairnv1.StateEncoding{encodingZstd}}
	encodings := func(w *stateWire, state []byte) cairnv1.StateEncoding {
		_, req := request(state)
		w.compress(req)
		return req.GetCheckpoint().GetStateEncoding()
	}

	var off stateWire
	off.saved(accepts)
	if got := encodings(&off, big); got != encodingIdentity || off.accept() != nil {
		t.Fatalf("compression off: encoding %v, accept %v", got, off.accept())
	}

	on := stateWire{enc: encoder(t), maxState: DefaultMaxMessageBytes}
	if got := encodings(&on, big); got != encodingIdentity {
		t.Fatalf("before any SaveResponse: encoding %v, want identity", got)
	}
	on.saved(accepts)
	cp, req := request(big)
	on.compress(req)
	p := req.GetCheckpoint()
	if p.GetStateEncoding() != encodingZstd || len(p.GetState()) >= len(big) {
		t.Fatalf("after the server accepted zstd: encoding %v, %d bytes", p.GetStateEncoding(), len(p.GetState()))
	}
	if !bytes.Equal(cp.State, compressible(37<<10)) {
		t.Fatal("compress changed the caller's state")
	}
	if got, err := on.decode(&cairnv1.Checkpoint{State: p.State, StateEncoding: encodingZstd, StateSizeBytes: int64(len(big))}); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
	if got := encodings(&on, compressible(minCompressBytes-1)); got != encodingIdentity {
		t.Fatalf("a %d-byte state: encoding %v, want identity", minCompressBytes-1, got)
	}
	random := make([]byte, 4096)
	rand.Read(random)
	if got := encodings(&on, random); got != encodingIdentity {
		t.Fatalf("an incompressible state: encoding %v, want identity", got)
	}
	on.saved(&cairnv1.SaveResponse{}) // an older server answered
	if got := encodings(&on, big); got != encodingIdentity {
		t.Fatalf("after a server that doesn't accept zstd: encoding %v, want identity", got)
	}
}

func TestBadStateFromTheServerIsDataLoss(t *testing.T) {
	state := compressible(37 << 10)
	frame := encoder(t).EncodeAll(state, nil)
	undeclared, err := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	small := compressible(200) // below 256 bytes a multi-segment frame leaves its size out
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4}
	cases := []struct {
		name, want string
		cp         *cairnv1.Checkpoint
	}{
		{"garbage", "", &cairnv1.Checkpoint{State: []byte("\x28\xb5\x2f\xfd garbage")}}, // zstd magic, nonsense header
		{"not zstd", "not a zstd frame", &cairnv1.Checkpoint{State: state}},
		{"empty", "not a zstd frame", &cairnv1.Checkpoint{}},
		{"truncated", "does not decompress", &cairnv1.Checkpoint{State: frame[:len(frame)-7]}},
		{"corrupt", "does not decompress", &cairnv1.Checkpoint{State: flip(frame, len(frame)/2)}},
		{"two frames", "does not decompress", &cairnv1.Checkpoint{State: append(bytes.Clone(frame), frame...)}},
		{"size larger", "declares", &cairnv1.Checkpoint{State: frame, StateSizeBytes: int64(len(state)) + 1}},
		{"size smaller", "declares", &cairnv1.Checkpoint{State: frame, StateSizeBytes: int64(len(state)) - 1}},
		{"size negative", "declares", &cairnv1.Checkpoint{State: frame, StateSizeBytes: -1}},
		{"size undeclared", "does not declare its content size", &cairnv1.Checkpoint{State: undeclared.EncodeAll(small, nil), StateSizeBytes: int64(len(small))}},
		{"skippable", "skippable", &cairnv1.Checkpoint{State: skippable}},
		{"unknown encoding", "state_encoding 9", &cairnv1.Checkpoint{State: state, StateEncoding: 9}},
	}
	w := &stateWire{maxState: DefaultMaxMessageBytes}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cp.ThreadId, c.cp.CheckpointId = "t", "c"
			if c.cp.StateEncoding == encodingIdentity {
				c.cp.StateEncoding = encodingZstd
			}
			if c.cp.StateSizeBytes == 0 && !strings.HasPrefix(c.name, "size") {
				c.cp.StateSizeBytes = int64(len(state))
			}
			got, err := w.decode(c.cp)
			dataLoss(t, got, err, c.want)
		})
	}
	plain := &cairnv1.Checkpoint{State: state, StateSizeBytes: int64(len(state))}
	if got, err := w.decode(plain); err != nil || !bytes.Equal(got, state) {
		t.Fatalf("identity: %d bytes, %v", len(got), err)
	}
}

// dataLoss fails t unless err is ErrDataLoss with reason STATE_ENCODING and a
// message that names checkpoint "c" of thread "t" and contains want.
func dataLoss(t *testing.T, got []byte, err error, want string) {
	t.Helper()
	var ce *Error
	if !errors.Is(err, ErrDataLoss) || !errors.As(err, &ce) || ce.Reason != "STATE_ENCODING" {
		t.Fatalf("decode = %d bytes, %v; want ErrDataLoss with reason STATE_ENCODING", len(got), err)
	}
	if !strings.Contains(ce.Message, `checkpoint "c" of thread "t": `) || !strings.Contains(ce.Message, want) {
		t.Fatalf("message %q, want it to name the checkpoint and say %q", ce.Message, want)
	}
}

// A frame may declare at most the client's max message size: a server that
// declares a terabyte (in the frame and in state_size_bytes) gets DataLoss,
// not a terabyte allocation.
func TestStateOverTheMaxMessageSizeIsDataLoss(t *testing.T) {
	const huge = 1 << 40
	// Magic, a single-segment descriptor with an 8-byte content size, the
	// size, then an empty last raw block.
	frame := binary.LittleEndian.AppendUint64([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}, huge)
	frame = append(frame, 0x01, 0x00, 0x00)
	var h zstd.Header
	if err := h.Decode(frame); err != nil || !h.HasFCS || h.FrameContentSize != huge {
		t.Fatalf("hand-made header %+v, %v; want content size %d", h, err, huge)
	}
	w := &stateWire{maxState: DefaultMaxMessageBytes}
	cp := &cairnv1.Checkpoint{ThreadId: "t", CheckpointId: "c", State: frame, StateEncoding: encodingZstd, StateSizeBytes: huge}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := w.decode(cp)
	runtime.ReadMemStats(&after)
	dataLoss(t, got, err, fmt.Sprintf("declares %d bytes, over this client's max message size %d (raise it with WithMaxMessageBytes)", huge, DefaultMaxMessageBytes))
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("decode allocated %d bytes", n)
	}

	// A real state exactly at the limit decodes; one byte over does not.
	state := compressible(37 << 10)
	cp = &cairnv1.Checkpoint{ThreadId: "t", CheckpointId: "c", State: encoder(t).EncodeAll(state, nil), StateEncoding: encodingZstd, StateSizeBytes: int64(len(state))}
	at := &stateWire{maxState: int64(len(state))}
	if got, err := at.decode(cp); err != nil || !bytes.Equal(got, state) {
		t.Fatalf("at the limit: %d bytes, %v", len(got), err)
	}
	under := &stateWire{maxState: int64(len(state)) - 1}
	got, err = under.decode(cp)
	dataLoss(t, got, err, fmt.Sprintf("declares %d bytes, over this client's max message size %d", len(state), len(state)-1))
}

// flip returns a copy of b with the byte at i inverted.
func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0xff
	return b
}
