package cairn

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/client_go/gen/cairn/v1"
)

// Checkpoint is the state of one thread after one step of a graph.
type Checkpoint struct {
	ThreadID  string // required
	Namespace string // "" is the root graph
	// ID is generated (UUIDv7) by Save when empty, so that a retried save is
	// idempotent.
	ID        string
	ParentID  string
	State     []byte // serialized by the caller; the server never parses it
	StateType string // serializer tag, "json" for cross-language state
	// Metadata is any JSON object (numbers come back as float64).
	Metadata  map[string]any
	NodeName  string
	NextNodes []string

	// Set by the server; ignored by Save.
	CreatedAt  time.Time
	Sequence   int64
	StateSize  int64 // uncompressed bytes of State (set even when State is left out)
	StoredSize int64 // bytes in storage after compression

	// PendingWrites are the checkpoint's pending writes, filled by Load,
	// BatchLoad and List with IncludeWrites; ignored by Save.
	PendingWrites []PendingWrite
}

// Ref names a checkpoint: the head of (ThreadID, Namespace) when ID is empty.
type Ref struct {
	ThreadID  string
	Namespace string
	ID        string
}

// Write is one channel write of a task.
type Write struct {
	Idx       int32 // (task id, Idx) identifies the write; negative for special channels
	Channel   string
	ValueType string
	Value     []byte
}

// PendingWrite is a stored Write with the task and checkpoint it belongs to.
type PendingWrite struct {
	Write
	TaskID, TaskPath                  string
	ThreadID, Namespace, CheckpointID string
}

// SaveResult is what the server assigned to a saved checkpoint.
type SaveResult struct {
	CheckpointID   string
	Sequence       int64
	CreatedAt      time.Time
	AlreadyExisted bool // an identical checkpoint was already stored (a retry)
	StoredSize     int64
}

// ThreadInfo summarises one thread.
type ThreadInfo struct {
	ThreadID        string
	CheckpointCount int64
	HeadID          string
	HeadMetadata    map[string]any
	HeadNodeName    string
	HeadNextNodes   []string
	UpdatedAt       time.Time
}

func toStruct(m map[string]any) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	// Through JSON, so that any JSON-marshalable value works (structpb.NewStruct
	// rejects e.g. []string and structs).
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cairn: metadata: %w", err)
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("cairn: metadata: %w", err)
	}
	return s, nil
}

func fromStruct(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	return s.AsMap()
}

func (cp *Checkpoint) toProto() (*cairnv1.Checkpoint, error) {
	md, err := toStruct(cp.Metadata)
	if err != nil {
		return nil, err
	}
	return &cairnv1.Checkpoint{
		ThreadId:           cp.ThreadID,
		Namespace:          cp.Namespace,
		CheckpointId:       cp.ID,
		ParentCheckpointId: cp.ParentID,
		State:              cp.State,
		StateType:          cp.StateType,
		Metadata:           md,
		NodeName:           cp.NodeName,
		NextNodes:          cp.NextNodes,
	}, nil
}

// fromProto converts a checkpoint the server sent; its state is decoded
// (stateWire.decode), which fails with ErrDataLoss on a bad zstd frame.
func fromProto(p *cairnv1.Checkpoint, w *stateWire) (*Checkpoint, error) {
	if p == nil {
		return nil, nil
	}
	state, err := w.decode(p)
	if err != nil {
		return nil, err
	}
	cp := &Checkpoint{
		ThreadID:   p.GetThreadId(),
		Namespace:  p.GetNamespace(),
		ID:         p.GetCheckpointId(),
		ParentID:   p.GetParentCheckpointId(),
		State:      state,
		StateType:  p.GetStateType(),
		Metadata:   fromStruct(p.GetMetadata()),
		NodeName:   p.GetNodeName(),
		NextNodes:  p.GetNextNodes(),
		Sequence:   p.GetSequence(),
		StateSize:  p.GetStateSizeBytes(),
		StoredSize: p.GetStoredSizeBytes(),
	}
	if p.GetCreatedAt() != nil {
		cp.CreatedAt = p.GetCreatedAt().AsTime()
	}
	return cp, nil
}

func fromLoad(r *cairnv1.LoadResponse, w *stateWire) (*Checkpoint, error) {
	cp, err := fromProto(r.GetCheckpoint(), w)
	if cp != nil {
		cp.PendingWrites = fromWrites(r.GetPendingWrites())
	}
	return cp, err
}

func fromWrites(ws []*cairnv1.PendingWrite) []PendingWrite {
	if len(ws) == 0 {
		return nil
	}
	out := make([]PendingWrite, len(ws))
	for i, w := range ws {
		out[i] = PendingWrite{
			Write:        Write{Idx: w.GetIdx(), Channel: w.GetChannel(), ValueType: w.GetValueType(), Value: w.GetValue()},
			TaskID:       w.GetTaskId(),
			TaskPath:     w.GetTaskPath(),
			ThreadID:     w.GetThreadId(),
			Namespace:    w.GetNamespace(),
			CheckpointID: w.GetCheckpointId(),
		}
	}
	return out
}

func fromSave(r *cairnv1.SaveResponse) *SaveResult {
	res := &SaveResult{
		CheckpointID:   r.GetCheckpointId(),
		Sequence:       r.GetSequence(),
		AlreadyExisted: r.GetAlreadyExisted(),
		StoredSize:     r.GetStoredSizeBytes(),
	}
	if r.GetCreatedAt() != nil {
		res.CreatedAt = r.GetCreatedAt().AsTime()
	}
	return res
}

// itemError turns the error of one stream or batch item into an *Error.
func itemError(e *cairnv1.ItemError) error {
	if e == nil {
		return nil
	}
	return &Error{Code: codes.Code(e.GetCode()), Message: e.GetMessage(), Reason: e.GetReason(), Metadata: e.GetMetadata()}
}

func (r Ref) toProto(accept []cairnv1.StateEncoding) *cairnv1.LoadRequest {
	return &cairnv1.LoadRequest{ThreadId: r.ThreadID, Namespace: r.Namespace, CheckpointId: r.ID, AcceptStateEncodings: accept}
}
