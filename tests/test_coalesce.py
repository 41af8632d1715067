"""AsyncCheckpointClient's coalescer (cairn_client.coalesce, issue 32): concurrent saves and loads beyond
`coalesce x channels` in flight go together in SaveBatch / BatchLoad calls, each caller keeping its own outcome.

Against real servers (the embedded default and Redis + Postgres), counting the calls the server saw in its
/metrics; and, for the coalescer's own logic (deadlines, cancellation, an older server without SaveBatch), against
a small grpc.aio server in this process that implements Save and SaveBatch only.
"""

from __future__ import annotations

import asyncio
import base64
import operator
import os
import uuid
from typing import Annotated, Any, TypedDict

import grpc
import pytest

from cairn.errors import CairnError as ServerError
from cairn.v1 import checkpoint_store_pb2 as pb
from cairn_client import (
    AlreadyExists,
    AsyncCheckpointClient,
    CheckpointClient,
    DeadlineExceeded,
    HeadMoved,
    InvalidArgument,
    NotFound,
)
from cairn_server.calls import abort, item_error
from tests.harness import free_port
from tests.test_save_batch import metric, scrape

CALLS = "cairn_rpc_requests_total"


class Served:
    def __init__(self, backend: Any, metrics_url: str) -> None:
        self.backend, self.target, self.metrics_url = backend, backend.target, metrics_url


def served(server_factory: Any, kind: str, **config: object) -> Served:  # type: ignore[no-untyped-def]
    port = free_port()
    backend = server_factory(kind, metrics_listen=f"127.0.0.1:{port}", **config)
    return Served(backend, f"http://127.0.0.1:{port}/metrics")


@pytest.fixture(scope="module", params=["embedded", "redis+postgres"])
def server(request: pytest.FixtureRequest, server_factory) -> Served:  # type: ignore[no-untyped-def]
    return served(server_factory, request.param)


class Calls:
    """What the server counted between entering and leaving the block, per method (and code)."""

    def __init__(self, server: Served) -> None:
        self.url = server.metrics_url

    def __enter__(self) -> Calls:
        self.before = scrape(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = scrape(self.url)

    def __call__(self, method: str, **labels: str) -> float:
        return metric(self.after, CALLS, method=method, **labels) - metric(self.before, CALLS, method=method,
                                                                           **labels)


def tid() -> str:
    return f"co-{uuid.uuid4()}"


# -- against a real server ----------------------------------------------------------------------------------


async def test_concurrent_saves_and_loads_share_calls(server: Served) -> None:
    threads = [tid() for _ in range(64)]
    async with AsyncCheckpointClient(server.target) as ac:  # coalesce=4, the default
        with Calls(server) as saves:
            results = await asyncio.gather(*(ac.save(t, {"thread": t, "i": i}) for i, t in enumerate(threads)))
        with Calls(server) as loads:
            loaded = await asyncio.gather(*(ac.load(t) for t in threads))
    assert saves("Save") + saves("SaveBatch") < len(threads), (saves("Save"), saves("SaveBatch"))
    assert saves("SaveBatch") >= 1 and saves("Save") + saves("SaveBatch.item") == len(threads)
    assert loads("Load") + loads("BatchLoad") < len(threads) and loads("BatchLoad") >= 1
    assert len({r.checkpoint_id for r in results}) == len(threads)
    for i, (t, saved, cp) in enumerate(zip(threads, results, loaded, strict=True)):
        assert not saved.already_existed and saved.sequence >= 1
        assert cp.checkpoint_id == saved.checkpoint_id and cp.thread_id == t and cp.json() == {"thread": t, "i": i}


async def test_each_error_reaches_only_its_caller(server: Served) -> None:
    with CheckpointClient(server.target) as c:
        moved = tid()
        head = c.save(moved, {"v": 1}).checkpoint_id
        taken = tid()
        taken_id = c.save(taken, {"v": 1}).checkpoint_id
    good = [tid() for _ in range(40)]
    missing = tid()
    async with AsyncCheckpointClient(server.target, coalesce=1) as ac:
        calls = [ac.save(t, {"t": t}) for t in good]
        bad = {
            3: (ac.save(moved, {"v": 2}, expected_head_id="stale"), HeadMoved),
            9: (ac.save(moved, {"v": 2}, expect_empty=True), HeadMoved),
            17: (ac.save(taken, {"other": 1}, checkpoint_id=taken_id), AlreadyExists),
            25: (ac.save("bad\x00id", {}), InvalidArgument),
        }
        for at, (call, _) in sorted(bad.items()):
            calls.insert(at, call)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for at, (_, kind) in bad.items():
            assert type(results[at]) is kind, (at, results[at])
        assert results[3].metadata["current_head_id"] == head  # type: ignore[union-attr]
        assert sum(isinstance(r, BaseException) for r in results) == len(bad)

        reads = [ac.load(t) for t in good]
        reads.insert(7, ac.load(missing))
        reads.insert(20, ac.load(moved, checkpoint_id="no-such-checkpoint"))
        reads.insert(30, ac.load("bad\x00id"))
        loaded = await asyncio.gather(*reads, return_exceptions=True)
        assert type(loaded[7]) is NotFound and type(loaded[20]) is NotFound
        assert type(loaded[30]) is InvalidArgument
        rest = [r for i, r in enumerate(loaded) if i not in (7, 20, 30)]
        assert [r.json() for r in rest] == [{"t": t} for t in good]  # type: ignore[union-attr]


async def test_coalesce_zero_sends_one_call_per_save(server: Served) -> None:
    threads = [tid() for _ in range(16)]
    async with AsyncCheckpointClient(server.target, coalesce=0) as ac:
        with Calls(server) as calls:
            await asyncio.gather(*(ac.save(t, {}) for t in threads))
            await asyncio.gather(*(ac.load(t) for t in threads))
    assert (calls("Save"), calls("SaveBatch"), calls("Load"), calls("BatchLoad")) == (16, 0, 16, 0)


def test_negative_coalesce_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"coalesce must be >= 0 \(got -1\); 0 sends every call on its own"):
        AsyncCheckpointClient("127.0.0.1:1", coalesce=-1)


@pytest.mark.parametrize("kind", ["embedded", "redis+postgres"])
async def test_loads_refused_for_the_shared_response_budget_are_retried_alone(server_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A BatchLoad shares --max-response-bytes among its items; the items it refuses fit alone, and get there."""
    server = served(server_factory, kind, max_response_bytes=200_000)
    states = [b'"' + base64.b64encode(os.urandom(45_000)) + b'"' for _ in range(12)]  # 60 KB each, raw
    threads = [tid() for _ in states]
    async with AsyncCheckpointClient(server.target, coalesce=1) as ac:
        await asyncio.gather(*(ac.save(t, s, state_type="json") for t, s in zip(threads, states, strict=True)))
        with Calls(server) as calls:
            loaded = await asyncio.gather(*(ac.load(t) for t in threads))
    assert [cp.state for cp in loaded] == states
    assert calls("BatchLoad") >= 1 and calls("Load") > 1  # the first alone, and the refused ones again alone


@pytest.mark.parametrize("kind", ["embedded", "redis+postgres"])
async def test_batches_over_the_servers_limits_go_alone(server_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A server taking fewer items (--max-batch-items) or smaller messages (--max-state-bytes sets its message
    limit) than the client's batches refuses the whole call; every caller still gets its own save's answer."""
    few = served(server_factory, kind, max_batch_items=4)
    threads = [tid() for _ in range(40)]
    async with AsyncCheckpointClient(few.target, coalesce=1) as ac:
        results = await asyncio.gather(*(ac.save(t, {"t": t}) for t in threads), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]
        assert [(await ac.load(t)).json() for t in threads] == [{"t": t} for t in threads]
        later = await asyncio.gather(*(ac.save(t, {"t": 2}) for t in threads), return_exceptions=True)
        assert not [r for r in later if isinstance(r, BaseException)]

    small = served(server_factory, kind, max_state_bytes=200_000)  # takes messages of about 1.3 MB
    states = [b'"' + base64.b64encode(os.urandom(110_000)) + b'"' for _ in range(24)]  # 150 KB each
    threads = [tid() for _ in states]
    async with AsyncCheckpointClient(small.target, coalesce=1) as ac:
        results = await asyncio.gather(
            *(ac.save(t, s, state_type="json") for t, s in zip(threads, states, strict=True)), return_exceptions=True
        )
        assert not [r for r in results if isinstance(r, BaseException)]
        assert [(await ac.load(t)).state for t in threads] == states


# -- the LangGraph adapter: many graphs on one event loop -------------------------------------------------------


class Steps(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


async def test_concurrent_graphs_on_one_saver(server: Served) -> None:
    pytest.importorskip("langgraph")
    from langgraph.graph import END, START, StateGraph

    from cairn_client.langgraph import CairnSaver

    def step(name: str) -> Any:
        async def node(state: Steps) -> dict:
            await asyncio.sleep(0)
            return {"log": [name]}
        return node

    g = StateGraph(Steps)
    for name in ("a", "b", "c", "d"):
        g.add_node(name, step(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")  # b and c run in one step: their writes go through put_writes
    g.add_edge("b", "d")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    threads = [f"lg-{uuid.uuid4()}" for _ in range(24)]
    async with CairnSaver(server.target) as saver:
        app = g.compile(checkpointer=saver)
        with Calls(server) as calls:
            outs = await asyncio.gather(*(
                app.ainvoke({"log": [t]}, {"configurable": {"thread_id": t}}) for t in threads
            ))
        for t, out in zip(threads, outs, strict=True):
            assert out["log"][0] == t and out["log"][1] == "a" and sorted(out["log"][2:4]) == ["b", "c"]
            assert out["log"][4:] == ["d"]
            history = [s async for s in app.aget_state_history({"configurable": {"thread_id": t}})]
            assert [s.next for s in history] == [(), ("d",), ("b", "c"), ("a",), ("__start__",)]
            assert history[0].values == out
    assert calls("SaveBatch") >= 1  # the graphs' saves went together


# -- the coalescer's own logic, against a minimal server ------------------------------------------------------


class FakeStore(grpc.GenericRpcHandler):
    """A grpc.aio server with Save and (when `batch`) SaveBatch; it records each call's thread ids.

    Threads named "moved-..." fail with HEAD_MOVED, as a real server's compare-and-set does."""

    def __init__(self, *, batch: bool = True, save_delay: float = 0.0, batch_delay: float = 0.0) -> None:
        self.batch, self.save_delay, self.batch_delay = batch, save_delay, batch_delay
        self.attempts: list[str] = []
        self.calls: list[tuple[str, list[str]]] = []
        self.sequence = 0

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method.rsplit("/", 1)[-1]
        self.attempts.append(method)
        if method == "Save":
            return grpc.unary_unary_rpc_method_handler(self._save, pb.SaveRequest.FromString,
                                                       pb.SaveResponse.SerializeToString)
        if method == "SaveBatch" and self.batch:
            return grpc.unary_unary_rpc_method_handler(self._save_batch, pb.SaveBatchRequest.FromString,
                                                       pb.SaveBatchResponse.SerializeToString)
        return None  # UNIMPLEMENTED

    def _answer(self, req: pb.SaveRequest) -> pb.SaveResponse | ServerError:
        if req.checkpoint.thread_id.startswith("moved-"):
            return ServerError("the head moved", grpc.StatusCode.ABORTED, "HEAD_MOVED", {"current_head_id": "h"})
        self.sequence += 1
        return pb.SaveResponse(checkpoint_id=req.checkpoint.checkpoint_id, sequence=self.sequence)

    async def _save(self, req: pb.SaveRequest, context: grpc.aio.ServicerContext) -> pb.SaveResponse:
        self.calls.append(("Save", [req.checkpoint.thread_id]))
        await asyncio.sleep(self.save_delay)
        answer = self._answer(req)
        if isinstance(answer, ServerError):
            await abort(context, answer)
        return answer  # type: ignore[return-value]

    async def _save_batch(self, req: pb.SaveBatchRequest, context: grpc.aio.ServicerContext) -> pb.SaveBatchResponse:
        self.calls.append(("SaveBatch", [s.checkpoint.thread_id for s in req.saves]))
        await asyncio.sleep(self.batch_delay)
        results = []
        for save in req.saves:
            answer = self._answer(save)
            results.append(pb.SaveBatchResult(error=item_error(answer)) if isinstance(answer, ServerError)
                           else pb.SaveBatchResult(save=answer))
        return pb.SaveBatchResponse(results=results)

    async def __aenter__(self) -> FakeStore:
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((self,))
        self.target = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(None)

    async def received(self, n: int) -> None:
        """Wait until the server has received n calls."""
        for _ in range(1000):
            if len(self.calls) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the server received {len(self.calls)} calls, not {n}")


async def test_a_callers_deadline_ends_it_alone() -> None:
    """B rides in a batch with C and D; its own short deadline passes while the batch is on the wire: B gets
    DeadlineExceeded then, C and D their answers later."""
    async with FakeStore(save_delay=0.5, batch_delay=4.0) as fake, \
            AsyncCheckpointClient(fake.target, coalesce=1, timeout_seconds=30) as ac:
        a = asyncio.ensure_future(ac.save("a", {}))
        await fake.received(1)  # a alone on the wire; what follows queues behind it
        b = asyncio.ensure_future(ac.save("b", {}, timeout=2.0))
        c = asyncio.ensure_future(ac.save("c", {}))
        d = asyncio.ensure_future(ac.save("d", {}))
        done, _ = await asyncio.wait([b, c, d], return_when=asyncio.FIRST_COMPLETED)
        assert done == {b} and isinstance(b.exception(), DeadlineExceeded)
        assert fake.calls == [("Save", ["a"]), ("SaveBatch", ["b", "c", "d"])]  # b was in the batch
        assert not (await a).already_existed
        assert (await c).sequence > 0 and (await d).sequence > 0


async def test_cancelled_callers_leave_the_others_be() -> None:
    async with FakeStore(save_delay=0.5, batch_delay=1.0) as fake, \
            AsyncCheckpointClient(fake.target, coalesce=1, timeout_seconds=30) as ac:
        a = asyncio.ensure_future(ac.save("a", {}))
        await fake.received(1)
        b, c, d, e = (asyncio.ensure_future(ac.save(t, {})) for t in "bcde")
        await asyncio.sleep(0.05)
        c.cancel()  # while it waits to be sent
        await fake.received(2)
        d.cancel()  # while its batch is on the wire
        assert (await a).sequence and (await b).sequence and (await e).sequence
        for gone in (c, d):
            with pytest.raises(asyncio.CancelledError):
                await gone
        assert fake.calls[1] == ("SaveBatch", ["b", "d", "e"])
        later = await asyncio.gather(*(ac.save(f"later-{i}", {}) for i in range(10)))  # still coalescing
        assert len({r.sequence for r in later}) == 10 and fake.calls[-1][0] == "SaveBatch"


async def test_a_server_without_save_batch_gets_one_save_per_item_from_then_on() -> None:
    async with FakeStore(batch=False) as fake, AsyncCheckpointClient(fake.target, coalesce=1) as ac:
        for round_ in range(3):
            threads = [f"t{round_}-{i}" for i in range(20)] + [f"moved-{round_}"]
            results = await asyncio.gather(*(ac.save(t, {}) for t in threads), return_exceptions=True)
            assert [type(r) for r in results[-1:]] == [HeadMoved]
            assert results[-1].metadata["current_head_id"] == "h"  # type: ignore[union-attr]
            assert all(r.sequence > 0 for r in results[:-1])  # type: ignore[union-attr]
            assert sorted(t for _, ts in fake.calls for t in ts if t.startswith(f"t{round_}-")) == \
                sorted(threads[:-1])
        assert fake.attempts.count("SaveBatch") == 1  # asked once; every later save went alone
        assert {m for m, _ in fake.calls} == {"Save"} and len(fake.calls) == 63


async def test_callers_queued_when_the_client_closes_are_answered() -> None:
    """aclose() with saves queued: each caller gets an error at once, none waits for its deadline."""
    async with FakeStore(save_delay=1.0) as fake:
        ac = AsyncCheckpointClient(fake.target, coalesce=1, timeout_seconds=60)
        a = asyncio.ensure_future(ac.save("a", {}))
        await fake.received(1)
        queued = [asyncio.ensure_future(ac.save(t, {})) for t in "bcd"]
        await asyncio.sleep(0.05)
        await ac.aclose()
        results = await asyncio.wait_for(asyncio.gather(a, *queued, return_exceptions=True), 10)
        # as with coalesce=0: a call in flight when the channel closes ends with CancelledError
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        with pytest.raises(Exception, match="Channel is closed"):  # and a later one with grpc's UsageError
            await ac.save("e", {})
