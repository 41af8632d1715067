package cairn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
)

var target string

func TestMain(m *testing.M) { testserver.Main(m, &target) }

// dial connects to the test server, sending $CAIRN_TOKEN when set.
func dial(t *testing.T, opts ...cairn.Option) *cairn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]cairn.Option{cairn.WithInsecure()}, opts...)
	if tok := os.Getenv("CAIRN_TOKEN"); tok != "" {
		opts = append(opts, cairn.WithToken(tok))
	}
	c, err := cairn.Dial(ctx, target, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// thread returns a thread id unique to this run.
func thread(t *testing.T) string {
	return "go-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + uuid.NewString()
}

// threadIDs is n distinct thread ids of this test.
func threadIDs(t *testing.T, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", thread(t), i)
	}
	return ids
}

func save(t *testing.T, c *cairn.Client, cp *cairn.Checkpoint, opts ...cairn.SaveOption) *cairn.SaveResult {
	t.Helper()
	res, err := c.Save(context.Background(), cp, opts...)
	if err != nil {
		t.Fatalf("save %+v: %v", cp, err)
	}
	return res
}

// cairnErr asserts that err is an *Error matching sentinel, with reason.
func cairnErr(t *testing.T, err, sentinel error, reason string) *cairn.Error {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	var ce *cairn.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err %T is not a *cairn.Error", err)
	}
	if ce.Reason != reason {
		t.Fatalf("reason = %q, want %q (%v)", ce.Reason, reason, err)
	}
	return ce
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)
	state := []byte(`{"messages":["hi"],"n":1}`)
	md := map[string]any{"step": 1, "source": "loop", "nested": map[string]any{"ok": true, "list": []string{"a"}}}
	first := save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "cp-1", State: []byte(`{}`), StateType: "json"})
	res := save(t, c, &cairn.Checkpoint{
		ThreadID: th, ID: "cp-2", ParentID: first.CheckpointID, State: state, StateType: "json",
		Metadata: md, NodeName: "agent", NextNodes: []string{"tools", "end"},
	})
	if res.CheckpointID != "cp-2" || res.AlreadyExisted || res.Sequence <= first.Sequence || res.CreatedAt.IsZero() {
		t.Fatalf("unexpected save result %+v after %+v", res, first)
	}
	for _, ref := range []cairn.Ref{{ThreadID: th, ID: "cp-2"}, {ThreadID: th}} {
		got, err := c.Load(ctx, ref)
		if err != nil {
			t.Fatalf("load %+v: %v", ref, err)
		}
		if got.ID != "cp-2" || got.ThreadID != th || got.ParentID != "cp-1" || string(got.State) != string(state) ||
			got.StateType != "json" || got.NodeName != "agent" || !reflect.DeepEqual(got.NextNodes, []string{"tools", "end"}) ||
			got.Sequence != res.Sequence || !got.CreatedAt.Equal(res.CreatedAt) || got.StateSize != int64(len(state)) {
			t.Fatalf("load %+v = %+v", ref, got)
		}
		want := map[string]any{"step": 1.0, "source": "loop", "nested": map[string]any{"ok": true, "list": []any{"a"}}}
		if !reflect.DeepEqual(got.Metadata, want) {
			t.Fatalf("metadata = %#v, want %#v", got.Metadata, want)
		}
	}
}

func TestSaveGeneratesUUIDv7AndIsIdempotent(t *testing.T) {
	c := dial(t)
	cp := &cairn.Checkpoint{ThreadID: thread(t), State: []byte(`{"a":1}`), StateType: "json"}
	res := save(t, c, cp)
	id, err := uuid.Parse(res.CheckpointID)
	if err != nil || id.Version() != 7 {
		t.Fatalf("generated id %q is not a UUIDv7 (%v)", res.CheckpointID, err)
	}
	if cp.ID != "" {
		t.Fatalf("Save modified its argument: ID = %q", cp.ID)
	}
	cp.ID = res.CheckpointID
	again := save(t, c, cp)
	if !again.AlreadyExisted || again.Sequence != res.Sequence {
		t.Fatalf("identical re-save = %+v, want already_existed with sequence %d", again, res.Sequence)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)

	t.Run("NOT_FOUND empty thread", func(t *testing.T) {
		_, err := c.Load(ctx, cairn.Ref{ThreadID: thread(t)})
		cairnErr(t, err, cairn.ErrNotFound, "THREAD_EMPTY")
		if status.Code(err) != codes.NotFound {
			t.Fatalf("status.Code = %v", status.Code(err))
		}
	})
	a := save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "a", State: []byte("1"), StateType: "json"})
	t.Run("NOT_FOUND missing checkpoint", func(t *testing.T) {
		_, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: "nope"})
		cairnErr(t, err, cairn.ErrNotFound, "CHECKPOINT_NOT_FOUND")
	})
	t.Run("ABORTED head moved", func(t *testing.T) {
		b := save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "b", ParentID: "a", State: []byte("2"), StateType: "json"}, cairn.ExpectHead(a.CheckpointID))
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ID: "c", ParentID: "a", State: []byte("3"), StateType: "json"}, cairn.ExpectHead(a.CheckpointID))
		ce := cairnErr(t, err, cairn.ErrConflict, "HEAD_MOVED")
		if ce.CurrentHeadID() != b.CheckpointID || ce.Code != codes.Aborted {
			t.Fatalf("current head = %q code %v, want %q ABORTED", ce.CurrentHeadID(), ce.Code, b.CheckpointID)
		}
		_, err = c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ID: "d", State: []byte("4"), StateType: "json"}, cairn.ExpectEmpty())
		if ce := cairnErr(t, err, cairn.ErrConflict, "HEAD_MOVED"); ce.CurrentHeadID() != b.CheckpointID {
			t.Fatalf("expect_empty conflict names head %q, want %q", ce.CurrentHeadID(), b.CheckpointID)
		}
		save(t, c, &cairn.Checkpoint{ThreadID: thread(t), State: []byte("1"), StateType: "json"}, cairn.ExpectEmpty())
	})
	t.Run("ALREADY_EXISTS checkpoint id", func(t *testing.T) {
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ID: "a", State: []byte("other"), StateType: "json"})
		cairnErr(t, err, cairn.ErrAlreadyExists, "CHECKPOINT_ID_CONFLICT")
		save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "a", State: []byte(`"other"`), StateType: "json"}, cairn.ReplaceExisting())
		got, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: "a"})
		if err != nil || string(got.State) != `"other"` || got.Sequence != a.Sequence {
			t.Fatalf("after replace: %+v, %v", got, err)
		}
	})
	t.Run("INVALID_ARGUMENT", func(t *testing.T) {
		_, err := c.Save(ctx, &cairn.Checkpoint{State: []byte("1"), StateType: "json"})
		ce := cairnErr(t, err, cairn.ErrInvalidArgument, "INVALID_FIELD")
		if !strings.Contains(ce.Field(), "thread_id") {
			t.Fatalf("field = %q, want thread_id", ce.Field())
		}
		_, err = c.ListPage(ctx, cairn.ListQuery{ThreadID: th, PageSize: -1})
		cairnErr(t, err, cairn.ErrInvalidArgument, "INVALID_FIELD")
		_, err = c.Prune(ctx, []string{th}, 0, 0)
		cairnErr(t, err, cairn.ErrInvalidArgument, "INVALID_FIELD")
		_, err = c.Save(ctx, &cairn.Checkpoint{ThreadID: "bad\x01id", State: []byte("1"), StateType: "json"})
		cairnErr(t, err, cairn.ErrInvalidArgument, "INVALID_FIELD")
	})
	t.Run("RESOURCE_EXHAUSTED metadata too large", func(t *testing.T) {
		big := map[string]any{"blob": strings.Repeat("x", 100<<10)}
		_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: []byte("1"), StateType: "json", Metadata: big})
		ce := cairnErr(t, err, cairn.ErrResourceExhausted, "LIMIT_EXCEEDED")
		if ce.Metadata["limit"] == "" {
			t.Fatalf("metadata %v lacks limit", ce.Metadata)
		}
	})
	t.Run("PutWrites NOT_FOUND and ALREADY_EXISTS", func(t *testing.T) {
		_, err := c.PutWrites(ctx, cairn.Ref{ThreadID: th, ID: "missing"}, cairn.TaskWrites{TaskID: "t", Writes: []cairn.Write{{Channel: "x", Value: []byte("1")}}})
		cairnErr(t, err, cairn.ErrNotFound, "CHECKPOINT_NOT_FOUND")
		ref := cairn.Ref{ThreadID: th, ID: "a"}
		if _, err := c.PutWrites(ctx, ref, cairn.TaskWrites{TaskID: "t", Writes: []cairn.Write{{Channel: "x", Value: []byte("1")}}}); err != nil {
			t.Fatal(err)
		}
		_, err = c.PutWrites(ctx, ref, cairn.TaskWrites{TaskID: "t", Writes: []cairn.Write{{Channel: "x", Value: []byte("2")}}})
		cairnErr(t, err, cairn.ErrAlreadyExists, "WRITE_CONFLICT")
	})
	t.Run("deadline", func(t *testing.T) {
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		_, err := c.Load(dctx, cairn.Ref{ThreadID: th})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestSaveStream(t *testing.T) {
	c := dial(t)
	th := thread(t)
	cps := []*cairn.Checkpoint{
		{ThreadID: th, ID: "1", State: []byte("1"), StateType: "json"},
		{ThreadID: th, ID: "2", ParentID: "1", State: []byte("2"), StateType: "json"},
		{ThreadID: th, ID: "1", State: []byte("changed"), StateType: "json"}, // conflicts
		{ThreadID: th, State: []byte("4"), StateType: "json"},                // id generated
	}
	res, err := c.SaveStream(context.Background(), cps)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || res[0].Err != nil || res[1].Err != nil || res[3].Err != nil {
		t.Fatalf("results %+v", res)
	}
	cairnErr(t, res[2].Err, cairn.ErrAlreadyExists, "CHECKPOINT_ID_CONFLICT")
	if res[0].CheckpointID != "1" || res[1].Sequence <= res[0].Sequence || res[3].Sequence <= res[1].Sequence {
		t.Fatalf("results out of order: %+v %+v %+v", res[0].SaveResult, res[1].SaveResult, res[3].SaveResult)
	}
	head, err := c.Load(context.Background(), cairn.Ref{ThreadID: th})
	if err != nil || head.ID != res[3].CheckpointID {
		t.Fatalf("head = %+v, %v; want %s", head, err, res[3].CheckpointID)
	}
}

func TestBatchLoad(t *testing.T) {
	c := dial(t)
	th := thread(t)
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "x", State: []byte(`"x"`), StateType: "json"})
	res, err := c.BatchLoad(context.Background(), []cairn.Ref{{ThreadID: th, ID: "x"}, {ThreadID: th, ID: "y"}, {ThreadID: th}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Checkpoint == nil || string(res[0].Checkpoint.State) != `"x"` || res[2].Checkpoint.ID != "x" {
		t.Fatalf("results %+v", res)
	}
	cairnErr(t, res[1].Err, cairn.ErrNotFound, "CHECKPOINT_NOT_FOUND")
	_, err = c.BatchLoad(context.Background(), make([]cairn.Ref, 1001))
	cairnErr(t, err, cairn.ErrInvalidArgument, "INVALID_FIELD")
}

func TestListPagesFiltersAndWrites(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)
	for i := 1; i <= 5; i++ {
		save(t, c, &cairn.Checkpoint{ThreadID: th, ID: fmt.Sprint(i), State: []byte(fmt.Sprint(i)), StateType: "json",
			Metadata: map[string]any{"step": i, "even": i%2 == 0}})
	}
	save(t, c, &cairn.Checkpoint{ThreadID: th, Namespace: "sub", ID: "s1", State: []byte("0"), StateType: "json"})
	if _, err := c.PutWrites(ctx, cairn.Ref{ThreadID: th, ID: "4"}, cairn.TaskWrites{TaskID: "task", TaskPath: "p",
		Writes: []cairn.Write{{Idx: 0, Channel: "a", ValueType: "json", Value: []byte("1")}, {Idx: 1, Channel: "b", ValueType: "json", Value: []byte("2")}}}); err != nil {
		t.Fatal(err)
	}

	var ids []string
	pages := 0
	for page, err := range c.ListPages(ctx, cairn.ListQuery{ThreadID: th, Namespace: cairn.Namespace(""), PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, cp := range page.Checkpoints {
			if cp.State != nil || cp.StateSize != 1 {
				t.Fatalf("listing without state returned %+v", cp)
			}
			ids = append(ids, cp.ID)
		}
	}
	if pages != 3 || strings.Join(ids, ",") != "5,4,3,2,1" {
		t.Fatalf("pages=%d ids=%v, want 3 pages 5,4,3,2,1", pages, ids)
	}

	collect := func(q cairn.ListQuery) (out []*cairn.Checkpoint) {
		t.Helper()
		for cp, err := range c.List(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, cp)
		}
		return out
	}
	if all := collect(cairn.ListQuery{ThreadID: th}); len(all) != 6 {
		t.Fatalf("all namespaces: %d checkpoints, want 6", len(all))
	}
	even := collect(cairn.ListQuery{ThreadID: th, MetadataFilter: map[string]any{"even": true}, IncludeState: true, IncludeWrites: true})
	if len(even) != 2 || even[0].ID != "4" || even[1].ID != "2" || string(even[0].State) != "4" {
		t.Fatalf("even = %+v", even)
	}
	if w := even[0].PendingWrites; len(w) != 2 || w[0].Channel != "a" || w[1].Channel != "b" || w[0].TaskID != "task" || w[0].CheckpointID != "4" {
		t.Fatalf("writes of 4 = %+v", w)
	}
	if older := collect(cairn.ListQuery{ThreadID: th, Namespace: cairn.Namespace(""), Before: "3"}); len(older) != 2 {
		t.Fatalf("before 3: %d checkpoints, want 2", len(older))
	}
	// Breaking out of the iterator early is fine.
	for range c.List(ctx, cairn.ListQuery{ThreadID: th, PageSize: 1}) {
		break
	}
}

func TestListThreads(t *testing.T) {
	c := dial(t)
	th := thread(t)
	marker := uuid.NewString()
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "1", State: []byte("1"), StateType: "json", NodeName: "n", NextNodes: []string{"m"}, Metadata: map[string]any{"marker": marker}})
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "2", State: []byte("2"), StateType: "json", NodeName: "n2", Metadata: map[string]any{"marker": marker}})
	var got []*cairn.ThreadInfo
	for info, err := range c.ListThreads(context.Background(), cairn.ThreadQuery{MetadataFilter: map[string]any{"marker": marker}}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info)
	}
	if len(got) != 1 || got[0].ThreadID != th || got[0].CheckpointCount != 2 || got[0].HeadID != "2" || got[0].HeadNodeName != "n2" ||
		got[0].HeadMetadata["marker"] != marker || got[0].UpdatedAt.IsZero() {
		t.Fatalf("threads = %+v", got)
	}
}

// A metadata integer beyond ±(2^53−1) is refused before anything is sent, in
// saved metadata and in filters (metadata_test.go covers the conversion).
func TestSaveAndListRefuseMetadataIntegerBeyondDoubles(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)
	const big = int64(1<<60 + 1) // as a double: 1<<60
	refused := func(what string, err error, path, n string) {
		t.Helper()
		want := fmt.Sprintf(`cairn: metadata value at %q is the integer %s, beyond ±(2^53−1)`, path, n)
		var ce *cairn.Error
		if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &ce) {
			t.Fatalf("%s: err = %v, want a client-side error containing %s", what, err, want)
		}
	}
	_, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, ID: "big", State: []byte("1"), StateType: "json",
		Metadata: map[string]any{"ids": []any{map[string]any{"big": big}}}})
	refused("Save", err, "ids.0.big", "1152921504606846977")
	_, err = c.SaveStream(ctx, []*cairn.Checkpoint{{ThreadID: th, ID: "big", State: []byte("1"), StateType: "json",
		Metadata: map[string]any{"big": uint64(big)}}})
	refused("SaveStream", err, "big", "1152921504606846977")
	if _, err := c.Load(ctx, cairn.Ref{ThreadID: th}); !errors.Is(err, cairn.ErrNotFound) {
		t.Fatalf("load after refused saves: %v, want ErrNotFound", err)
	}

	// The boundary comes back exact; a float beyond it is stored as it is.
	const maxSafe = int64(1<<53 - 1)
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "max", State: []byte("1"), StateType: "json",
		Metadata: map[string]any{"n": maxSafe, "neg": -maxSafe}})
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "float", State: []byte("1"), StateType: "json",
		Metadata: map[string]any{"n": float64(1 << 60), "huge": 1e300}})
	got, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: "max"})
	if err != nil || got.Metadata["n"] != 9007199254740991.0 || got.Metadata["neg"] != -9007199254740991.0 {
		t.Fatalf("load max: %+v, %v", got, err)
	}
	page, err := c.ListPage(ctx, cairn.ListQuery{ThreadID: th, MetadataFilter: map[string]any{"n": maxSafe}})
	if err != nil || len(page.Checkpoints) != 1 || page.Checkpoints[0].ID != "max" {
		t.Fatalf("filter by the boundary: %+v, %v", page, err)
	}

	// Rounded, this filter would match the checkpoint "float".
	filter := map[string]any{"n": big}
	_, err = c.ListPage(ctx, cairn.ListQuery{ThreadID: th, MetadataFilter: filter})
	refused("ListPage", err, "n", "1152921504606846977")
	n := 0
	for _, err := range c.List(ctx, cairn.ListQuery{ThreadID: th, MetadataFilter: filter}) {
		refused("List", err, "n", "1152921504606846977")
		n++
	}
	for _, err := range c.ListThreads(ctx, cairn.ThreadQuery{MetadataFilter: map[string]any{"x": []any{-big}}}) {
		refused("ListThreads", err, "x.0", "-1152921504606846977")
		n++
	}
	if n != 2 {
		t.Fatalf("List and ListThreads yielded %d items, want one error each", n)
	}
	_, err = c.ListPage(ctx, cairn.ListQuery{ThreadID: th, MetadataFilter: map[string]any{"n": maxSafe + 1}})
	refused("ListPage", err, "n", "9007199254740992")
}

func TestDeleteAndClear(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "1", State: []byte("1"), StateType: "json"})
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "2", State: []byte("2"), StateType: "json"})
	save(t, c, &cairn.Checkpoint{ThreadID: th, Namespace: "sub", ID: "3", State: []byte("3"), StateType: "json"})
	for _, want := range []bool{true, false} {
		if deleted, err := c.Delete(ctx, cairn.Ref{ThreadID: th, ID: "2"}); err != nil || deleted != want {
			t.Fatalf("delete = %v, %v; want %v", deleted, err, want)
		}
	}
	if n, err := c.Clear(ctx, th); err != nil || n != 2 {
		t.Fatalf("clear = %d, %v; want 2", n, err)
	}
	if n, err := c.Clear(ctx, th); err != nil || n != 0 {
		t.Fatalf("second clear = %d, %v; want 0", n, err)
	}
	_, err := c.Load(ctx, cairn.Ref{ThreadID: th})
	cairnErr(t, err, cairn.ErrNotFound, "THREAD_EMPTY")
}

func TestPutWrites(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th := thread(t)
	ref := cairn.Ref{ThreadID: th, ID: "cp"}
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "cp", State: []byte("{}"), StateType: "json"})
	w := cairn.TaskWrites{TaskID: "t1", TaskPath: "~__pregel_pull, agent", Writes: []cairn.Write{
		{Idx: 0, Channel: "messages", ValueType: "json", Value: []byte(`["hi"]`)},
		{Idx: -1, Channel: "__error__", ValueType: "json", Value: []byte(`"boom"`)},
	}}
	for _, want := range []int32{2, 0} { // an identical resend is a no-op
		if n, err := c.PutWrites(ctx, ref, w); err != nil || n != want {
			t.Fatalf("put writes = %d, %v; want %d", n, err, want)
		}
	}
	w.Writes, w.Replace = []cairn.Write{{Idx: -1, Channel: "__error__", ValueType: "json", Value: []byte(`"again"`)}}, true
	if n, err := c.PutWrites(ctx, ref, w); err != nil || n != 1 {
		t.Fatalf("replace = %d, %v; want 1", n, err)
	}
	got, err := c.Load(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, pw := range got.PendingWrites {
		values[pw.Channel] = string(pw.Value)
		if pw.TaskID != "t1" || pw.TaskPath != w.TaskPath || pw.ThreadID != th || pw.CheckpointID != "cp" {
			t.Fatalf("pending write %+v", pw)
		}
	}
	if !reflect.DeepEqual(values, map[string]string{"messages": `["hi"]`, "__error__": `"again"`}) {
		t.Fatalf("pending writes %+v", got.PendingWrites)
	}
}

func TestCopyThread(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	src, dst := thread(t), thread(t)
	save(t, c, &cairn.Checkpoint{ThreadID: src, ID: "1", State: []byte("1"), StateType: "json"})
	save(t, c, &cairn.Checkpoint{ThreadID: src, ID: "2", ParentID: "1", State: []byte("2"), StateType: "json"})
	if n, err := c.CopyThread(ctx, src, dst); err != nil || n != 2 {
		t.Fatalf("copy = %d, %v; want 2", n, err)
	}
	head, err := c.Load(ctx, cairn.Ref{ThreadID: dst})
	if err != nil || head.ID != "2" || head.ParentID != "1" || string(head.State) != "2" {
		t.Fatalf("copied head = %+v, %v", head, err)
	}
	_, err = c.CopyThread(ctx, src, dst)
	if !errors.Is(err, cairn.ErrConflict) {
		t.Fatalf("copy into a non-empty thread: %v, want ErrConflict", err)
	}
}

func TestPruneAndDeleteRuns(t *testing.T) {
	ctx := context.Background()
	c := dial(t)
	th, other := thread(t), thread(t)
	run := uuid.NewString()
	parent := ""
	for i := 1; i <= 4; i++ {
		id := fmt.Sprint(i)
		save(t, c, &cairn.Checkpoint{ThreadID: th, ID: id, ParentID: parent, State: []byte(id), StateType: "json"})
		parent = id
	}
	if n, err := c.Prune(ctx, []string{th}, cairn.KeepLatest, 2); err != nil || n != 2 {
		t.Fatalf("prune keep 2 = %d, %v; want 2", n, err)
	}
	if _, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: "3"}); err != nil {
		t.Fatalf("3 should survive: %v", err)
	}
	if n, err := c.Prune(ctx, []string{th}, cairn.DeleteAll, 0); err != nil || n != 2 {
		t.Fatalf("prune all = %d, %v; want 2", n, err)
	}

	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "r1", State: []byte("1"), StateType: "json", Metadata: map[string]any{"run_id": run}})
	save(t, c, &cairn.Checkpoint{ThreadID: other, ID: "r2", State: []byte("1"), StateType: "json", Metadata: map[string]any{"run_id": run}})
	save(t, c, &cairn.Checkpoint{ThreadID: other, ID: "keep", State: []byte("1"), StateType: "json", Metadata: map[string]any{"run_id": "x" + run}})
	if n, err := c.DeleteRuns(ctx, run); err != nil || n != 2 {
		t.Fatalf("delete runs = %d, %v; want 2", n, err)
	}
	if head, err := c.Load(ctx, cairn.Ref{ThreadID: other}); err != nil || head.ID != "keep" {
		t.Fatalf("head of other = %+v, %v", head, err)
	}
}

func TestDialOptions(t *testing.T) {
	ctx := context.Background()
	// A token is accepted over plaintext; timeouts and retry tuning apply.
	tok := os.Getenv("CAIRN_TOKEN")
	if tok == "" {
		tok = "any-token" // a server without auth ignores it
	}
	c := dial(t, cairn.WithToken(tok), cairn.WithDefaultTimeout(30*time.Second), cairn.WithMaxAttempts(3))
	save(t, c, &cairn.Checkpoint{ThreadID: thread(t), State: []byte("1"), StateType: "json"})

	// Dial gives up when ctx ends before the server answers.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := cairn.Dial(dctx, "unix:/nonexistent/cairn.sock"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial of a missing socket: %v, want DeadlineExceeded", err)
	}
}

// TestUnixSocketAndAuth uses the harness's server on a unix socket with bearer
// tokens, two of them for two tenants.
func TestUnixSocketAndAuth(t *testing.T) {
	sock, tokens := testserver.AuthServer(t)
	if !strings.HasPrefix(sock, "unix:") || len(tokens) < 2 {
		t.Fatalf("the auth server is %q with %d tokens; want a unix: target and two tokens", sock, len(tokens))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(opts ...cairn.Option) *cairn.Client {
		c, err := cairn.Dial(ctx, sock, opts...) // plaintext is the default for unix: targets
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := client(cairn.WithToken(tokens[0])), client(cairn.WithToken(tokens[1]))
	th := thread(t)
	save(t, alice, &cairn.Checkpoint{ThreadID: th, ID: "u", State: []byte(`{"via":"unix"}`), StateType: "json"})
	if got, err := alice.Load(ctx, cairn.Ref{ThreadID: th}); err != nil || string(got.State) != `{"via":"unix"}` {
		t.Fatalf("load over unix socket: %+v, %v", got, err)
	}
	_, err := bob.Load(ctx, cairn.Ref{ThreadID: th})
	cairnErr(t, err, cairn.ErrNotFound, "THREAD_EMPTY") // tenants don't see each other's threads

	_, err = client().Load(ctx, cairn.Ref{ThreadID: th})
	cairnErr(t, err, cairn.ErrUnauthenticated, "MISSING_TOKEN")
	_, err = client(cairn.WithToken("wrong")).Load(ctx, cairn.Ref{ThreadID: th})
	cairnErr(t, err, cairn.ErrUnauthenticated, "INVALID_TOKEN")
}

func TestStateIsOpaqueBytes(t *testing.T) {
	c := dial(t)
	th := thread(t)
	state := []byte{0, 1, 2, 0xff, 0xfe}
	save(t, c, &cairn.Checkpoint{ThreadID: th, ID: "bin", State: state, StateType: "msgpack"})
	got, err := c.Load(context.Background(), cairn.Ref{ThreadID: th})
	if err != nil || string(got.State) != string(state) || got.StateType != "msgpack" {
		t.Fatalf("load = %+v, %v", got, err)
	}
	var v any
	if json.Unmarshal(got.State, &v) == nil {
		t.Fatal("binary state parsed as JSON?")
	}
}
