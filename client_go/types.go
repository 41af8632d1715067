package cairn

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	// Metadata is any JSON object (numbers come back as float64). An integer
	// beyond ±(2^53−1) is refused: Struct numbers are doubles.
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

// toStruct converts metadata, or a metadata filter, to the Struct sent on the
// wire. An integer beyond ±(2^53−1) is an error (see checkSafeInts).
func toStruct(m map[string]any) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	if s, ok := structOf(m); ok {
		return s, nil
	}
	return toStructJSON(m)
}

// toStructJSON is toStruct through JSON, so that any JSON-marshalable value
// works (structpb.NewStruct rejects e.g. []string and structs).
func toStructJSON(m map[string]any) (*structpb.Struct, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cairn: metadata: %w", err)
	}
	if err := checkSafeInts("", reflect.ValueOf(m)); err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("cairn: metadata: %w", err)
	}
	return s, nil
}

// structOf builds the Struct of m directly when every value is of a type whose
// Value is the one toStructJSON would make (JSON's own types as Go decodes
// them, ints within ±(2^53−1), []string); ok is false for anything else (and
// for what toStructJSON refuses or rewrites: NaN, invalid UTF-8, an unsafe
// integer), which then goes through JSON. Metadata is built on every save:
// this spares a json.Marshal, a protojson.Unmarshal and a reflective walk.
func structOf(m map[string]any) (*structpb.Struct, bool) {
	fields := make(map[string]*structpb.Value, len(m))
	for k, v := range m {
		x, ok := valueOf(v)
		if !ok || !utf8.ValidString(k) {
			return nil, false
		}
		fields[k] = x
	}
	return &structpb.Struct{Fields: fields}, true
}

func valueOf(v any) (*structpb.Value, bool) {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue(), true
	case bool:
		return structpb.NewBoolValue(x), true
	case string:
		return structpb.NewStringValue(x), utf8.ValidString(x)
	case float64:
		return structpb.NewNumberValue(x), !math.IsNaN(x) && !math.IsInf(x, 0)
	case int:
		return structpb.NewNumberValue(float64(x)), x <= maxSafeInt && x >= -maxSafeInt
	case int64:
		return structpb.NewNumberValue(float64(x)), x <= maxSafeInt && x >= -maxSafeInt
	case int32:
		return structpb.NewNumberValue(float64(x)), true
	case map[string]any:
		if x == nil {
			return structpb.NewNullValue(), true // json: null
		}
		s, ok := structOf(x)
		return structpb.NewStructValue(s), ok
	case []any:
		if x == nil {
			return structpb.NewNullValue(), true
		}
		l := make([]*structpb.Value, len(x))
		for i, e := range x {
			var ok bool
			if l[i], ok = valueOf(e); !ok {
				return nil, false
			}
		}
		return structpb.NewListValue(&structpb.ListValue{Values: l}), true
	case []string:
		if x == nil {
			return structpb.NewNullValue(), true
		}
		l := make([]*structpb.Value, len(x))
		for i, e := range x {
			if !utf8.ValidString(e) {
				return nil, false
			}
			l[i] = structpb.NewStringValue(e)
		}
		return structpb.NewListValue(&structpb.ListValue{Values: l}), true
	}
	return nil, false
}

// maxSafeInt is 2^53−1, the largest magnitude up to which every integer is a
// double (JavaScript's Number.MAX_SAFE_INTEGER).
const maxSafeInt = 1<<53 - 1

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	jsonNumberType    = reflect.TypeFor[json.Number]()
)

// checkSafeInts returns an error for the first integer in v (at any depth)
// whose magnitude is beyond maxSafeInt: Struct numbers are doubles, so it
// would be stored rounded. Floats are accepted whatever their value, so
// metadata read back (numbers are float64) can be saved again. Maps, slices,
// pointers and interfaces are walked by their Go types; a value json encodes
// its own way (a struct, a json.Marshaler, a map with non-string keys) is
// checked in its JSON text, where every integer literal counts as an integer.
func checkSafeInts(path string, v reflect.Value) error {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if t == jsonNumberType {
		return checkJSONNumber(path, json.Number(v.String()))
	}
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			return nil
		}
		return checkJSONOf(path, v)
	}
	if v.CanAddr() && (reflect.PointerTo(t).Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)) {
		return checkJSONOf(path, v.Addr()) // json calls pointer methods on addressable values (slice elements)
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkSafeInts(path, v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := v.Int(); n > maxSafeInt || n < -maxSafeInt {
			return unsafeIntError(path, strconv.FormatInt(n, 10))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n := v.Uint(); n > maxSafeInt {
			return unsafeIntError(path, strconv.FormatUint(n, 10))
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return checkJSONOf(path, v) // json's own key encoding
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if err := checkSafeInts(joinPath(path, k.String()), v.MapIndex(k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return nil // []byte: a base64 string
		}
		for i := range v.Len() {
			if err := checkSafeInts(joinPath(path, strconv.Itoa(i)), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64:
	default: // structs, ...: whatever json makes of them
		return checkJSONOf(path, v)
	}
	return nil
}

// checkJSONOf checks the integer literals of v's JSON encoding.
func checkJSONOf(path string, v reflect.Value) error {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Errorf("cairn: metadata: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return fmt.Errorf("cairn: metadata: %w", err)
	}
	return checkSafeInts(path, reflect.ValueOf(x))
}

// checkJSONNumber checks n if it is an integer literal (no '.', 'e' or 'E').
func checkJSONNumber(path string, n json.Number) error {
	s := string(n)
	if strings.ContainsAny(s, ".eE") {
		return nil
	}
	i, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil // not a number: json.Marshal has refused it already
	}
	if i.CmpAbs(big.NewInt(maxSafeInt)) > 0 {
		return unsafeIntError(path, s)
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func unsafeIntError(path, n string) error {
	return fmt.Errorf("cairn: metadata value at %q is the integer %s, beyond ±(2^53−1): metadata travels as "+
		"google.protobuf.Struct, whose numbers are doubles, so it would be stored rounded; store it as a string", path, n)
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
