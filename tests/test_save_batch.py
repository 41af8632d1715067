"""SaveBatch (issue 32): many saves in one unary call, each with the rules and the outcome of its own Save.

Through the generated stub (what any client sends) and through AsyncCheckpointClient, whose coalescer carries
concurrent saves in SaveBatch calls, on the embedded default (SQLite) and on Redis + Postgres. Also: the batch
limit, fencing by run leases, commits cut by --max-commit-batch-bytes, per-item metrics, a garbage body, and a
batch seen at once by another server process sharing the store (the freshness protocol).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cairn.v1 import checkpoint_store_pb2 as pb
from cairn.v1 import checkpoint_store_pb2_grpc as pb_grpc
from cairn_client import (
    AlreadyExists,
    AsyncCheckpointClient,
    CheckpointClient,
    HeadMoved,
    InvalidArgument,
    LimitExceeded,
    NotFound,
)
from tests.harness import CairnProcess, free_port

MAX_STATE = 65536
MAX_ITEMS = 50
COMMIT_BYTES = 16384


class Server:
    """A started server, its stub, and its /metrics."""

    def __init__(self, backend: Any, metrics_url: str) -> None:
        self.backend = backend
        self.target = backend.target
        self.metrics_url = metrics_url
        self.channel = grpc.insecure_channel(self.target)
        self.stub = pb_grpc.CheckpointStoreStub(self.channel)

    def metric(self, name: str, **labels: str) -> float:
        return metric(scrape(self.metrics_url), name, **labels)


def scrape(url: str) -> str:
    return urllib.request.urlopen(url, timeout=10).read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


@pytest.fixture(scope="module", params=["embedded", "redis+postgres"])
def server(request: pytest.FixtureRequest, server_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    port = free_port()
    backend = server_factory(
        request.param, max_state_bytes=MAX_STATE, max_batch_items=MAX_ITEMS, max_commit_batch_bytes=COMMIT_BYTES,
        metrics_listen=f"127.0.0.1:{port}",
    )
    s = Server(backend, f"http://127.0.0.1:{port}/metrics")
    yield s
    s.channel.close()


def tid() -> str:
    return f"sb-{uuid.uuid4()}"


def save(thread: str, state: bytes = b"{}", *, checkpoint_id: str = "", namespace: str = "", parent: str = "",
         **request: Any) -> pb.SaveRequest:
    return pb.SaveRequest(
        checkpoint=pb.Checkpoint(thread_id=thread, namespace=namespace, checkpoint_id=checkpoint_id,
                                 parent_checkpoint_id=parent, state=state, state_type="json"),
        **request,
    )


def batch(server: Server, *saves: pb.SaveRequest) -> list[pb.SaveBatchResult]:
    results = list(server.stub.SaveBatch(pb.SaveBatchRequest(saves=saves), timeout=30).results)
    assert len(results) == len(saves)
    return results


def ok(result: pb.SaveBatchResult) -> pb.SaveResponse:
    assert result.HasField("save") and not result.HasField("error"), result
    return result.save


def failed(result: pb.SaveBatchResult, code: grpc.StatusCode, reason: str) -> pb.ItemError:
    assert result.HasField("error") and not result.HasField("save"), result
    assert (result.error.code, result.error.reason) == (code.value[0], reason), result.error
    return result.error


def test_each_item_gets_its_own_outcome_in_request_order(server: Server) -> None:
    with CheckpointClient(server.target) as c:
        moved, nonempty, taken, retried = tid(), tid(), tid(), tid()
        head = c.save(moved, {"v": 1}).checkpoint_id
        c.save(nonempty, {"v": 1})
        taken_id = c.save(taken, {"v": 1}).checkpoint_id
        retried_id = f"retry-{uuid.uuid4()}"
        retry = save(retried, b'{"v": 1}', checkpoint_id=retried_id)
        server.stub.Save(retry, timeout=30)
        fresh, last = tid(), tid()

        results = batch(
            server,
            save(fresh, b'{"n": 0}'),
            save(moved, b'{"v": 2}', expected_head_id="not-the-head"),
            save(nonempty, b'{"v": 2}', expect_empty=True),
            save(taken, b'{"other": true}', checkpoint_id=taken_id),
            retry,  # an identical retry
            save("", b"{}"),
            save("bad\x00thread", b"{}"),
            save(tid(), b'"' + b"x" * MAX_STATE + b'"'),
            save(tid(), b"{}", durability=pb.DURABILITY_ASYNC),
            save(last, b'{"n": 9}'),
        )

        first = ok(results[0])
        assert first.checkpoint_id and first.sequence >= 1 and not first.already_existed
        err = failed(results[1], grpc.StatusCode.ABORTED, "HEAD_MOVED")
        assert err.metadata["current_head_id"] == head
        err = failed(results[2], grpc.StatusCode.ABORTED, "HEAD_MOVED")
        assert err.metadata["current_head_id"]
        failed(results[3], grpc.StatusCode.ALREADY_EXISTS, "CHECKPOINT_ID_CONFLICT")
        again = ok(results[4])
        assert again.already_existed and again.checkpoint_id == retried_id
        assert failed(results[5], grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD").metadata["field"] == \
            "checkpoint.thread_id"
        assert failed(results[6], grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD").metadata["field"] == \
            "checkpoint.thread_id"
        too_big = failed(results[7], grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED")
        assert too_big.metadata["limit"] == "max_state_bytes", too_big
        assert failed(results[8], grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD").metadata["field"] == \
            "durability"
        ok(results[9])

        # What failed left its thread as it was; what succeeded is the head.
        assert c.load(fresh).json() == {"n": 0} and c.load(last).json() == {"n": 9}
        assert c.load(moved).checkpoint_id == head
        assert c.load(taken).json() == {"v": 1}
        assert len(c.list(retried).checkpoints) == 1


def test_saves_of_one_thread_apply_in_request_order(server: Server) -> None:
    thread = tid()
    ids = [f"cp-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    saves = [save(thread, b'{"step": %d}' % i, checkpoint_id=ids[i], parent=ids[i - 1] if i else "",
                  **({"expected_head_id": ids[i - 1]} if i else {"expect_empty": True}))
             for i in range(6)]
    # Another namespace of the same thread, interleaved: its own head chain.
    sub = [save(thread, b'{"sub": %d}' % i, namespace="child", checkpoint_id=f"sub-{i}-{uuid.uuid4().hex[:6]}")
           for i in range(3)]
    results = [ok(r) for r in batch(server, saves[0], sub[0], saves[1], saves[2], sub[1], saves[3], saves[4],
                                     sub[2], saves[5])]
    root = [r for r in results if r.checkpoint_id.startswith("cp-")]
    assert [r.checkpoint_id for r in root] == ids
    assert [r.sequence for r in root] == sorted(r.sequence for r in root) and len({r.sequence for r in root}) == 6
    with CheckpointClient(server.target) as c:
        assert c.load(thread).checkpoint_id == ids[-1] and c.load(thread).json() == {"step": 5}
        assert c.load(thread, namespace="child").json() == {"sub": 2}
        assert [cp.checkpoint_id for cp in c.iter_checkpoints(thread, namespace="")] == ids[::-1]


def test_more_items_than_the_batch_limit_fail_the_whole_call(server: Server) -> None:
    threads = [tid() for _ in range(MAX_ITEMS + 1)]
    with pytest.raises(grpc.RpcError) as err:
        server.stub.SaveBatch(pb.SaveBatchRequest(saves=[save(t) for t in threads]), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{MAX_ITEMS + 1} items" in err.value.details() and "--max-batch-items" in err.value.details()
    with CheckpointClient(server.target) as c, pytest.raises(NotFound):
        c.load(threads[-1])  # the refused call stored nothing
    assert len(batch(server, *(save(t) for t in threads[:MAX_ITEMS]))) == MAX_ITEMS  # the limit itself is fine
    assert batch(server) == []  # and so is nothing


def test_fenced_items_are_refused_alone(server: Server) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    with CheckpointClient(server.target) as c:
        lost, cancelled, free = tid(), tid(), tid()
        c.start_run(lost, queue=queue)
        first = c.claim_run(queue, "w1", lease_seconds=1)
        assert first is not None
        second = c.claim_run(queue, "w2", wait_seconds=5)  # waits out the 1 s lease
        assert second is not None and second.lease.epoch == 2
        run = c.start_run(cancelled, queue=queue)
        held = c.claim_run(queue, "w3")
        assert held is not None and held.run.run_id == run.run_id
        c.cancel_run(run.run_id)

        results = batch(
            server,
            save(lost, run_lease=first.lease.to_proto()),
            save(lost, b'{"by": "w2"}', expect_empty=True, run_lease=second.lease.to_proto()),
            save(cancelled, run_lease=held.lease.to_proto()),
            save(free, b'{"free": 1}'),
        )
        err = failed(results[0], grpc.StatusCode.ABORTED, "LEASE_LOST")
        assert (err.metadata["epoch"], err.metadata["current_epoch"]) == ("1", "2")
        ok(results[1])
        failed(results[2], grpc.StatusCode.ABORTED, "RUN_CANCELLED")
        ok(results[3])
        assert c.load(lost).json() == {"by": "w2"} and c.load(free).json() == {"free": 1}
        assert c.get_run(run.run_id).status == "CANCELLED"  # the refused save ended the cancelled run


def test_a_batch_past_the_commit_budget_commits_every_item(server: Server) -> None:
    """--max-commit-batch-bytes cuts the batch into several transactions; every save still commits."""
    # 8 KB of base64 each, about 6 KB stored: 60 KB against a budget of 16 KB.
    states = [b'"' + base64.b64encode(os.urandom(6000)) + b'"' for _ in range(10)]
    threads = [tid() for _ in states]
    before = scrape(server.metrics_url)
    results = [ok(r) for r in batch(server, *(save(t, s) for t, s in zip(threads, states, strict=True)))]
    after = scrape(server.metrics_url)
    transactions = metric(after, "cairn_cold_batch_size_count") - metric(before, "cairn_cold_batch_size_count")
    committed = metric(after, "cairn_cold_batch_size_sum") - metric(before, "cairn_cold_batch_size_sum")
    assert committed == len(states) and transactions >= 3, (transactions, committed)
    with CheckpointClient(server.target) as c:
        for thread, state, result in zip(threads, states, results, strict=True):
            loaded = c.load(thread)
            assert loaded.checkpoint_id == result.checkpoint_id and loaded.state == state


def test_items_are_counted_in_metrics(server: Server) -> None:
    thread = tid()
    before = scrape(server.metrics_url)
    head = ok(batch(server, save(thread))[0]).checkpoint_id
    batch(server, save(thread, expected_head_id=head), save(thread, expected_head_id="stale"), save(""))
    after = scrape(server.metrics_url)

    def delta(method: str, code: str) -> float:
        name = "cairn_rpc_requests_total"
        return metric(after, name, method=method, code=code) - metric(before, name, method=method, code=code)

    assert delta("SaveBatch", "OK") == 2
    assert delta("SaveBatch.item", "OK") == 2
    assert delta("SaveBatch.item", "ABORTED") == 1
    assert delta("SaveBatch.item", "INVALID_ARGUMENT") == 1


def test_garbage_body_is_invalid_argument(server: Server) -> None:
    call = server.channel.unary_unary("/cairn.v1.CheckpointStore/SaveBatch")
    for body in (b"\xff\xff\xff\xff", b"\x0a\x05\x0a\x03\xff"):
        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert "cairn.v1.SaveBatchRequest" in err.value.details() or "checkpoint" in err.value.details()


async def test_through_the_client_each_caller_gets_its_own_outcome(server: Server) -> None:
    """coalesce=1: while one save is on the wire the others queue and go together in SaveBatch calls."""
    with CheckpointClient(server.target) as c:
        moved = tid()
        head = c.save(moved, {"v": 1}).checkpoint_id
        taken = tid()
        taken_id = c.save(taken, {"v": 1}).checkpoint_id
    before = scrape(server.metrics_url)
    async with AsyncCheckpointClient(server.target, coalesce=1) as ac:
        good = [tid() for _ in range(24)]
        calls = [ac.save(t, {"t": t}) for t in good]
        calls[5:5] = [ac.save(moved, {"v": 2}, expected_head_id="stale")]
        calls[11:11] = [ac.save(taken, {"other": True}, checkpoint_id=taken_id)]
        calls[17:17] = [ac.save("bad\x00id", {})]
        results = await asyncio.gather(*calls, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 3, errors
        assert isinstance(results[5], HeadMoved) and results[5].metadata["current_head_id"] == head
        assert isinstance(results[11], AlreadyExists)
        assert isinstance(results[17], InvalidArgument) and results[17].field == "checkpoint.thread_id"
        for t in good:
            assert (await ac.load(t)).json() == {"t": t}
    after = scrape(server.metrics_url)
    items = (metric(after, "cairn_rpc_requests_total", method="SaveBatch.item")
             - metric(before, "cairn_rpc_requests_total", method="SaveBatch.item"))
    assert items >= 20  # all but the first few went in batches


async def test_oversized_state_through_the_client_is_limit_exceeded(server: Server) -> None:
    async with AsyncCheckpointClient(server.target, coalesce=1) as ac:
        results = await asyncio.gather(ac.save(tid(), {}), ac.save(tid(), "x" * MAX_STATE), ac.save(tid(), {}),
                                       ac.save(tid(), {}), return_exceptions=True)
    assert not any(isinstance(r, BaseException) for r in results[:1] + results[2:]), results
    assert isinstance(results[1], LimitExceeded) and results[1].metadata["limit"] == "max_state_bytes"


def test_a_batch_is_seen_at_once_by_another_server_sharing_the_store(server_factory, redis_proc) -> None:  # type: ignore[no-untyped-def]
    """Both processes keep near caches and share Redis: after a SaveBatch on A, B's Load and List see the new
    heads, though B had cached the old ones."""
    a = server_factory("postgres", redis_url=redis_proc.url, near_cache_mb=16)
    with CairnProcess("--log-level", "WARNING", "--postgres-dsn", a.dsn, "--redis-url", redis_proc.url,
                      "--near-cache-mb", "16") as b, \
            CheckpointClient(a.target) as ca, CheckpointClient(b.target) as cb:
        threads = [tid() for _ in range(8)]
        heads = [ca.save(t, {"v": 1}).checkpoint_id for t in threads]
        for t, h in zip(threads, heads, strict=True):  # B caches the old heads and pages
            assert cb.load(t).checkpoint_id == h
            assert cb.list(t).checkpoints[0].checkpoint_id == h
        channel = grpc.insecure_channel(a.target)
        with channel:
            resp = pb_grpc.CheckpointStoreStub(channel).SaveBatch(pb.SaveBatchRequest(saves=[
                save(t, b'{"v": 2}', parent=h, expected_head_id=h) for t, h in zip(threads, heads, strict=True)
            ]), timeout=30)
        new = [ok(r).checkpoint_id for r in resp.results]
        for t, h in zip(threads, new, strict=True):
            loaded = cb.load(t)
            assert loaded.checkpoint_id == h and loaded.json() == {"v": 2}
            assert [cp.checkpoint_id for cp in cb.list(t).checkpoints][0] == h
            assert len(cb.list(t).checkpoints) == 2


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.parametrize("rpc", ["SaveBatch", "SaveStream"])
def test_client_frames_that_inflate_do_not_pile_up_in_memory(server_factory, rpc: str) -> None:  # type: ignore[no-untyped-def]
    """Each save of a batch may be a zstd frame of a 1 MiB state in a few dozen bytes; the server holds the
    decoded states only up to its commit budget at a time, not the whole batch's (600 MiB here; SaveStream
    shares the code, with up to 256 saves a batch)."""
    import zstandard

    mib = 1 << 20
    backend = server_factory("postgres", max_state_bytes=mib, near_cache_mb=0)
    pid = backend.server.pid
    assert pid is not None
    frame = zstandard.ZstdCompressor().compress(b"\0" * (mib - 1024))
    channel = grpc.insecure_channel(backend.target)
    with channel:
        stub = pb_grpc.CheckpointStoreStub(channel)

        def bombs(n: int) -> pb.SaveBatchRequest:
            return pb.SaveBatchRequest(saves=[
                pb.SaveRequest(checkpoint=pb.Checkpoint(thread_id=tid(), state=frame, state_type="bytes",
                                                        state_encoding=pb.STATE_ENCODING_ZSTD))
                for _ in range(n)
            ])

        def send(n: int) -> list[Any]:
            if rpc == "SaveBatch":
                return list(stub.SaveBatch(bombs(n), timeout=120).results)
            return list(stub.SaveStream((pb.SaveStreamRequest(save=r) for r in bombs(n).saves), timeout=120))

        assert all(r.HasField("save") for r in send(8))  # warm up
        idle = _peak_rss_mib(pid)
        results = send(600)
        grown = _peak_rss_mib(pid) - idle
    print(f"\n{rpc} of 600 zstd frames of 1 MiB states ({len(frame) * 600} bytes): peak RSS +{grown:.0f} MiB")
    assert len(results) == 600 and all(r.HasField("save") for r in results)
    assert grown < 100, f"the server's peak RSS grew by {grown:.0f} MiB for a {len(frame) * 600} byte request"
