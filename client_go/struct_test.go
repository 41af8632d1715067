package cairn

import (
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
)

// structOf must make exactly the Struct the JSON route makes, and leave to it
// everything it would rewrite or refuse.
func TestStructOfMatchesTheJSONRoute(t *testing.T) {
	direct := []map[string]any{
		{},
		{"source": "loop", "step": 3, "parents": map[string]any{}, "writes": nil, "score": 0.25},
		{"n": int64(maxSafeInt), "m": -maxSafeInt, "i32": int32(-7), "tags": []string{"a", "<b>"}, "none": []string(nil)},
		{"nested": []any{1.5, "x", true, nil, []any{}, map[string]any{"k": []any{map[string]any{}}}}, "nilmap": map[string]any(nil)},
		{"é ✓": "\u2028 \U0001f600", "big": 1e300, "tiny": 5e-324, "neg0": math.Copysign(0, -1)},
	}
	for _, m := range direct {
		got, ok := structOf(m)
		if !ok {
			t.Fatalf("%v: structOf refused it", m)
		}
		want, err := toStructJSON(m)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("%v:\n structOf %v\n JSON     %v", m, got, want)
		}
	}
	type point struct{ X int }
	viaJSON := []map[string]any{
		{"bad utf8": "\xff"},
		{"\xfe": 1},
		{"unsafe": int64(maxSafeInt + 1)},
		{"nan": math.NaN()},
		{"f32": float32(0.1)},
		{"struct": point{1}},
		{"deep": []any{map[string]any{"u": uint8(1)}}},
	}
	for _, m := range viaJSON {
		if _, ok := structOf(m); ok {
			t.Fatalf("%v: structOf took it, the JSON route must", m)
		}
	}
	if _, err := toStruct(map[string]any{"unsafe": int64(maxSafeInt + 1)}); err == nil {
		t.Fatal("an unsafe integer must still be refused")
	}
}

// The metadata LangGraph-style savers attach to every checkpoint.
var benchMetadata = map[string]any{
	"source": "loop", "step": 12, "parents": map[string]any{}, "run_id": "1f0a7c2e-5d3b-6e1a-9c44-0242ac120002",
	"writes": map[string]any{"agent": map[string]any{"messages": []any{"hi"}}}, "tags": []string{"prod", "eu"},
}

func BenchmarkToStruct(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := toStruct(benchMetadata); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) { // the route every save took before structOf
		b.ReportAllocs()
		for range b.N {
			if _, err := toStructJSON(benchMetadata); err != nil {
				b.Fatal(err)
			}
		}
	})
}
