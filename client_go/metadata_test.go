package cairn

// Unit tests of the metadata conversion (toStruct): an integer a double cannot
// hold exactly is refused rather than stored rounded. client_test.go checks
// that Save, List and ListThreads refuse it before sending anything.

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	twoTo60Plus1 = int64(1<<60 + 1) // 1152921504606846977; as a double 1152921504606846976
	maxSafe      = int64(1<<53 - 1) // 9007199254740991
)

// wantUnsafeInt asserts that toStruct(m) fails naming path and the integer n.
func wantUnsafeInt(t *testing.T, m map[string]any, path, n string) {
	t.Helper()
	s, err := toStruct(m)
	if err == nil {
		t.Fatalf("toStruct(%v) = %v, want an error for %s at %q", m, s, n, path)
	}
	want := `cairn: metadata value at "` + path + `" is the integer ` + n + `, beyond ±(2^53−1): metadata travels as ` +
		`google.protobuf.Struct, whose numbers are doubles, so it would be stored rounded; store it as a string`
	if err.Error() != want {
		t.Fatalf("toStruct(%v) error\n got: %v\nwant: %s", m, err, want)
	}
}

func TestMetadataIntegerBeyondDoublesIsRefused(t *testing.T) {
	wantUnsafeInt(t, map[string]any{"big": twoTo60Plus1}, "big", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"big": -twoTo60Plus1}, "big", "-1152921504606846977")
	wantUnsafeInt(t, map[string]any{"big": int(twoTo60Plus1)}, "big", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"big": uint64(twoTo60Plus1)}, "big", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"big": uint64(1<<64 - 1)}, "big", "18446744073709551615")
	wantUnsafeInt(t, map[string]any{"big": uint(twoTo60Plus1)}, "big", "1152921504606846977")
}

func TestMetadataIntegerBeyondDoublesIsRefusedAtAnyDepth(t *testing.T) {
	ok := map[string]any{"small": 1}
	wantUnsafeInt(t, map[string]any{"a": "x", "ids": []any{ok, map[string]any{"big": twoTo60Plus1}}}, "ids.1.big", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"m": map[string]any{"n": map[string]any{"big": uint64(twoTo60Plus1)}}}, "m.n.big", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"ids": []int64{1, 2, twoTo60Plus1}}, "ids.2", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"ids": [2]uint64{1, uint64(twoTo60Plus1)}}, "ids.1", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"m": map[string]int64{"big": twoTo60Plus1}}, "m.big", "1152921504606846977")
	big := twoTo60Plus1
	wantUnsafeInt(t, map[string]any{"p": &big}, "p", "1152921504606846977")
	// Values json encodes its own way are checked in their JSON.
	type run struct {
		Name string `json:"name"`
		ID   int64  `json:"run_id"`
	}
	wantUnsafeInt(t, map[string]any{"runs": []run{{"a", 1}, {"b", twoTo60Plus1}}}, "runs.1.run_id", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"m": map[int]int64{7: twoTo60Plus1}}, "m.7", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"ids": []ptrMarshaler{{}}}, "ids.0.id", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"n": json.Number("1152921504606846977")}, "n", "1152921504606846977")
	wantUnsafeInt(t, map[string]any{"raw": json.RawMessage(`{"l":[0,-1152921504606846977]}`)}, "raw.l.1", "-1152921504606846977")
}

func TestMetadataIntegerBoundary(t *testing.T) {
	s, err := toStruct(map[string]any{"max": maxSafe, "min": -maxSafe, "u": uint64(maxSafe), "n": json.Number("9007199254740991")})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"max": 9007199254740991, "min": -9007199254740991, "u": 9007199254740991, "n": 9007199254740991} {
		if got := s.GetFields()[k].GetNumberValue(); got != want {
			t.Fatalf("%s = %v, want %v", k, got, want)
		}
	}
	wantUnsafeInt(t, map[string]any{"big": maxSafe + 1}, "big", "9007199254740992")
	wantUnsafeInt(t, map[string]any{"big": -maxSafe - 1}, "big", "-9007199254740992")
	wantUnsafeInt(t, map[string]any{"big": uint64(maxSafe + 1)}, "big", "9007199254740992")
	wantUnsafeInt(t, map[string]any{"big": json.Number("9007199254740992")}, "big", "9007199254740992")
}

// Floats are doubles already: none is refused, whatever its value, so
// metadata read back from the server (numbers are float64) saves again.
func TestMetadataFloatsAreAccepted(t *testing.T) {
	m := map[string]any{"huge": 1e300, "half": 1.5, "f32": float32(1e30), "integral": float64(1 << 60), "e20": 1e20,
		"l": []any{-1e300}, "n": json.Number("1e300"), "d": json.Number("1152921504606846977.5")}
	s, err := toStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	f := s.GetFields()
	if f["huge"].GetNumberValue() != 1e300 || f["half"].GetNumberValue() != 1.5 || f["integral"].GetNumberValue() != 1<<60 ||
		f["e20"].GetNumberValue() != 1e20 || f["l"].GetListValue().GetValues()[0].GetNumberValue() != -1e300 {
		t.Fatalf("struct = %v", s)
	}
}

func TestMetadataOtherValuesAreUnchanged(t *testing.T) {
	var nilMap map[string]any
	var nilPtr *int64
	s, err := toStruct(map[string]any{"s": "1152921504606846977", "b": true, "nil": nil, "bytes": []byte{1, 2},
		"np": nilPtr, "nm": nilMap, "small": int8(-128), "strs": []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.GetFields()["s"].GetStringValue(); got != "1152921504606846977" {
		t.Fatalf("s = %q", got)
	}
	if s, err := toStruct(nil); s != nil || err != nil {
		t.Fatalf("toStruct(nil) = %v, %v", s, err)
	}
	// json's errors come first, as before.
	if _, err := toStruct(map[string]any{"c": make(chan int)}); err == nil || !strings.HasPrefix(err.Error(), "cairn: metadata: ") {
		t.Fatalf("err = %v", err)
	}
}

// ptrMarshaler has MarshalJSON on its pointer: json calls it on slice elements.
type ptrMarshaler struct{}

func (*ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{"id":1152921504606846977}`), nil }
