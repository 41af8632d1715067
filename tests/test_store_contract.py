"""The CheckpointStore contract, run through the real gRPC server against every backend combination."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client import (
    AlreadyExists,
    CheckpointClient,
    Conflict,
    InvalidArgument,
    NotFound,
    PendingWrite,
    ResourceExhausted,
)
from cairn_client._shared import save_request
from tests.conftest import BACKENDS, SCALE_OUT_BACKENDS


@pytest.fixture(scope="session", params=BACKENDS + SCALE_OUT_BACKENDS)
def backend_server(request: pytest.FixtureRequest, server_factory):  # type: ignore[no-untyped-def]
    """The contract holds on every backend, and on Postgres scaled out: through pgbouncer in transaction mode,
    and on tables hash-partitioned by thread."""
    return server_factory(request.param)


def chain(client: CheckpointClient, thread_id: str, n: int, namespace: str = "", **fields) -> list[str]:
    ids: list[str] = []
    for i in range(n):
        saved = client.save(
            thread_id,
            {"step": i},
            namespace=namespace,
            parent_checkpoint_id=ids[-1] if ids else "",
            metadata={"step": i, "source": "loop", **fields.get("metadata", {})},
            node_name=f"node{i}",
            next_nodes=[f"node{i + 1}"],
        )
        ids.append(saved.checkpoint_id)
    return ids


class TestSaveLoad:
    def test_metadata_numbers_come_back_exact_and_ints_a_double_would_round_are_refused(
        self, client: CheckpointClient, thread_id: str
    ) -> None:
        """Struct numbers are doubles: every integer up to 2^53-1 survives each tier's JSON, and the client refuses
        a larger one (which would be stored rounded) before sending, in metadata and in filters alike."""
        exact = {"max": 2**53 - 1, "min": -(2**53 - 1), "f": 0.1, "big_float": 1e300, "list": [3, 2.5]}
        client.save(thread_id, {}, metadata=exact)
        assert client.load(thread_id).metadata == exact
        assert len(client.list(thread_id, metadata_filter={"max": 2**53 - 1}).checkpoints) == 1
        for bad, path in [({"id": 2**60 + 1}, "'id'"), ({"a": [{"b": -(2**53)}]}, "'a.0.b'")]:
            with pytest.raises(ValueError, match=f"metadata value at {path} is the integer .* store it as a string"):
                client.save(thread_id, {}, metadata=bad)
            with pytest.raises(ValueError, match="beyond"):
                client.list(thread_id, metadata_filter=bad)
        assert client.list(thread_id).checkpoints[0].metadata == exact  # nothing else was saved

    def test_roundtrip_keeps_every_field(self, client: CheckpointClient, thread_id: str) -> None:
        state = json.dumps({"messages": ["hi"] * 500}).encode()
        saved = client.save(
            thread_id, state, namespace="sub:1", metadata={"run_id": "r1", "nested": {"a": [1, 2]}},
            node_name="agent", next_nodes=["tools", "review"], parent_checkpoint_id="p0",
        )
        cp = client.load(thread_id, namespace="sub:1")
        assert cp.checkpoint_id == saved.checkpoint_id
        assert cp.state == state
        assert cp.state_type == "json"
        assert cp.metadata == {"run_id": "r1", "nested": {"a": [1, 2]}}
        assert (cp.node_name, cp.next_nodes, cp.parent_checkpoint_id) == ("agent", ["tools", "review"], "p0")
        assert cp.sequence == saved.sequence == 1
        assert cp.created_at == saved.created_at
        assert cp.state_size_bytes == len(state)
        assert 0 < cp.stored_size_bytes < len(state)  # compressed

    def test_load_by_id_and_latest(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 3)
        assert client.load(thread_id).checkpoint_id == ids[-1]
        assert client.load(thread_id, checkpoint_id=ids[0]).json() == {"step": 0}

    def test_sequence_strictly_increases(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 4)
        seqs = [client.load(thread_id, checkpoint_id=i).sequence for i in ids]
        assert seqs == sorted(seqs) and len(set(seqs)) == 4

    def test_server_generates_time_ordered_ids(self, backend_server, thread_id: str) -> None:
        stub = pb_grpc.CheckpointStoreStub(grpc.insecure_channel(backend_server.target))
        ids = [
            stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread_id, state=b"{}"))).checkpoint_id
            for _ in range(5)
        ]
        assert all(ids) and ids == sorted(ids)

    def test_namespaces_are_separate_heads(self, client: CheckpointClient, thread_id: str) -> None:
        root = chain(client, thread_id, 2)
        child = chain(client, thread_id, 1, namespace="child")
        assert client.load(thread_id).checkpoint_id == root[-1]
        assert client.load(thread_id, namespace="child").checkpoint_id == child[-1]

    def test_binary_state_roundtrips(self, client: CheckpointClient, thread_id: str) -> None:
        blob = bytes(range(256)) * 1000
        client.save(thread_id, blob, state_type="msgpack")
        cp = client.load(thread_id)
        assert cp.state == blob and cp.state_type == "msgpack"

    def test_empty_state_roundtrips(self, client: CheckpointClient, thread_id: str) -> None:
        client.save(thread_id, b"", state_type="raw")
        assert client.load(thread_id).state == b""

    def test_unicode_ids(self, client: CheckpointClient) -> None:
        thread_id = "スレッド-🧵-{tag}-'; DROP TABLE x;--"
        client.clear(thread_id)
        saved = client.save(thread_id, {"ok": True}, namespace="ns:ü", checkpoint_id="ck-é")
        assert client.load(thread_id, namespace="ns:ü").checkpoint_id == saved.checkpoint_id == "ck-é"
        client.clear(thread_id)


class TestIdempotencyAndConflicts:
    def test_identical_resave_succeeds_once(self, client: CheckpointClient, thread_id: str) -> None:
        first = client.save(thread_id, {"a": 1}, checkpoint_id="c1", metadata={"x": 1})
        again = client.save(thread_id, {"a": 1}, checkpoint_id="c1", metadata={"x": 1})
        assert again.already_existed and not first.already_existed
        assert (again.sequence, again.created_at) == (first.sequence, first.created_at)
        assert len(client.list(thread_id).checkpoints) == 1

    def test_same_id_different_content_is_already_exists(self, client: CheckpointClient, thread_id: str) -> None:
        client.save(thread_id, {"a": 1}, checkpoint_id="c1")
        with pytest.raises(AlreadyExists) as err:
            client.save(thread_id, {"a": 2}, checkpoint_id="c1")
        assert err.value.reason == "CHECKPOINT_ID_CONFLICT"
        assert client.load(thread_id).json() == {"a": 1}

    def test_replace_existing_overwrites_in_place(self, client: CheckpointClient, thread_id: str) -> None:
        first = client.save(thread_id, {"a": 1}, checkpoint_id="c1")
        client.load(thread_id)  # warm the cache
        again = client.save(thread_id, {"a": 2}, checkpoint_id="c1", replace_existing=True)
        assert again.sequence == first.sequence
        assert client.load(thread_id).json() == {"a": 2}
        assert client.load(thread_id, checkpoint_id="c1").json() == {"a": 2}


class TestCompareAndSet:
    def test_expected_head_matches(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 2)
        saved = client.save(thread_id, {"n": 3}, expected_head_id=ids[-1], parent_checkpoint_id=ids[-1])
        assert client.load(thread_id).checkpoint_id == saved.checkpoint_id

    def test_stale_head_is_aborted_with_current_head(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 2)
        with pytest.raises(Conflict) as err:
            client.save(thread_id, {"n": 3}, expected_head_id=ids[0])
        assert err.value.code == grpc.StatusCode.ABORTED
        assert err.value.reason == "HEAD_MOVED"
        assert err.value.current_head_id == ids[-1]
        assert client.load(thread_id).checkpoint_id == ids[-1]

    def test_expect_empty(self, client: CheckpointClient, thread_id: str) -> None:
        first = client.save(thread_id, {"n": 1}, expect_empty=True)
        with pytest.raises(Conflict) as err:
            client.save(thread_id, {"n": 2}, expect_empty=True)
        assert err.value.current_head_id == first.checkpoint_id

    def test_expected_head_on_empty_thread(self, client: CheckpointClient, thread_id: str) -> None:
        with pytest.raises(Conflict) as err:
            client.save(thread_id, {"n": 1}, expected_head_id="nope")
        assert err.value.current_head_id == ""

    def test_both_preconditions_is_invalid(self, client: CheckpointClient, thread_id: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            client.save(thread_id, {}, expected_head_id="x", expect_empty=True)
        assert err.value.field == "expect_empty"


class TestList:
    def test_newest_first_without_state_by_default(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 3)
        page = client.list(thread_id)
        assert [c.checkpoint_id for c in page.checkpoints] == ids[::-1]
        assert all(c.state == b"" and c.state_size_bytes > 0 for c in page.checkpoints)
        assert page.next_page_token == ""

    def test_include_state(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 2)
        assert [c.json() for c in client.list(thread_id, include_state=True).checkpoints] == [
            {"step": 1},
            {"step": 0},
        ]

    def test_pagination_covers_everything_once(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 7)
        seen, token, pages = [], "", 0
        while True:
            page = client.list(thread_id, page_size=3, page_token=token)
            seen += [c.checkpoint_id for c in page.checkpoints]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert seen == ids[::-1] and pages == 3

    def test_exact_page_has_no_dangling_token(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 3)
        assert client.list(thread_id, page_size=3).next_page_token == ""

    def test_metadata_containment_filter(self, client: CheckpointClient, thread_id: str) -> None:
        client.save(thread_id, {}, metadata={"source": "input", "tags": ["a", "b"], "cfg": {"model": "x", "t": 1}})
        client.save(thread_id, {}, metadata={"source": "loop", "tags": ["b"], "cfg": {"model": "y"}})
        assert len(client.list(thread_id, metadata_filter={"source": "input"}).checkpoints) == 1
        assert len(client.list(thread_id, metadata_filter={"tags": ["b"]}).checkpoints) == 2
        assert len(client.list(thread_id, metadata_filter={"cfg": {"model": "x"}}).checkpoints) == 1
        assert len(client.list(thread_id, metadata_filter={"source": "nope"}).checkpoints) == 0

    # (metadata, filter, matches): Postgres jsonb containment (@>), which every tier must agree with.
    CONTAINMENT = [
        ({"n": 1}, {"n": 1.0}, True),
        ({"b": True}, {"b": 1}, False),
        ({"b": True}, {"b": True}, True),
        ({"b": False}, {"b": 0}, False),
        ({"z": None}, {"z": None}, True),
        ({"y": 1}, {"z": None}, False),
        ({"s": "1"}, {"s": 1}, False),
        ({"s": "x"}, {"s": "X"}, False),
        ({"cfg": {"a": {"b": "x"}}}, {"cfg": {"a": {}}}, True),
        ({"cfg": {"a": {"b": "x"}}}, {"cfg": {"a": {"b": "x"}}}, True),
        ({"cfg": {"a": {"b": "x"}}}, {"cfg": {"a": []}}, False),
        ({"cfg": {"a": 1}}, {"cfg": "a"}, False),
        ({"tags": ["a", "b"]}, {"tags": "a"}, False),
        ({"tags": ["a", "b"]}, {"tags": []}, True),
        ({"tags": ["a", {"k": 1, "j": 2}]}, {"tags": [{"k": 1}]}, True),
        ({"a": {"b": 1}}, {"a.b": 1}, False),
        ({"a.b": 1}, {"a.b": 1}, True),
        ({"a-b": "x", "ns:k": {"y": 1}}, {"a-b": "x", "ns:k": {"y": 1}}, True),
        ({"a-b": "x", "ns:k": {"y": 1}}, {"a-b": "x", "ns:k": {"y": 2}}, False),
        ({"ключ": "знач", "k": 1}, {"ключ": "знач"}, True),
        ({"ключ": "знач", "k": 1}, {"ключ": "другое", "k": 1}, False),
        ({"k": 1}, {}, True),
    ]

    def test_metadata_filters_match_as_postgres_containment_on_every_tier(
        self, client: CheckpointClient, thread_id: str
    ) -> None:
        wrong = []
        for i, (metadata, flt, matches) in enumerate(self.CONTAINMENT):
            thread = f"{thread_id}-{i}"
            client.save(thread, {}, metadata=metadata)
            found = len(client.list(thread, metadata_filter=flt).checkpoints) == 1
            across = thread in {c.thread_id for c in client.list("", metadata_filter=flt, page_size=1000).checkpoints}
            heads = thread in {t.thread_id for t in client.iter_threads(metadata_filter=flt)}
            if (found, across, heads) != (matches,) * 3:
                wrong.append((metadata, flt, matches, (found, across, heads)))
        assert not wrong

    def test_filter_across_threads(self, client: CheckpointClient, thread_id: str) -> None:
        marker = thread_id  # unique value
        client.save(thread_id + "-a", {}, metadata={"marker": marker})
        client.save(thread_id + "-b", {}, metadata={"marker": marker})
        found = client.list("", metadata_filter={"marker": marker}).checkpoints
        assert {c.thread_id for c in found} == {thread_id + "-a", thread_id + "-b"}

    def test_namespace_filter(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 2)
        chain(client, thread_id, 1, namespace="child")
        assert len(client.list(thread_id).checkpoints) == 3
        assert len(client.list(thread_id, namespace="").checkpoints) == 2
        assert len(client.list(thread_id, namespace="child").checkpoints) == 1

    def test_before(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 4)
        older = client.list(thread_id, before=ids[2]).checkpoints
        assert [c.checkpoint_id for c in older] == [ids[1], ids[0]]

    def test_include_writes(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 2)
        client.put_writes(thread_id, ids[0], "task", [("ch", {"v": 1})])
        page = client.list(thread_id, include_writes=True)
        by_id = {c.checkpoint_id: c for c in page.checkpoints}
        assert [w.channel for w in by_id[ids[0]].pending_writes] == ["ch"]
        assert by_id[ids[1]].pending_writes == []

    def test_page_token_bound_to_query(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 3)
        token = client.list(thread_id, page_size=1).next_page_token
        with pytest.raises(InvalidArgument) as err:
            client.list(thread_id + "x", page_size=1, page_token=token)
        assert err.value.field == "page_token"

    @pytest.mark.parametrize("token", ["garbage", "e30", "!!!!", "eyJyIjoidGV4dCIsInEiOiJ4In0"])
    def test_bad_page_token(self, client: CheckpointClient, thread_id: str, token: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            client.list(thread_id, page_token=token)
        assert "page_token" in err.value.message

    def test_negative_page_size(self, client: CheckpointClient, thread_id: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            client.list(thread_id, page_size=-1)
        assert err.value.field == "page_size"

    def test_huge_page_size_is_capped(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 2)
        assert len(client.list(thread_id, page_size=2**31 - 1).checkpoints) == 2

    def test_list_threads(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 2, metadata={"status": "failed"})
        threads = {t.thread_id: t for t in client.iter_threads()}
        info = threads[thread_id]
        assert info.checkpoint_count == 2 and info.head_metadata["status"] == "failed"
        failed = {t.thread_id for t in client.iter_threads(metadata_filter={"status": "failed"})}
        assert thread_id in failed

    def test_list_threads_paginates(self, client: CheckpointClient, thread_id: str) -> None:
        for i in range(3):
            client.save(f"{thread_id}-{i}", {})
        seen: list[str] = []
        token = ""
        while True:
            page = client.list_threads(page_size=2, page_token=token)
            seen += [t.thread_id for t in page.threads]
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == len(set(seen))
        assert {f"{thread_id}-{i}" for i in range(3)} <= set(seen)

    def test_list_threads_filters_before_it_pages_and_leaves_out_emptied_threads(
        self, client: CheckpointClient, thread_id: str
    ) -> None:
        for i in range(6):
            client.save(f"{thread_id}-{i}", {}, metadata={"run": thread_id, "status": "failed" if i % 2 else "ok"})
        client.clear(f"{thread_id}-5")  # failed, then emptied: no head to show
        wanted = [f"{thread_id}-3", f"{thread_id}-1"]  # newest first
        seen: list[str] = []
        token = ""
        while True:
            page = client.list_threads(page_size=1, page_token=token,
                                       metadata_filter={"run": thread_id, "status": "failed"})
            assert len(page.threads) <= 1
            seen += [t.thread_id for t in page.threads]
            token = page.next_page_token
            if not token:
                break
        assert seen == wanted
        (first,) = client.list_threads(page_size=1, metadata_filter={"run": thread_id, "status": "failed"}).threads
        assert first.checkpoint_count == 1 and first.head_metadata == {"run": thread_id, "status": "failed"}


class TestDeleteClear:
    def test_delete_one(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 2)
        client.load(thread_id)  # cached head
        assert client.delete(thread_id, ids[1]) is True
        assert client.load(thread_id).checkpoint_id == ids[0]
        with pytest.raises(NotFound):
            client.load(thread_id, checkpoint_id=ids[1])
        assert client.delete(thread_id, ids[1]) is False  # idempotent

    def test_clear_removes_all_namespaces_and_is_idempotent(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 3)
        chain(client, thread_id, 2, namespace="child")
        client.load(thread_id)
        assert client.clear(thread_id) == 5
        with pytest.raises(NotFound) as err:
            client.load(thread_id)
        assert err.value.reason == "THREAD_EMPTY"
        assert client.list(thread_id).checkpoints == []
        assert client.clear(thread_id) == 0

    def test_clear_only_touches_its_thread(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 1)
        other = chain(client, thread_id + "-other", 1)
        client.clear(thread_id)
        assert client.load(thread_id + "-other").checkpoint_id == other[0]

    def test_save_after_clear_starts_fresh(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 2)
        client.clear(thread_id)
        saved = client.save(thread_id, {"fresh": True}, expect_empty=True)
        assert client.load(thread_id).checkpoint_id == saved.checkpoint_id


class TestWrites:
    def test_writes_come_back_in_order(self, client: CheckpointClient, thread_id: str) -> None:
        (cp,) = chain(client, thread_id, 1)
        client.put_writes(thread_id, cp, "task-b", [("c1", 1), ("c2", 2)], task_path="~b")
        client.put_writes(thread_id, cp, "task-a", [("c3", 3)], task_path="~a")
        writes = client.load(thread_id).pending_writes
        assert [(w.task_id, w.channel, w.idx) for w in writes] == [
            ("task-a", "c3", 0),
            ("task-b", "c1", 0),
            ("task-b", "c2", 1),
        ]
        assert json.loads(writes[0].value) == 3

    def test_resend_is_idempotent(self, client: CheckpointClient, thread_id: str) -> None:
        (cp,) = chain(client, thread_id, 1)
        assert client.put_writes(thread_id, cp, "t", [("c", 1)]) == 1
        assert client.put_writes(thread_id, cp, "t", [("c", 1)]) == 0
        assert len(client.load(thread_id).pending_writes) == 1

    def test_different_value_is_conflict_unless_replace(self, client: CheckpointClient, thread_id: str) -> None:
        (cp,) = chain(client, thread_id, 1)
        client.put_writes(thread_id, cp, "t", [("c", 1)])
        with pytest.raises(AlreadyExists) as err:
            client.put_writes(thread_id, cp, "t", [("c", 2)])
        assert err.value.reason == "WRITE_CONFLICT"
        client.put_writes(thread_id, cp, "t", [("c", 2)], replace=True)
        assert json.loads(client.load(thread_id).pending_writes[0].value) == 2

    def test_a_conflict_fails_the_whole_request_and_names_its_write(
        self, client: CheckpointClient, thread_id: str
    ) -> None:
        (cp,) = chain(client, thread_id, 1)
        client.put_writes(thread_id, cp, "t", [("a", 1), ("b", 2)])
        with pytest.raises(AlreadyExists, match="write idx 1 of task 't'"):
            client.put_writes(thread_id, cp, "t", [("a", 1), ("b", 3), ("c", 4)])
        assert [(w.channel, json.loads(w.value)) for w in client.load(thread_id).pending_writes] == [("a", 1), ("b", 2)]
        # replace rewrites only what differs, and counts only that
        assert client.put_writes(thread_id, cp, "t", [("a", 1), ("b", 3), ("c", 4)], replace=True) == 2
        assert [(w.channel, json.loads(w.value)) for w in client.load(thread_id).pending_writes] == [
            ("a", 1), ("b", 3), ("c", 4)]

    def test_a_failing_task_among_concurrent_ones_stores_nothing_and_fails_no_other(
        self, client: CheckpointClient, thread_id: str
    ) -> None:
        """Concurrent PutWrites share one commit (one statement on Postgres, one transaction on SQLite): a task
        that conflicts keeps its whole request out and leaves every other task's writes stored."""
        (cp,) = chain(client, thread_id, 1)
        client.put_writes(thread_id, cp, "bad", [("a", 1), ("b", 2)])
        for round_ in range(3):
            tasks = [f"ok-{round_}-{i}" for i in range(12)]
            with ThreadPoolExecutor(len(tasks) + 1) as pool:
                # idx 5 is new and goes in first; idx 1 then conflicts, and takes idx 5 back out with it
                bad_writes = [PendingWrite("bad", "c", b"4", "json", idx=5), PendingWrite("bad", "b", b"3", "json", idx=1)]
                bad = pool.submit(client.put_writes, thread_id, cp, "bad", bad_writes)
                oks = [pool.submit(client.put_writes, thread_id, cp, t, [("x", i), ("y", i)]) for i, t in enumerate(tasks)]
                assert [f.result() for f in oks] == [2] * len(tasks)
                with pytest.raises(AlreadyExists, match="write idx 1 of task 'bad'"):
                    bad.result()
        stored = {(w.task_id, w.channel): json.loads(w.value) for w in client.load(thread_id).pending_writes}
        assert {k: v for k, v in stored.items() if k[0] == "bad"} == {("bad", "a"): 1, ("bad", "b"): 2}
        assert len(stored) == 2 + 3 * 12 * 2

    def test_writes_to_missing_checkpoint(self, client: CheckpointClient, thread_id: str) -> None:
        with pytest.raises(NotFound):
            client.put_writes(thread_id, "missing", "t", [("c", 1)])

    def test_delete_removes_writes(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 1)
        client.put_writes(thread_id, ids[0], "t", [("c", 1)])
        client.delete(thread_id, ids[0])
        client.save(thread_id, {}, checkpoint_id=ids[0])
        assert client.load(thread_id).pending_writes == []

    def test_writes_visible_after_cached_load(self, client: CheckpointClient, thread_id: str) -> None:
        (cp,) = chain(client, thread_id, 1)
        assert client.load(thread_id).pending_writes == []  # now cached
        client.put_writes(thread_id, cp, "t", [("c", 1)])
        assert len(client.load(thread_id).pending_writes) == 1


class TestThreadOps:
    def test_copy_thread(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 3)
        chain(client, thread_id, 1, namespace="child")
        client.put_writes(thread_id, ids[-1], "t", [("c", 1)])
        assert client.copy_thread(thread_id, thread_id + "-copy") == 4
        copy = client.load(thread_id + "-copy")
        assert copy.checkpoint_id == ids[-1] and len(copy.pending_writes) == 1
        assert [c.checkpoint_id for c in client.list(thread_id + "-copy", namespace="").checkpoints] == ids[::-1]
        with pytest.raises(Conflict):
            client.copy_thread(thread_id, thread_id + "-copy")

    def test_prune_keep_latest_follows_parent_chain(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 5)
        client.save(thread_id, {"fork": True}, parent_checkpoint_id=ids[1])  # a fork from an old one
        head = client.save(thread_id, {"x": 1}, parent_checkpoint_id=ids[-1]).checkpoint_id
        assert client.prune([thread_id], keep_latest=3) == 4
        kept = [c.checkpoint_id for c in client.list(thread_id).checkpoints]
        assert kept == [head, ids[-1], ids[-2]]

    def test_prune_delete_all(self, client: CheckpointClient, thread_id: str) -> None:
        chain(client, thread_id, 3)
        assert client.prune([thread_id], keep_latest=None) == 3
        assert client.list(thread_id).checkpoints == []

    def test_delete_runs(self, client: CheckpointClient, thread_id: str) -> None:
        run = f"run-{thread_id}"
        client.save(thread_id, {}, metadata={"run_id": run})
        keep = client.save(thread_id, {}, metadata={"run_id": run + "-other"}).checkpoint_id
        client.save(thread_id + "-2", {}, metadata={"run_id": run}, namespace="child")
        assert client.delete_runs([run]) == 2
        assert [c.checkpoint_id for c in client.list(thread_id).checkpoints] == [keep]
        # containment of a string: not a list holding it, nor an object whose JSON text is the id asked for
        kept = {client.save(thread_id, {}, metadata={"run_id": value}).checkpoint_id
                for value in ([run], {"a": 1}, 7, True)}
        assert client.delete_runs([run, '{"a":1}', '{"a": 1}', "7", "1", "true"]) == 0
        assert {c.checkpoint_id for c in client.list(thread_id).checkpoints} == kept | {keep}


class TestBatchAndStream:
    def test_batch_load_reports_each_item(self, client: CheckpointClient, thread_id: str) -> None:
        ids = chain(client, thread_id, 2)
        results = client.batch_load([(thread_id, "", ids[0]), (thread_id, "", None), (thread_id, "", "missing")])
        assert results[0].checkpoint_id == ids[0]  # type: ignore[union-attr]
        assert results[1].checkpoint_id == ids[1]  # type: ignore[union-attr]
        assert isinstance(results[2], NotFound)

    def test_batch_load_mixes_cached_uncached_missing_and_invalid(self, client: CheckpointClient, thread_id: str) -> None:
        """One batch over many threads: heads and ids, some never read before (cold), some read (cached),
        a deleted one, a missing one and an invalid request, each answered in its place."""
        threads = [f"{thread_id}-{i}" for i in range(12)]
        heads = {t: chain(client, t, 2) for t in threads}
        for t in threads[:6]:
            client.load(t)  # cached from here on, in whichever tiers the backend has
        client.delete(threads[0], heads[threads[0]][1])  # the cached head is gone: the older one is the head now
        loads = [(t, "", None) for t in threads] + [(t, "", heads[t][0]) for t in threads]
        loads += [(threads[1], "", "missing"), ("", "", None), (threads[0], "", heads[threads[0]][1])]
        results = client.batch_load(loads)
        assert len(results) == len(loads)
        for i, t in enumerate(threads):
            assert results[i].checkpoint_id == (heads[t][0] if i == 0 else heads[t][1])  # type: ignore[union-attr]
            assert results[len(threads) + i].checkpoint_id == heads[t][0]  # type: ignore[union-attr]
        assert isinstance(results[-3], NotFound)
        assert isinstance(results[-2], InvalidArgument)
        assert isinstance(results[-1], NotFound)

    def test_save_stream_in_order_with_item_errors(self, client: CheckpointClient, thread_id: str) -> None:
        reqs = [save_request(thread_id, {"i": i}, checkpoint_id=f"s{i}") for i in range(300)]
        reqs.insert(5, save_request("", {}))  # invalid: no thread
        reqs.append(save_request(thread_id, {"different": True}, checkpoint_id="s0"))  # conflict
        results = list(client.save_stream(reqs))
        assert len(results) == 302
        assert isinstance(results[5], InvalidArgument)
        assert isinstance(results[-1], AlreadyExists)
        ok = [r for r in results if not isinstance(r, Exception)]
        assert [r.sequence for r in ok] == list(range(1, 301))
        assert client.load(thread_id).checkpoint_id == "s299"
        # only a batch's newest checkpoint of a thread is cached; the others load from the cold store, then cached
        for _ in range(2):
            assert client.load(thread_id, checkpoint_id="s5").json() == {"i": 5}


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"thread_id": ""}, "checkpoint.thread_id"),
            ({"thread_id": "a\x00b"}, "checkpoint.thread_id"),
            ({"thread_id": "x" * 600}, "checkpoint.thread_id"),
            ({"thread_id": "ok", "checkpoint_id": "bad\nid"}, "checkpoint.checkpoint_id"),
            ({"thread_id": "ok", "namespace": "\x07"}, "checkpoint.namespace"),
        ],
    )
    def test_bad_ids_name_the_field(self, client: CheckpointClient, kwargs: dict, field: str) -> None:
        kwargs = dict(kwargs)
        thread = kwargs.pop("thread_id")
        with pytest.raises(InvalidArgument) as err:
            client.save(thread, {}, **kwargs)
        assert err.value.field == field
        assert err.value.message

    def test_oversized_state_says_the_limit(self, server_factory) -> None:  # type: ignore[no-untyped-def]
        server = server_factory("embedded", max_state_bytes=1000)
        with CheckpointClient(server.target) as c, pytest.raises(ResourceExhausted) as err:
            c.save("t", b"x" * 1001)
        assert err.value.limit == "max_state_bytes" and "1000" in err.value.message

    def test_deep_metadata(self, client: CheckpointClient, thread_id: str) -> None:
        deep: dict = {}
        node = deep
        for _ in range(25):
            node["k"] = {}
            node = node["k"]
        with pytest.raises(InvalidArgument) as err:
            client.save(thread_id, {}, metadata=deep)
        assert "nested" in err.value.message

    def test_unknown_durability(self, backend_server, thread_id: str) -> None:
        stub = pb_grpc.CheckpointStoreStub(grpc.insecure_channel(backend_server.target))
        with pytest.raises(grpc.RpcError) as err:
            stub.Save(pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=thread_id), durability=42))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    def test_prune_needs_a_strategy(self, backend_server, thread_id: str) -> None:
        stub = pb_grpc.CheckpointStoreStub(grpc.insecure_channel(backend_server.target))
        with pytest.raises(grpc.RpcError) as err:
            stub.Prune(pb.PruneRequest(thread_ids=[thread_id]))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class TestAsyncClient:
    async def test_async_roundtrip(self, aclient, thread_id: str) -> None:  # type: ignore[no-untyped-def]
        saved = await aclient.save(thread_id, {"a": 1}, metadata={"k": "v"})
        cp = await aclient.load(thread_id)
        assert cp.checkpoint_id == saved.checkpoint_id and cp.json() == {"a": 1}
        listed = [c async for c in aclient.iter_checkpoints(thread_id)]
        assert [c.checkpoint_id for c in listed] == [saved.checkpoint_id]
        with pytest.raises(NotFound):
            await aclient.load(thread_id + "-none")
        assert await aclient.clear(thread_id) == 1


def test_embedded_filter_sql_agrees_with_containment_for_any_top_level_json() -> None:
    """Stored metadata is always an object (a Struct). Filters from the API are objects too; one that is not (an
    array, a scalar) gets json_contains alone instead of per-key tests, which had no key to test (invalid SQL)."""
    import sqlite3

    from cairn_server.storage.jsonmatch import json_contains
    from cairn_server.storage.sqlite import _contains_sql, _sqlite_json_contains

    db = sqlite3.connect(":memory:")
    db.create_function("json_contains", 2, _sqlite_json_contains, deterministic=True)
    docs = ['{"a": 1, "t": ["x"]}', '{"a": [1], "x": "x"}', "{}"]
    filters = ['{"a": 1}', '{"t": ["x"]}', "[1]", "[]", "7", '"x"', "null", "{}"]
    for flt in filters:
        for doc in docs:
            params: dict[str, object] = {"doc": doc}
            sql = f"SELECT {_contains_sql('d', flt, params)} FROM (SELECT :doc AS d)"
            found = bool(db.execute(sql, params).fetchone()[0])
            assert found == json_contains(json.loads(doc), json.loads(flt)), (doc, flt)
